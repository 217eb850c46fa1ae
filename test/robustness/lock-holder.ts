// Holders of one lock (etcd's v3lock service, src/concurrency/lock-service.ts)
// that take and release it in a loop across the faults of a run, each hold
// recorded for lock-checker.ts.
//
// The Lock answer's header revision is not the revision at which the lock was
// granted (etcd 3.4 answers with the revision that queued the holder's key,
// before the previous holder let go), so a holder reads its own key once it
// holds the lock: that read's revision lies inside the hold, after the
// previous holder's key was deleted, and is the hold's `acquiredRevision`.
// The key still being there also shows the session did not end meanwhile.
import { LockService, type Etcd, type KeptLease } from "../../src/index.js";
import { describeError } from "./history.js";
import type { LockHold } from "./lock-checker.js";
import type { Random } from "./random.js";

/** What the holders of one run share. */
export interface LockRunState {
  holds: LockHold[];
  /** Lock calls that failed (the holder let go of its lease and started over). */
  failedLocks: number;
  /** Holds whose end is not known exactly (Unlock failed, or the session ended): not checked in time. */
  uncertainReleases: number;
  /** Holds whose own-key read failed or found the key gone: released, not recorded. */
  unverified: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One holder: lock, hold a moment, unlock, until `until` (run clock) or `maxHolds`. */
export async function lockHolder(
  name: string,
  etcd: Etcd,
  lockName: string,
  state: LockRunState,
  rnd: Random,
  opts: { until: number; maxHolds: number; ttlSeconds: number; timeoutMs: number; now: () => number; log: (line: string) => void },
): Promise<void> {
  const locks = new LockService(etcd);
  let lease: KeptLease | undefined;
  const dropLease = async (): Promise<void> => {
    // Revoking deletes the holder's key, releasing or dequeuing it; if that fails, the key lapses with the TTL.
    const l = lease;
    lease = undefined;
    if (l === undefined) return;
    // A few tries: a key left behind blocks every other holder until its lease lapses, and each new
    // leader gives every lease a fresh TTL, so under leader faults that can take long.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await l.revoke({ timeoutMs: opts.timeoutMs });
      } catch {
        await sleep(200);
      }
    }
    l.stop();
  };
  for (let n = 0; n < opts.maxHolds && opts.now() < opts.until; n++) {
    if (lease === undefined || lease.state !== "alive") {
      lease = undefined;
      try {
        lease = await etcd.lease.create(opts.ttlSeconds, { timeoutMs: opts.timeoutMs });
      } catch {
        await sleep(200);
        continue;
      }
    }
    let key: Uint8Array;
    let acquiredAt: number;
    try {
      // Waiting for the previous holder counts against the deadline: give it room, past a TTL, so that
      // a key left behind by a holder that could not revoke its lease (it lapses) does not time out every waiter.
      key = (await locks.lock(lockName, lease.id, { timeoutMs: opts.ttlSeconds * 1000 + opts.timeoutMs })).key;
      acquiredAt = opts.now();
    } catch (e) {
      // The lock may or may not be queued or held: drop the lease, which deletes the key.
      state.failedLocks++;
      opts.log(`lock holder ${name}: lock failed (${describeError(e)})`);
      await dropLease();
      continue;
    }
    const hold: LockHold = { holder: `${name}:${lease.id.toString(16)}`, acquiredRevision: 0n, acquiredAt };
    let verified = false;
    for (let attempt = 0; attempt < 3 && !verified; attempt++) {
      try {
        const r = await etcd.get(key, { timeoutMs: opts.timeoutMs });
        // A key already gone (the session ended first) gives the hold no revision inside it: not recorded.
        if (r.kvs.length === 0) break;
        hold.acquiredRevision = r.revision;
        verified = true;
      } catch {
        // Try again; a fault may be under way.
      }
    }
    if (!verified) {
      state.unverified++;
      await dropLease();
      continue;
    }
    state.holds.push(hold);
    await sleep(rnd.int(10, 150));
    hold.releaseCalledAt = opts.now();
    if (lease.state !== "alive") hold.lost = true;
    try {
      const r = await locks.unlock(key, { timeoutMs: opts.timeoutMs });
      // After a lost session the key was gone before this Unlock: its revision says nothing.
      if (!hold.lost) hold.releasedRevision = r.revision;
    } catch {
      // The key may have been deleted at an unknown revision: make sure it is gone, and check no more of this hold.
      hold.lost = true;
      await dropLease();
    }
    if (hold.lost) state.uncertainReleases++;
  }
  await dropLease();
}
