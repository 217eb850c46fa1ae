/**
 * A client-side mutex on a key prefix, held through a {@link Session}.
 * @module
 */
import type { ResponseHeader } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { CallOptions } from "../call-options.js";
import { toBytes, type Bytes } from "../kv/bytes.js";
import { Compare } from "../kv/compare.js";
import { Op } from "../kv/op.js";
import { InvalidKeyError, KeyLostError, LockedError } from "../errors.js";
import { join, waitForPredecessors } from "./queue.js";
import type { Session } from "./session.js";

const EMPTY = new Uint8Array(0);

/** The keys of a session's place under `name`: `name/` and `name/<lease hex>`. @internal */
export function contenderKeys(session: Session, name: Bytes): { prefix: Uint8Array; key: Uint8Array } {
  const n = toBytes(name, "name");
  if (n.length === 0) throw new InvalidKeyError("name is empty");
  const prefix = Buffer.concat([n, Buffer.from("/")]);
  return { prefix, key: Buffer.concat([prefix, Buffer.from(session.idHex)]) };
}

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
export class Mutex {
  /** The prefix of the contenders' keys: `name/`. */
  readonly prefix: Uint8Array;
  /** This session's key: `name/<lease id in hex>`. */
  readonly key: Uint8Array;
  private rev = -1n;
  private hdr: ResponseHeader | undefined;

  /** @internal Made by `session.mutex()`. */
  constructor(
    /** The session whose lease holds the lock. */
    readonly session: Session,
    name: Bytes,
  ) {
    ({ prefix: this.prefix, key: this.key } = contenderKeys(session, name));
  }

  /**
   * Waits until this session holds the lock. Rejects when `options.signal`
   * fires or the deadline passes (`timeoutMs`, default none), with the
   * session's `LeaseLostError` or `SessionClosedError` when the session ends
   * first, with `KeyLostError` when its key vanished meanwhile: in each case
   * its place in line is withdrawn and the lock is not held.
   */
  async lock(options?: CallOptions): Promise<void> {
    const wait = this.session.wait(options);
    const { call, signal } = wait;
    try {
      const place = await join(this.session.view, this.prefix, this.key, this.session.id, EMPTY, call);
      this.rev = place.rev;
      if (place.first === undefined || place.first.createRevision === place.rev) {
        this.hdr = place.result.header;
        return;
      }
      await waitForPredecessors(this.session.view, this.prefix, place.rev - 1n, signal);
      // The wait may have outlasted our lease: hold only if our key is still there.
      const own = await this.session.view.get(this.key, call);
      if (own.first?.createRevision !== place.rev) throw new KeyLostError(this.key);
      this.hdr = own.header;
    } catch (e) {
      await this.withdraw();
      throw wait.explain(e);
    } finally {
      wait.done();
    }
  }

  /**
   * Takes the lock if it is free, without waiting.
   * @throws LockedError when another session holds it (this session's place is withdrawn).
   */
  async tryLock(options?: CallOptions): Promise<void> {
    const wait = this.session.wait(options);
    let place;
    try {
      place = await join(this.session.view, this.prefix, this.key, this.session.id, EMPTY, wait.call);
    } catch (e) {
      throw wait.explain(e);
    } finally {
      wait.done();
    }
    this.rev = place.rev;
    if (place.first === undefined || place.first.createRevision === place.rev) {
      this.hdr = place.result.header;
      return;
    }
    await this.withdraw();
    throw new LockedError(place.first.key);
  }

  /** Releases the lock (deletes this session's key, if it is still the one that took it). */
  async unlock(options?: CallOptions): Promise<void> {
    const rev = this.rev;
    this.rev = -1n;
    this.hdr = undefined;
    if (rev < 0n) return;
    await this.session.view.txn().if(Compare.createRevision(this.key, "=", rev)).then(Op.delete(this.key)).commit(options);
  }

  /**
   * A comparison that holds only while this session holds the lock (its key
   * exists with the create revision it had when taken): put it in the `if`
   * of the transactions that must not land after the lock is lost, in the
   * same client or namespace as the mutex. It never holds before `lock()`.
   */
  isOwner(): Compare {
    return Compare.createRevision(this.key, "=", this.rev);
  }

  /**
   * The create revision of this session's key: it grows with every new
   * holder, so systems outside etcd can refuse writes carrying an older one.
   * -1 when not locked.
   */
  get fencingToken(): bigint {
    return this.rev;
  }

  /** The header of the answer that confirmed the lock (its revision is when it was taken); undefined when not locked. */
  get header(): ResponseHeader | undefined {
    return this.hdr;
  }

  /** Aborts when the session ends (lost or closed): the lock is no longer safely held. */
  get signal(): AbortSignal {
    return this.session.signal;
  }

  /** Leaves the line after a failed or abandoned attempt; best effort (the lease ends it anyway). */
  private async withdraw(): Promise<void> {
    try {
      await this.unlock();
    } catch {
      // The session's lease deletes the key at the latest when it ends.
    }
  }
}

