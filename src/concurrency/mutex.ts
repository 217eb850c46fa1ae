/**
 * A client-side mutex on a key prefix, held through a {@link Session}.
 * @module
 */
import type { CallOptions } from "../call-options.js";
import type { Compare } from "../kv/compare.js";
import { LockedError } from "../errors.js";
import { Contender } from "./contender.js";

const EMPTY = new Uint8Array(0);

/**
 * A lock on `name` for one session: get it with `session.mutex("name")`.
 *
 * ```ts
 * const mutex = session.mutex("jobs/cleanup");
 * await mutex.lock();
 * try {
 *   // Fencing: the write lands only while this session still holds the lock.
 *   const r = await etcd.txn().if(mutex.isOwner()).then(Op.put("jobs/owner", "me")).commit();
 *   if (!r.succeeded) throw new Error("lock lost");
 * } finally {
 *   await mutex.unlock();
 * }
 * ```
 *
 * Each contender writes `name/<lease id in hex>` on its session's lease; the
 * one with the lowest create revision holds the lock. A waiter watches only
 * the key just ahead of it, so a release wakes one waiter. The key names
 * the session, so one session holds a given lock once: a second `lock()` of
 * the same name by the same session returns at once. The same keys as
 * etcd's `v3lock` service use, so both kinds of lockers exclude each other.
 *
 * A lock alone does not protect writes: a holder whose session was lost may
 * not know it yet. Guard writes with {@link Mutex.isOwner}, or pass
 * {@link Mutex.fencingToken} to the system you write to.
 */
export class Mutex extends Contender {
  /**
   * Waits until this session holds the lock. Rejects when `options.signal`
   * fires or `timeoutMs` passes (default: no limit), with the session's
   * `LeaseLostError` or `SessionClosedError` when the session ends first,
   * with `KeyLostError` when its key vanished meanwhile: in each case its
   * place in line is withdrawn and the lock is not held.
   */
  async lock(options?: CallOptions): Promise<void> {
    await this.enqueue(EMPTY, options, true);
  }

  /**
   * Takes the lock if it is free, without waiting.
   * @throws LockedError when another session holds it (this session's place is withdrawn).
   */
  async tryLock(options?: CallOptions): Promise<void> {
    const place = await this.enqueue(EMPTY, options, false);
    if (place.first === undefined || place.first.createRevision === place.rev) return;
    await this.withdraw();
    throw new LockedError(place.first.key);
  }

  /** Releases the lock (deletes this session's key, if it is still the one that took it). */
  async unlock(options?: CallOptions): Promise<void> {
    await this.leave(options);
    this.hdr = undefined;
  }

  /**
   * A comparison that holds only while this session holds the lock (its key
   * exists with the create revision it had when taken): put it in the `if`
   * of the transactions that must not land after the lock is lost, in the
   * same client or namespace as the mutex. It never holds before `lock()`.
   */
  isOwner(): Compare {
    return this.held();
  }
}
