/**
 * The retry policy: which calls may be sent again, after which failures, and
 * how long to wait. Reads are retried on Unavailable and on lost connections;
 * writes only when the request provably never left the client, unless the
 * caller opted in, because a write lost with its connection may have been
 * applied, and applying it twice is worse than an error.
 * @module
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  DeadlineExceededError,
  EndpointUnavailableError,
  LeaderChangedError,
  LearnerNotSupportedError,
  ServerStoppedError,
  ServerTimeoutError,
  isConnectError,
  type EtcdError,
} from "../errors.js";
import { isAnswerUnreadable, isConnectionLost, isUnsent } from "../transport/failure.js";

// Calls that read, or whose repetition leaves the same state, by "/package.Service/Method".
// LeaseGrant and LeaseRevoke are writes here: a grant repeated after a lost answer can create a
// second lease (or report "exists" for one that was ours); the lease layer makes its own retries safe.
const REPEATABLE = new Set([
  "etcdserverpb.KV/Range",
  "etcdserverpb.Lease/LeaseTimeToLive",
  "etcdserverpb.Lease/LeaseLeases",
  "etcdserverpb.Cluster/MemberList",
  "etcdserverpb.Maintenance/Status",
  "etcdserverpb.Maintenance/Hash",
  "etcdserverpb.Maintenance/HashKV",
  "etcdserverpb.Auth/Authenticate",
  "etcdserverpb.Auth/AuthStatus",
  "etcdserverpb.Auth/UserGet",
  "etcdserverpb.Auth/UserList",
  "etcdserverpb.Auth/RoleGet",
  "etcdserverpb.Auth/RoleList",
  "v3electionpb.Election/Leader",
]);

const ALARM = "etcdserverpb.Maintenance/Alarm";

/** Name of a method as `package.Service/Method`. */
export function methodName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/**
 * True for calls that may be sent twice without changing the outcome.
 * Alarm is a read only when it lists (action GET = 0).
 */
export function isRepeatable(method: DescMethod, input: unknown): boolean {
  const name = methodName(method);
  if (REPEATABLE.has(name)) return true;
  if (name === ALARM) return ((input as { action?: number } | undefined)?.action ?? 0) === 0;
  return false;
}

/** What a failed attempt means for the call and for the endpoint that served it. */
export interface FailureClass {
  /** The endpoint looks broken: move the pinned endpoint away and back it off. */
  endpointFailed: boolean;
  /** Sending the call again cannot apply it twice. */
  safeToResend: boolean;
  /** A repeatable call may be retried after this failure. */
  retryableIfRepeatable: boolean;
}

// Server answers that say "this member cannot serve you now", worth trying another member for.
const MEMBER_UNAVAILABLE = /no leader|server stopped|not capable|rpc not supported for learner|too many requests|unhealthy cluster/;
// Refusals etcd's gRPC interceptor gives before any handler runs (a learner
// asked for what only voting members serve, or a member without the v3
// capability yet): nothing was proposed, so even a write may go to another
// member. 3.4 and 3.5 send them as Unavailable, later releases as FailedPrecondition.
const REFUSED_BEFORE_HANDLING = /^etcdserver: (rpc not supported for learner|not capable)$/;

/** Classifies a failed attempt (the caller's own abort is handled before this). */
export function classifyFailure(err: unknown): FailureClass {
  if (isUnsent(err)) return { endpointFailed: true, safeToResend: true, retryableIfRepeatable: true };
  if (isConnectionLost(err)) return { endpointFailed: true, safeToResend: false, retryableIfRepeatable: true };
  const code = isConnectError(err) ? err.code : Code.Unknown;
  const message = isConnectError(err) ? err.rawMessage : "";
  if ((code === Code.Unavailable || code === Code.FailedPrecondition) && REFUSED_BEFORE_HANDLING.test(message)) {
    return { endpointFailed: true, safeToResend: true, retryableIfRepeatable: true };
  }
  if (code === Code.Unavailable) {
    // A server-side Unavailable: the request reached a member, which may have proposed it.
    return { endpointFailed: MEMBER_UNAVAILABLE.test(message), safeToResend: false, retryableIfRepeatable: true };
  }
  if (code === Code.ResourceExhausted && message.includes("too many requests")) {
    return { endpointFailed: false, safeToResend: false, retryableIfRepeatable: true };
  }
  return { endpointFailed: false, safeToResend: false, retryableIfRepeatable: false };
}

/** Backoff before attempt `attempt` (1-based) of a call: full jitter on an exponential ramp. */
export function retryDelayMs(attempt: number, baseMs = 25, capMs = 1000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt - 1, 16));
  return Math.random() * ceiling;
}

/**
 * True for server answers after which a write may still be applied: the
 * member gave up waiting (timed out, lost its leader, began shutting down)
 * while the proposal was already in raft, or its answer could not be read
 * (too large, not protobuf). The caller must hear "unknown".
 */
export function mayHaveBeenApplied(err: EtcdError): boolean {
  return err instanceof ServerTimeoutError || err instanceof LeaderChangedError || err instanceof ServerStoppedError || isAnswerUnreadable(err);
}

/**
 * True for a deadline that ended the call: ours, or the server's (grpc's
 * `DEADLINE_EXCEEDED` from the `grpc-timeout` we sent). Not etcd's own
 * "request timed out", which is a {@link ServerTimeoutError}.
 */
export function isDeadline(err: EtcdError): boolean {
  return err instanceof DeadlineExceededError || (err.code === Code.DeadlineExceeded && !err.rawMessage.startsWith("etcdserver:"));
}

/**
 * True when an endpoint failed in a way that waiting a moment will not fix:
 * nothing listens (refused), the name does not exist, or TLS or the protocol
 * do not match. When every endpoint fails like this, a call fails at once
 * rather than retrying until its deadline (unless it waits for ready).
 */
export function isDefinitiveFailure(err: EtcdError): boolean {
  return err instanceof EndpointUnavailableError && (err.reason === "refused" || err.reason === "name-not-found" || isConfigurationFailure(err));
}

/**
 * True for a TLS or protocol mismatch, or a learner refusing the call: no
 * retry on that endpoint can fix it, waiting for ready or not.
 */
export function isConfigurationFailure(err: EtcdError): boolean {
  return (err instanceof EndpointUnavailableError && (err.reason === "tls" || err.reason === "protocol")) || err instanceof LearnerNotSupportedError;
}
