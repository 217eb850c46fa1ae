// Leases kept alive through `etcd.lease` across the faults of a run, each
// recorded for lease-checker.ts: when keep-alive began and ended, when and
// why the client reported the lease lost, and whether the server still has it
// after the run. A lease reported lost is replaced by a new one, so the
// client keeps holding one until the end.
import { LeaseNotFoundError, type Etcd, type KeptLease } from "../../src/index.js";
import { describeError } from "./history.js";
import type { LeaseRecord } from "./lease-checker.js";

/** Most leases one observer grants (bounded, whatever happens). */
const MAX_LEASES = 50;

/** Keeps one lease alive with one client; replaces it when lost. */
export class LeaseObserver {
  readonly records: LeaseRecord[] = [];
  private current: { lease: KeptLease; record: LeaseRecord } | undefined;
  private stopped = false;
  private replacing: Promise<void> = Promise.resolve();

  constructor(
    private readonly etcd: Etcd,
    readonly id: string,
    private readonly ttlSeconds: number,
    private readonly now: () => number,
    private readonly log: (line: string) => void,
  ) {}

  /** Grants the first lease and keeps it alive. */
  async start(): Promise<void> {
    await this.grant();
  }

  private async grant(): Promise<void> {
    const lease = await this.etcd.lease.create(this.ttlSeconds, { timeoutMs: 5000 });
    const record: LeaseRecord = { id: `${this.id}:${lease.id.toString(16)}`, ttlMs: this.ttlSeconds * 1000, keptAliveFrom: this.now(), keptAliveUntil: Infinity };
    this.records.push(record);
    this.current = { lease, record };
    void lease.lost.then((e) => {
      record.lostAt = this.now();
      record.lostReason = `${e.reason}: ${e.message}`;
      if (this.stopped || this.records.length >= MAX_LEASES) return;
      this.log(`lease ${record.id} lost (${e.reason}); granting another`);
      // Retried: the loss may come during a fault.
      this.replacing = (async () => {
        for (let attempt = 0; attempt < 10 && !this.stopped; attempt++) {
          try {
            return await this.grant();
          } catch {
            await new Promise((r) => setTimeout(r, 500));
          }
        }
      })();
    });
  }

  /**
   * Ends keep-alive (the records' `keptAliveUntil`), asks the server (with
   * `admin`, after the cluster healed) whether the live lease still exists,
   * then revokes it.
   */
  async finish(admin: Etcd): Promise<void> {
    this.stopped = true;
    await this.replacing;
    const live = this.current;
    // Only the live lease is asked about: the lost ones were reported lost.
    if (live !== undefined) await this.askServer(admin, live);
    const until = this.now();
    for (const r of this.records) if (r.keptAliveUntil === Infinity) r.keptAliveUntil = r.lostAt ?? until;
    if (live === undefined) return;
    // Not marked `revoked`: that would exempt it from the checks; its loss report now comes after keptAliveUntil.
    try {
      await live.lease.revoke({ timeoutMs: 5000 });
    } catch {
      live.lease.stop();
    }
  }

  private async askServer(admin: Etcd, live: { lease: KeptLease; record: LeaseRecord }): Promise<void> {
    try {
      await admin.lease.timeToLive(live.lease.id, { timeoutMs: 5000 });
      live.record.existsAtEnd = true;
    } catch (e) {
      if (e instanceof LeaseNotFoundError) live.record.existsAtEnd = false;
      else this.log(`lease ${live.record.id}: could not ask the server (${describeError(e)})`);
    }
    // Give the client's own loss report a moment to arrive if the lease is gone.
    if (live.record.existsAtEnd === false && live.record.lostAt === undefined) {
      await Promise.race([live.lease.lost, new Promise((r) => setTimeout(r, (this.ttlSeconds * 1000) / 2))]);
    }
  }
}
