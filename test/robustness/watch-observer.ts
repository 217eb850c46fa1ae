// Watchers that run across the faults of a run and log what they deliver, for
// watch-checker.ts: one `etcd.watch` of the run's key prefix per observer,
// with periodic progress notifications, recorded batch by batch with every
// re-create (resume) and how it ended. A watcher ended by compaction is
// logged as such and followed by a new one from the compaction revision
// (etcd's answer to a watcher that fell that far behind), in a new log.
import { CompactedError, type Etcd, type Watcher } from "../../src/index.js";
import { describeError } from "./history.js";
import type { WatcherLog } from "./watch-checker.js";

/** One logical watcher: a chain of watch logs (a new one after each compaction). */
export class WatchObserver {
  /** Every log, in order; the last is the live one. */
  readonly logs: WatcherLog[] = [];
  private watcher: Watcher | undefined;
  private closed = false;
  /** Restarts after compaction, bounded so a broken server cannot make it loop. */
  private restarts = 0;
  private progressTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly etcd: Etcd,
    readonly id: string,
    private readonly prefix: string,
    private readonly now: () => number,
    /**
     * Also ask for a progress notification this often (ms). Only for servers
     * that hold the answer back until every watcher of the stream is synced
     * (etcd issue 15220, fixed in 3.5): 3.4 may answer ahead of events.
     */
    private readonly requestProgressMs?: number,
  ) {}

  /** Starts watching from `revision` (inclusive); resolves once the server confirmed it. */
  async start(revision: bigint): Promise<void> {
    await this.open(revision).ready();
    if (this.requestProgressMs !== undefined) {
      this.progressTimer = setInterval(() => this.watcher?.requestProgress(), this.requestProgressMs);
      this.progressTimer.unref(); // never what keeps a process alive
    }
  }

  /** Highest revision the live watcher delivered or was told about (0n when ended). */
  get reached(): bigint {
    const w = this.watcher;
    return w === undefined || w.state === "closed" ? 0n : w.revision;
  }

  /** Ends the live watcher; its log ends with "closed". */
  close(): void {
    this.closed = true;
    clearInterval(this.progressTimer);
    this.watcher?.close();
  }

  private open(from: bigint): Watcher {
    const log: WatcherLog = { id: `${this.id}.${this.logs.length}`, range: { prefix: this.prefix }, startRevision: from, entries: [] };
    this.logs.push(log);
    const w = this.etcd.watch(this.prefix, { prefix: true, startRevision: from, progressNotify: true });
    this.watcher = w;
    let confirmed = false;
    w.on("state", (s) => {
      if (s === "watching") confirmed = true;
      // Any create after the first is a re-create on a new stream or member, from where the watcher was.
      else if (s === "creating" && confirmed) log.entries.push({ kind: "resume", at: this.now(), fromRevision: w.revision + 1n });
    });
    w.on("batch", (b) => {
      if (b.progress) {
        log.entries.push({ kind: "progress", at: this.now(), revision: b.revision });
        return;
      }
      log.entries.push({
        kind: "batch",
        at: this.now(),
        revision: b.revision,
        events: b.events.map((e) => ({ type: e.type, key: e.keyText, revision: e.revision, ...(e.type === "put" ? { value: e.text } : {}) })),
      });
    });
    w.on("error", (e) => {
      if (e instanceof CompactedError && e.compactRevision !== undefined) {
        log.entries.push({ kind: "compacted", at: this.now(), compactRevision: e.compactRevision });
        if (!this.closed && this.restarts++ < 20) this.open(e.compactRevision);
      }
    });
    w.on("end", () => {
      const last = log.entries[log.entries.length - 1];
      if (last?.kind !== "compacted") log.entries.push({ kind: "end", at: this.now(), reason: w.error !== undefined ? describeError(w.error) : "closed" });
    });
    return w;
  }
}
