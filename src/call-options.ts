/**
 * Options every call accepts, and how they travel to the transport.
 * @module
 */
import { createContextKey, createContextValues, type CallOptions as ConnectCallOptions } from "@connectrpc/connect";

/** Per-call options accepted by every method of the client. */
export interface CallOptions {
  /** Abort the call; the promise rejects with `AbortedError` and nothing is retried. */
  signal?: AbortSignal;
  /** Deadline for this call in milliseconds, retries included (default: the client's `requestTimeoutMs`). */
  timeoutMs?: number;
  /** Refuse to be served by a member that has no leader (metadata `hasleader`). Default: the client's setting. */
  requireLeader?: boolean;
  /**
   * Retry this write even when the request may have reached the server. Only
   * for idempotent writes: a retried put or txn may be applied twice.
   * Default: the client's `retryWrites`.
   */
  retryWrites?: boolean;
}

/** Context key carrying {@link CallOptions.retryWrites} to the transport. */
export const retryWritesKey = createContextKey<boolean | undefined>(undefined, { description: "etcd retryWrites" });
/** Context key carrying {@link CallOptions.requireLeader} to the transport. */
export const requireLeaderKey = createContextKey<boolean | undefined>(undefined, { description: "etcd requireLeader" });

/** Turns our options into connect's, allocating nothing when the caller gave none. */
export function toConnectOptions(o: CallOptions | undefined): ConnectCallOptions | undefined {
  if (o === undefined) return undefined;
  const out: ConnectCallOptions = {};
  if (o.signal !== undefined) out.signal = o.signal;
  if (o.timeoutMs !== undefined) out.timeoutMs = o.timeoutMs;
  if (o.retryWrites !== undefined || o.requireLeader !== undefined) {
    const ctx = createContextValues();
    if (o.retryWrites !== undefined) ctx.set(retryWritesKey, o.retryWrites);
    if (o.requireLeader !== undefined) ctx.set(requireLeaderKey, o.requireLeader);
    out.contextValues = ctx;
  }
  return out;
}
