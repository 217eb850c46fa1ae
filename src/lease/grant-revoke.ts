/**
 * Grant and revoke, made safe to retry by this layer rather than by the
 * transport's retry policy (which treats both as writes and does not resend
 * them once they may have reached the server):
 *
 * - A grant carries an ID: the caller's, or a random 63-bit one. A retried
 *   grant with the same ID can never create a second lease; at worst it
 *   answers "lease already exists". With a random ID, that answer means an
 *   earlier attempt of ours created it (another client choosing the same ID
 *   is a 1 in 2^63 chance), which `timeToLive` confirms (the lease exists
 *   with the TTL we asked for), and the grant succeeded. With the
 *   caller's ID, "exists" after an attempt of unknown outcome cannot be told
 *   apart from someone else's lease: the caller gets `OutcomeUnknownError`.
 * - A revoke retried after an attempt of unknown outcome that answers "lease
 *   not found" succeeded: the lease is gone, which is what was asked (and an
 *   earlier attempt most likely removed it).
 *
 * Retries follow the same rules as the transport's for repeatable calls
 * (`classifyFailure`: Unavailable answers and lost connections), with its
 * backoff, inside the caller's one deadline.
 * @module
 */
import type { Client } from "@connectrpc/connect";
import type { Lease as LeaseService } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { toConnectOptions, type CallOptions } from "../call-options.js";
import { classifyFailure, mayHaveBeenApplied, retryDelayMs } from "../cluster/retry.js";
import { isConnectionLost } from "../transport/failure.js";
import { sleep } from "../deadline.js";
import { AbortedError, DeadlineExceededError, EtcdError, LeaseExistsError, LeaseNotFoundError, OutcomeUnknownError, toEtcdError } from "../errors.js";
import { randomLeaseId } from "./lease-id.js";

const GRANT = "etcdserverpb.Lease/LeaseGrant";
const REVOKE = "etcdserverpb.Lease/LeaseRevoke";

/** A granted lease. */
export interface Granted {
  id: bigint;
  ttl: number;
}

/** Thrown by an attempt to end the call with `error`, however retryable it looks. */
class Final {
  constructor(readonly error: EtcdError) {}
}

/** Runs `attempt` until it succeeds or fails for good, retrying what a repeatable call may retry. */
async function withRetries<T>(
  method: string,
  options: CallOptions | undefined,
  defaultTimeoutMs: number,
  attempt: (callOptions: CallOptions, uncertain: boolean) => Promise<T>,
): Promise<T> {
  const budget = options?.timeoutMs ?? defaultTimeoutMs;
  const start = Date.now();
  const signal = options?.signal;
  // Set once an attempt failed in a way that leaves its effect unknown.
  let uncertain = false;
  for (let n = 1; ; n++) {
    const remaining = budget - (Date.now() - start);
    if (remaining <= 0) {
      // Out of time after an attempt that may have been applied: the caller must hear "unknown".
      const deadline = new DeadlineExceededError(budget);
      throw uncertain ? new OutcomeUnknownError(method, deadline) : deadline;
    }
    try {
      // Never let the transport resend on its own: this loop must know when a retry happened.
      return await attempt({ ...options, timeoutMs: remaining, retryWrites: false }, uncertain);
    } catch (e) {
      if (e instanceof Final) throw e.error;
      if (signal?.aborted) throw new AbortedError(signal.reason);
      if (!(e instanceof EtcdError) || !classifyFailure(e).retryableIfRepeatable) throw e;
      if (e instanceof OutcomeUnknownError || isConnectionLost(e) || mayHaveBeenApplied(e)) uncertain = true;
      const delay = retryDelayMs(n);
      if (budget - (Date.now() - start) - delay <= 0) throw e;
      await sleep(delay, signal);
    }
  }
}

/** Grants a lease; see the module notes for why retrying it is safe. */
export async function grantLease(
  raw: Client<typeof LeaseService>,
  ttl: number,
  explicitId: bigint | undefined,
  options: CallOptions | undefined,
  defaultTimeoutMs: number,
): Promise<Granted> {
  let id = explicitId ?? randomLeaseId();
  return withRetries(GRANT, options, defaultTimeoutMs, async (callOptions, uncertain) => {
    for (let collisions = 0; ; collisions++) {
      try {
        const res = await raw.leaseGrant({ ID: id, TTL: BigInt(ttl) }, toConnectOptions(callOptions));
        return { id: res.ID, ttl: Number(res.TTL) };
      } catch (e) {
        if (!(e instanceof LeaseExistsError)) throw e;
        if (explicitId !== undefined) {
          if (uncertain) throw new Final(new OutcomeUnknownError(GRANT, e));
          throw e;
        }
        // Our random ID exists: created by an earlier attempt of ours (this loop's
        // retry, or a resend by the transport), unless another client picked it too.
        let check;
        try {
          check = await raw.leaseTimeToLive({ ID: id }, toConnectOptions({ ...callOptions, retryWrites: undefined }));
        } catch (err) {
          throw new Final(new OutcomeUnknownError(GRANT, toEtcdError(err)));
        }
        if (check.TTL > 0n && check.grantedTTL === BigInt(ttl)) return { id, ttl: ttl };
        // Someone else's lease: nothing of ours lives under this ID, so a new one is safe. (A TTL
        // below the server's minimum is raised, so a lease of ours can read as someone else's here;
        // then it lapses within that minimum, a few seconds.)
        if (collisions >= 2) throw e;
        id = randomLeaseId();
      }
    }
  });
}

/** Revokes a lease; see the module notes for why retrying it is safe. */
export async function revokeLease(raw: Client<typeof LeaseService>, id: bigint, options: CallOptions | undefined, defaultTimeoutMs: number): Promise<void> {
  await withRetries(REVOKE, options, defaultTimeoutMs, async (callOptions, uncertain) => {
    try {
      await raw.leaseRevoke({ ID: id }, toConnectOptions(callOptions));
    } catch (e) {
      // After an attempt of unknown outcome, "not found" means the lease is gone: done.
      if (uncertain && e instanceof LeaseNotFoundError) return;
      throw e;
    }
  });
}
