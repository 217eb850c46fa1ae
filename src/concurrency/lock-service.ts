/**
 * etcd's `v3lock` gRPC service, typed: the server runs the lock recipe for
 * the client. `lock(name, lease)` waits until the caller holds the lock and
 * returns the key that represents it (`name/<lease id in hex>`, attached to
 * the lease); `unlock(key)` deletes that key. The lock is also released when
 * the lease ends (revoked or expired), so a crashed holder cannot block others
 * for longer than its lease's TTL.
 *
 * Fencing (for the Session-based API built on this): a lock alone does not
 * protect writes, because a holder whose lease expired may not know it yet.
 * The holder's writes must go in a transaction guarded by
 * `Compare.createRevision(holderKey, "=", holderCreateRevision)`, where the
 * create revision is that of the holder's key when the lock was acquired (read
 * back once after `lock()` resolves, or taken from the key's own pair). If the
 * lease ended, the key is gone (create revision 0) or belongs to a newer
 * holder (a higher create revision), and the write is refused; that compare is
 * what the future `isOwner()` will return, for the client-side mutex and this
 * service alike.
 * @module
 */
import type { Client } from "@connectrpc/connect";
import type { LockResponse, UnlockResponse } from "../../gen/etcd/server/etcdserver/api/v3lock/v3lockpb/v3lock_pb.js";
import type { Lock } from "../../gen/etcd/server/etcdserver/api/v3lock/v3lockpb/v3lock_pb.js";
import { toConnectOptions, type CallOptions } from "../call-options.js";
import type { Etcd } from "../client.js";
import { toBytes, type Bytes } from "../kv/bytes.js";
import { InvalidKeyError, InvalidOptionError } from "../errors.js";
import { Namespace } from "../namespace/namespace.js";
import type { KeyPrefix } from "../namespace/key-prefix.js";

/** What {@link LockService.lock} resolves to once the caller holds the lock. */
export interface LockResult {
  /** The key that represents the lock (in the caller's namespace): pass it to {@link LockService.unlock}. */
  key: Uint8Array;
  /** Store revision of the answer. */
  revision: bigint;
  /** The response as received (its key untranslated only in a namespace). */
  raw: LockResponse;
}

/** A lease ID the server can attach keys to: 0 would make the server grant a lease nobody keeps alive. @internal */
export function checkLease(lease: bigint): bigint {
  if (typeof lease !== "bigint" || lease <= 0n) throw new InvalidOptionError(`lease must be the positive bigint ID of a granted lease, got ${String(lease)}`);
  return lease;
}

/** A name (lock or election) as bytes, in server keys. @internal */
export function serviceName(name: Bytes, keys: KeyPrefix | undefined): Uint8Array {
  const n = toBytes(name, "name");
  if (n.length === 0) throw new InvalidKeyError("name is empty");
  return keys === undefined ? n : keys.key(n);
}

/**
 * The `v3lock` service. Create one per client or namespace:
 *
 * ```ts
 * const locks = new LockService(etcd);
 * const { ID } = await etcd.raw.lease.leaseGrant({ TTL: 10n });
 * const { key } = await locks.lock("jobs/cleanup", ID, { timeoutMs: 60_000 });
 * try { ... } finally { await locks.unlock(key); }
 * ```
 *
 * One lease is one holder: the lock key is derived from the lease, so a
 * second `lock` of the same name with the same lease succeeds at once, while
 * the first still holds it. Give each holder its own lease.
 *
 * `lock` is a write: when its connection breaks it fails with
 * `OutcomeUnknownError` (the lock may be held: unlock the key
 * `name/<lease hex>`, or revoke the lease). When it is aborted or times out
 * while waiting, the server gives up waiting and deletes the caller's key;
 * but an abort that races the server (while it is still creating the key, or
 * crossing its answer) can leave the key, and so the lock, until `unlock` of
 * `name/<lease hex>` or the end of the lease. Give `lock` a `timeoutMs` that fits the
 * wait (the client's default request timeout applies otherwise).
 */
export class LockService {
  private readonly raw: Client<typeof Lock>;
  private readonly keys: KeyPrefix | undefined;

  constructor(client: Etcd | Namespace) {
    if (client instanceof Namespace) {
      this.raw = client.etcd.raw.lock;
      this.keys = client.keys;
    } else {
      this.raw = client.raw.lock;
      this.keys = undefined;
    }
  }

  /** Waits until the caller holds the lock `name` for `lease`; resolves with the lock's key. */
  async lock(name: Bytes, lease: bigint, options?: CallOptions): Promise<LockResult> {
    const res = await this.raw.lock({ name: serviceName(name, this.keys), lease: checkLease(lease) }, toConnectOptions(options));
    const key = this.keys === undefined ? res.key : this.keys.strip(res.key);
    return { key, revision: res.header?.revision ?? 0n, raw: res };
  }

  /** Releases a lock: deletes its key. Unlocking a key that is gone is not an error. */
  async unlock(key: Bytes, options?: CallOptions): Promise<{
    /** Store revision after the lock's key was deleted. */
    revision: bigint;
    /** The server's response. */
    raw: UnlockResponse;
  }> {
    const k = toBytes(key);
    if (k.length === 0) throw new InvalidKeyError("lock key is empty");
    const res = await this.raw.unlock({ key: this.keys === undefined ? k : this.keys.key(k) }, toConnectOptions(options));
    return { revision: res.header?.revision ?? 0n, raw: res };
  }
}
