// Checks that holders of one lock never overlapped: by revision (a holder's
// hold begins at the revision its Lock call answered with and ends at the
// revision its key was deleted) and in real time (a holder's Lock answer
// arrives after the previous holder called Unlock, unless that holder lost its
// session and with it the lock).
import { Violations } from "./violation.js";

/** One acquisition of the lock. Times in ms on the run's monotonic clock. */
export interface LockHold {
  holder: string;
  /** Header revision of the Lock response. */
  acquiredRevision: bigint;
  /** When the Lock response arrived. */
  acquiredAt: number;
  /** Revision at which the holder's key was deleted (Unlock's header revision, or from the history). */
  releasedRevision?: bigint;
  /** When Unlock was invoked. */
  releaseCalledAt?: number;
  /** The holder's session (lease) was lost: the lock ended at some unknown time. */
  lost?: boolean;
}

/** Checks one lock's holds. */
export function checkLockHolds(holds: readonly LockHold[], v = new Violations()): Violations {
  const sorted = [...holds].sort((a, b) => (a.acquiredRevision < b.acquiredRevision ? -1 : a.acquiredRevision > b.acquiredRevision ? 1 : 0));
  for (let i = 0; i + 1 < sorted.length; i++) {
    const a = sorted[i]!;
    const b = sorted[i + 1]!;
    if (a.acquiredRevision === b.acquiredRevision) {
      v.add("lock-overlap", `${a.holder} and ${b.holder} both acquired at revision ${a.acquiredRevision}`);
      continue;
    }
    if (a.releasedRevision === undefined) {
      if (!a.lost) v.add("lock-overlap", `${b.holder} acquired at revision ${b.acquiredRevision} while ${a.holder} (from ${a.acquiredRevision}) never released`);
    } else if (a.releasedRevision > b.acquiredRevision) {
      v.add("lock-overlap", `${b.holder} acquired at revision ${b.acquiredRevision} before ${a.holder} released at ${a.releasedRevision}`);
    }
    if (!a.lost && a.releaseCalledAt !== undefined && b.acquiredAt < a.releaseCalledAt) {
      v.add(
        "lock-overlap-time",
        `${b.holder} held the lock from ${b.acquiredAt.toFixed(1)} ms, before ${a.holder} called Unlock at ${a.releaseCalledAt.toFixed(1)} ms`,
      );
    }
  }
  return v;
}
