// The cluster's own history of a key prefix, revision by revision: what was
// put and deleted at each revision. Read from the cluster by ranging the
// prefix at every revision (a linearizable read at a past revision) and
// taking the difference between consecutive revisions, before compaction
// discards them. The checkers compare what clients saw with it, and the watch
// checker uses it as the list of events a watcher must deliver.
import type { KvRecord } from "./history.js";

/** One change of one key. */
export interface KvEvent {
  type: "put" | "delete";
  key: string;
  revision: bigint;
  /** For puts. */
  value?: string;
  createRevision?: bigint;
  version?: number;
}

/** The state of the prefix at one revision: key -> record. */
export type Snapshot = ReadonlyMap<string, KvRecord>;

/** The events of revisions `from + 1 .. to`, on top of the state at `from`. */
export class ClusterHistory {
  /** Events in revision order. */
  readonly events: KvEvent[] = [];
  private readonly byRevision = new Map<bigint, KvEvent[]>();
  /** Per key, the revisions at which it changed and the record after each change (null = deleted). */
  private readonly timelines = new Map<string, Array<[bigint, KvRecord | null]>>();

  constructor(
    /** The revision whose state is the starting point. */
    readonly from: bigint,
    readonly baseline: Snapshot,
    /** The last revision covered (grows with {@link ClusterHistory.append}). */
    public to: bigint = from,
  ) {
    for (const [k, r] of baseline) this.timelines.set(k, [[r.modRevision, r]]);
  }

  /** Adds the events of revision `to + 1` .. `revision`, in order. */
  append(revision: bigint, events: readonly KvEvent[]): void {
    if (revision <= this.to) throw new RangeError(`revision ${revision} is not after ${this.to}`);
    this.to = revision;
    if (events.length === 0) return;
    this.byRevision.set(revision, [...events]);
    for (const e of events) {
      this.events.push(e);
      let t = this.timelines.get(e.key);
      if (t === undefined) this.timelines.set(e.key, (t = []));
      t.push([
        revision,
        e.type === "put" ? { value: e.value!, modRevision: revision, createRevision: e.createRevision!, version: e.version! } : null,
      ]);
    }
  }

  /** The events of one revision (empty when none touched the prefix). */
  at(revision: bigint): readonly KvEvent[] {
    return this.byRevision.get(revision) ?? [];
  }

  /** True when `revision`'s state is known (`from <= revision <= to`). */
  covers(revision: bigint): boolean {
    return revision >= this.from && revision <= this.to;
  }

  /** The key's record at `revision` (null when absent), or undefined when the revision is not covered. */
  stateAt(key: string, revision: bigint): KvRecord | null | undefined {
    if (!this.covers(revision)) return undefined;
    const t = this.timelines.get(key);
    if (t === undefined) return null;
    // The last change at or before `revision`; the baseline's entries come first.
    let lo = 0;
    let hi = t.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (t[mid]![0] <= revision) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? null : t[found]![1];
  }

  /** Every key's record at the last covered revision. */
  finalState(): Map<string, KvRecord> {
    const out = new Map<string, KvRecord>();
    for (const [k, t] of this.timelines) {
      const r = t[t.length - 1]![1];
      if (r !== null) out.set(k, r);
    }
    return out;
  }

  /** Plain data for a history file. */
  toJSON(): { from: bigint; to: bigint; baseline: Array<[string, KvRecord]>; events: KvEvent[] } {
    return { from: this.from, to: this.to, baseline: [...this.baseline], events: this.events };
  }

  /** Rebuilds a history saved with {@link ClusterHistory.toJSON}. */
  static fromJSON(j: { from: bigint; to: bigint; baseline: Array<[string, KvRecord]>; events: KvEvent[] }): ClusterHistory {
    const h = new ClusterHistory(j.from, new Map(j.baseline));
    const groups = new Map<bigint, KvEvent[]>();
    for (const e of j.events) {
      let g = groups.get(e.revision);
      if (g === undefined) groups.set(e.revision, (g = []));
      g.push(e);
    }
    for (const r of [...groups.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) h.append(r, groups.get(r)!);
    if (j.to > h.to) h.to = j.to;
    return h;
  }
}

/**
 * The events that turn `before` (the state at `revision - 1`) into `after`
 * (the state at `revision`). Throws when the two cannot be consecutive (a key
 * changed without its mod revision saying so): the reads were inconsistent.
 */
export function diffSnapshots(before: Snapshot, after: Snapshot, revision: bigint): KvEvent[] {
  const events: KvEvent[] = [];
  for (const [key, r] of after) {
    if (r.modRevision === revision) {
      events.push({ type: "put", key, revision, value: r.value, createRevision: r.createRevision, version: r.version });
      continue;
    }
    const b = before.get(key);
    if (b === undefined || b.modRevision !== r.modRevision || b.value !== r.value) {
      throw new Error(`history read inconsistent at revision ${revision}: ${key} has mod revision ${r.modRevision} but differs from revision ${revision - 1n}`);
    }
  }
  for (const key of before.keys()) if (!after.has(key)) events.push({ type: "delete", key, revision });
  return events;
}

/** Reads the prefix at one revision. */
export type SnapshotReader = (revision: bigint) => Promise<Snapshot>;

/**
 * Builds a {@link ClusterHistory} incrementally: {@link HistoryArchiver.catchUp}
 * reads every revision up to a target, a few at a time. Called before each
 * compaction (revisions below it become unreadable) and once after the run.
 */
export class HistoryArchiver {
  private current: Snapshot | undefined;
  private hist: ClusterHistory | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly read: SnapshotReader,
    /** Revisions read concurrently. */
    private readonly parallel = 8,
  ) {}

  /** Starts from the state at `revision`. */
  async start(revision: bigint): Promise<void> {
    this.current = await this.read(revision);
    this.hist = new ClusterHistory(revision, this.current);
  }

  /** The history read so far. */
  get history(): ClusterHistory {
    if (this.hist === undefined) throw new Error("the archiver was not started");
    return this.hist;
  }

  /** Reads revisions up to `revision` (one catch-up at a time; concurrent callers queue). */
  catchUp(revision: bigint): Promise<void> {
    const run = this.running.then(() => this.readUpTo(revision));
    this.running = run.catch(() => {});
    return run;
  }

  private async readUpTo(target: bigint): Promise<void> {
    const h = this.history;
    while (h.to < target) {
      const first = h.to + 1n;
      const count = Number(target - h.to < BigInt(this.parallel) ? target - h.to : BigInt(this.parallel));
      const snaps = await Promise.all(Array.from({ length: count }, (_, i) => this.read(first + BigInt(i))));
      for (let i = 0; i < count; i++) {
        const rev = first + BigInt(i);
        h.append(rev, diffSnapshots(this.current!, snaps[i]!, rev));
        this.current = snaps[i]!;
      }
    }
  }
}
