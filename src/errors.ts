/**
 * Typed errors. Every error this client throws is an {@link EtcdError}: a
 * `ConnectError` (so it carries the gRPC `code`, the server's `rawMessage` and
 * `metadata`) plus the endpoint it came from. Server errors are matched by
 * gRPC code and message, as etcd's own clients do, and turned into one class
 * per condition so callers can `instanceof`-check them.
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** Common options of every {@link EtcdError}. */
export interface EtcdErrorOptions {
  /** `host:port` of the endpoint the error came from, when one is known. */
  endpoint?: string;
  cause?: unknown;
  metadata?: HeadersInit;
}

/** Base class of every error thrown by this client. */
export class EtcdError extends ConnectError {
  /** `host:port` of the endpoint the error came from, when one is known. */
  endpoint: string | undefined;

  constructor(message: string, code: Code, options: EtcdErrorOptions = {}) {
    super(message, code, options.metadata, undefined, options.cause);
    this.name = new.target.name;
    this.endpoint = options.endpoint;
  }

  /**
   * `ConnectError` replaces `instanceof` with a structural check that only
   * accepts plain `ConnectError`s; restore ordinary prototype-chain checks so
   * `err instanceof CompactedError` works.
   */
  static override [Symbol.hasInstance](v: unknown): boolean {
    return typeof v === "object" && v !== null && Object.prototype.isPrototypeOf.call(this.prototype, v);
  }
}

/** True for a `ConnectError` or any {@link EtcdError} (which `instanceof ConnectError` does not accept). */
export function isConnectError(e: unknown): e is ConnectError {
  return e instanceof ConnectError || e instanceof EtcdError;
}

// ---------------------------------------------------------------------------
// Client-side errors: raised before a request is sent, or about the client.

/** The client was closed; no call can be made on it any more. */
export class ClientClosedError extends EtcdError {
  constructor() {
    super("the client is closed", Code.Canceled);
  }
}

/** The caller's `AbortSignal` fired. `cause` is the signal's reason. */
export class AbortedError extends EtcdError {
  constructor(reason?: unknown) {
    super(`the call was aborted${reason instanceof Error && reason.message ? `: ${reason.message}` : ""}`, Code.Canceled, { cause: reason });
  }
}

/** The call's deadline passed before it finished. */
export class DeadlineExceededError extends EtcdError {
  constructor(
    /** The deadline the call had, in milliseconds. */
    readonly timeoutMs: number,
    /** Failures of earlier attempts on other endpoints, if any. */
    readonly attempts: readonly EtcdError[] = [],
    endpoint?: string,
  ) {
    const last = attempts.length > 0 ? `; earlier attempts: ${attempts.map((a) => `${a.endpoint ?? "?"}: ${a.rawMessage}`).join("; ")}` : "";
    super(`deadline of ${timeoutMs} ms exceeded${endpoint !== undefined ? ` (last endpoint ${endpoint})` : ""}${last}`, Code.DeadlineExceeded, { endpoint });
  }
}

/** Why an endpoint could not be used. */
export type EndpointFailureReason =
  | "refused"
  | "dial-timeout"
  | "tls"
  | "protocol"
  | "connection-lost"
  | "ping-timeout"
  | "goaway"
  | "closed"
  | "other";

const REASON_TEXT: Record<EndpointFailureReason, string> = {
  refused: "connection refused",
  "dial-timeout": "no answer within the dial timeout",
  tls: "TLS handshake failed",
  protocol: "the endpoint does not speak gRPC over HTTP/2 as expected",
  "connection-lost": "connection lost",
  "ping-timeout": "keep-alive ping unanswered",
  goaway: "the server is closing the connection (GOAWAY)",
  closed: "connection closed",
  other: "connection failed",
};

/** An endpoint could not be reached, or its connection broke. */
export class EndpointUnavailableError extends EtcdError {
  constructor(
    address: string,
    /** What went wrong, as a machine-readable word. */
    readonly reason: EndpointFailureReason,
    cause?: unknown,
    timeoutMs?: number,
  ) {
    const detail = cause instanceof Error ? cause.message : typeof cause === "string" ? cause : "";
    const within = timeoutMs !== undefined ? ` (${timeoutMs} ms)` : "";
    super(`${address}: ${REASON_TEXT[reason]}${within}${detail ? `: ${detail}` : ""}`, Code.Unavailable, { endpoint: address, cause });
  }
}

/** Every endpoint failed; `errors` holds each endpoint's last failure. */
export class NoEndpointAvailableError extends EtcdError {
  constructor(readonly errors: readonly EtcdError[]) {
    super(
      `no endpoint available: ${errors.map((e) => `${e.endpoint ?? "?"}: ${e.rawMessage}`).join("; ") || "none configured"}`,
      Code.Unavailable,
      { cause: errors[errors.length - 1] },
    );
  }
}

/**
 * A write may or may not have been applied: the connection broke after the
 * request was sent and before the answer came. It was not retried, because a
 * retry could apply it twice. Read the state back to find out, or opt in with
 * `retryWrites` for idempotent writes.
 */
export class OutcomeUnknownError extends EtcdError {
  constructor(
    /** `Service/Method` of the call. */
    readonly method: string,
    cause: EtcdError,
  ) {
    super(`outcome of ${method} is unknown: ${cause.rawMessage}`, Code.Unavailable, { endpoint: cause.endpoint, cause });
  }
}

/** A key (or range end) is empty, or not a string or Uint8Array. */
export class InvalidKeyError extends EtcdError {
  constructor(message: string, options?: EtcdErrorOptions) {
    super(message, Code.InvalidArgument, options);
  }
}

/** An option or argument is invalid; nothing was sent. */
export class InvalidOptionError extends EtcdError {
  constructor(message: string) {
    super(message, Code.InvalidArgument);
  }
}

/** A request is larger than the server accepts (`--max-request-bytes`). */
export class RequestTooLargeError extends EtcdError {
  constructor(
    /** Size of the encoded request in bytes, when known. */
    readonly size?: number,
    /** The limit in bytes, when known. */
    readonly limit?: number,
    options?: EtcdErrorOptions & { message?: string; code?: Code },
  ) {
    super(
      options?.message ??
        `request of ${size ?? "?"} bytes exceeds the limit of ${limit ?? "?"} bytes (the server's --max-request-bytes; raise maxRequestBytes only together with it)`,
      options?.code ?? Code.InvalidArgument,
      options,
    );
  }
}

/** A response was larger than `maxResponseBytes`. */
export class ResponseTooLargeError extends EtcdError {}

/** A transaction has more operations than the server allows (`--max-txn-ops`, default 128). */
export class TooManyOpsError extends EtcdError {
  constructor(
    readonly count?: number,
    readonly limit?: number,
    options?: EtcdErrorOptions & { message?: string },
  ) {
    super(options?.message ?? `transaction has ${count} operations, more than the limit of ${limit}`, Code.InvalidArgument, options);
  }
}

// ---------------------------------------------------------------------------
// Server errors, one class per condition etcd reports.

/** Base for errors etcd answers with; `rawMessage` holds the server's text. */
export class ServerError extends EtcdError {
  constructor(message: string, code: Code, options?: EtcdErrorOptions) {
    super(message, code, options);
  }
}

/** A read or watch asked for a revision that was compacted away. */
export class CompactedError extends ServerError {
  /** The compaction revision, when the server reported it (watch). Re-read and resume from here. */
  compactRevision: bigint | undefined;
  constructor(message: string, code: Code, options?: EtcdErrorOptions & { compactRevision?: bigint }) {
    super(message, code, options);
    this.compactRevision = options?.compactRevision;
  }
}
/** A read asked for a revision newer than the store's. */
export class FutureRevisionError extends ServerError {}
/** The key was not found (e.g. `ignoreValue` or `ignoreLease` on an absent key). */
export class KeyNotFoundError extends ServerError {}
/** A value was given together with `ignoreValue`. */
export class ValueProvidedError extends ServerError {}
/** A lease was given together with `ignoreLease`. */
export class LeaseProvidedError extends ServerError {}
/** A transaction writes one key twice. */
export class DuplicateKeyError extends ServerError {}
/** The sort option is invalid. */
export class InvalidSortOptionError extends ServerError {}
/** Lease TTL over the server's maximum. */
export class LeaseTtlTooLargeError extends ServerError {}
/** The backend quota is exhausted (NOSPACE alarm); only deletes and compaction help. */
export class NoSpaceError extends ServerError {}
/** The server is overloaded (too many pending proposals). */
export class TooManyRequestsError extends ServerError {}
/** The lease does not exist (expired or revoked). */
export class LeaseNotFoundError extends ServerError {}
/** A lease with that ID already exists. */
export class LeaseExistsError extends ServerError {}
/** The member does not exist. */
export class MemberNotFoundError extends ServerError {}
/** A member with that ID already exists. */
export class MemberExistsError extends ServerError {}
/** A member already uses those peer URLs. */
export class PeerUrlExistsError extends ServerError {}
/** The member URLs are malformed. */
export class InvalidMemberUrlsError extends ServerError {}
/** Too few started members to reconfigure safely. */
export class NotEnoughStartedMembersError extends ServerError {}
/** Only a learner can be promoted. */
export class MemberNotLearnerError extends ServerError {}
/** The RPC is not served by a learner member. */
export class LearnerNotSupportedError extends ServerError {}
/** The member is not the leader (e.g. MoveLeader elsewhere). */
export class NotLeaderError extends ServerError {}
/** Leadership cannot move to that member. */
export class BadLeaderTransfereeError extends ServerError {}
/** The cluster version does not support the request. */
export class NotCapableError extends ServerError {}
/** The user name is empty. */
export class UserNameEmptyError extends ServerError {}
/** The role name is empty. */
export class RoleNameEmptyError extends ServerError {}
/** Wrong user name or password. */
export class AuthFailedError extends ServerError {}
/** The auth store changed since the token was issued; authenticate again. */
export class AuthRevisionOldError extends ServerError {}
/** The auth token is invalid or expired. */
export class InvalidAuthTokenError extends ServerError {}
/** Authentication is not enabled on the server. */
export class AuthNotEnabledError extends ServerError {}
/** The user lacks the permission for this request. */
export class PermissionDeniedError extends ServerError {}
/** The user exists already. */
export class UserExistsError extends ServerError {}
/** The user does not exist. */
export class UserNotFoundError extends ServerError {}
/** The role exists already. */
export class RoleExistsError extends ServerError {}
/** The role does not exist. */
export class RoleNotFoundError extends ServerError {}
/** The role is not granted to the user. */
export class RoleNotGrantedError extends ServerError {}
/** The permission is not granted to the role. */
export class PermissionNotGrantedError extends ServerError {}
/** Auth cannot be enabled: the root user is missing. */
export class RootUserNotExistError extends ServerError {}
/** Auth cannot be enabled: root lacks the root role. */
export class RootRoleNotExistError extends ServerError {}
/** The member has no leader (Unavailable). */
export class NoLeaderError extends ServerError {}
/** The leader changed while the request was in flight (Unavailable). */
export class LeaderChangedError extends ServerError {}
/** The member is stopping (Unavailable). */
export class ServerStoppedError extends ServerError {}
/** The cluster is unhealthy (Unavailable). */
export class UnhealthyClusterError extends ServerError {}
/** The server timed out proposing the request; it may still be applied (Unavailable). */
export class ServerTimeoutError extends ServerError {}
/** The cluster found corruption. */
export class CorruptError extends ServerError {}

type ServerErrorClass = new (message: string, code: Code, options?: EtcdErrorOptions) => EtcdError;

// Server answers for conditions the client also checks itself share the client-side class.
class ServerInvalidKeyError extends InvalidKeyError {
  constructor(message: string, _code: Code, options?: EtcdErrorOptions) {
    super(message, options);
    this.name = "InvalidKeyError";
  }
}
class ServerTooManyOpsError extends TooManyOpsError {
  constructor(message: string, _code: Code, options?: EtcdErrorOptions) {
    super(undefined, undefined, { ...options, message });
    this.name = "TooManyOpsError";
  }
}
class ServerRequestTooLargeError extends RequestTooLargeError {
  constructor(message: string, code: Code, options?: EtcdErrorOptions) {
    super(undefined, undefined, { ...options, message, code });
    this.name = "RequestTooLargeError";
  }
}

/** Server messages (after the `etcdserver: ` prefix) and the class each maps to, per gRPC code. */
const SERVER_ERRORS: ReadonlyArray<[Code, string, ServerErrorClass]> = [
  [Code.InvalidArgument, "key is not provided", ServerInvalidKeyError],
  [Code.InvalidArgument, "key not found", KeyNotFoundError],
  [Code.InvalidArgument, "value is provided", ValueProvidedError],
  [Code.InvalidArgument, "lease is provided", LeaseProvidedError],
  [Code.InvalidArgument, "too many operations in txn request", ServerTooManyOpsError],
  [Code.InvalidArgument, "duplicate key given in txn request", DuplicateKeyError],
  [Code.InvalidArgument, "invalid sort option", InvalidSortOptionError],
  [Code.InvalidArgument, "request is too large", ServerRequestTooLargeError],
  [Code.InvalidArgument, "user name is empty", UserNameEmptyError],
  [Code.InvalidArgument, "role name is empty", RoleNameEmptyError],
  [Code.InvalidArgument, "authentication failed, invalid user ID or password", AuthFailedError],
  [Code.InvalidArgument, "revision of auth store is old", AuthRevisionOldError],
  [Code.InvalidArgument, "given member URLs are invalid", InvalidMemberUrlsError],
  [Code.OutOfRange, "mvcc: required revision has been compacted", CompactedError],
  [Code.OutOfRange, "mvcc: required revision is a future revision", FutureRevisionError],
  [Code.OutOfRange, "too large lease TTL", LeaseTtlTooLargeError],
  [Code.ResourceExhausted, "mvcc: database space exceeded", NoSpaceError],
  [Code.ResourceExhausted, "too many requests", TooManyRequestsError],
  [Code.NotFound, "requested lease not found", LeaseNotFoundError],
  [Code.NotFound, "member not found", MemberNotFoundError],
  [Code.FailedPrecondition, "lease already exists", LeaseExistsError],
  [Code.FailedPrecondition, "member ID already exist", MemberExistsError],
  [Code.FailedPrecondition, "Peer URLs already exists", PeerUrlExistsError],
  [Code.FailedPrecondition, "re-configuration failed due to not enough started members", NotEnoughStartedMembersError],
  [Code.FailedPrecondition, "user name already exists", UserExistsError],
  [Code.FailedPrecondition, "user name not found", UserNotFoundError],
  [Code.FailedPrecondition, "role name already exists", RoleExistsError],
  [Code.FailedPrecondition, "role name not found", RoleNotFoundError],
  [Code.FailedPrecondition, "role is not granted to the user", RoleNotGrantedError],
  [Code.FailedPrecondition, "permission is not granted to the role", PermissionNotGrantedError],
  [Code.FailedPrecondition, "authentication is not enabled", AuthNotEnabledError],
  [Code.FailedPrecondition, "root user does not exist", RootUserNotExistError],
  [Code.FailedPrecondition, "root user does not have root role", RootRoleNotExistError],
  [Code.FailedPrecondition, "not leader", NotLeaderError],
  [Code.FailedPrecondition, "not capable", NotCapableError],
  [Code.FailedPrecondition, "rpc not supported for learner", LearnerNotSupportedError],
  [Code.FailedPrecondition, "bad leader transferee", BadLeaderTransfereeError],
  [Code.FailedPrecondition, "can only promote a learner member", MemberNotLearnerError],
  [Code.PermissionDenied, "permission denied", PermissionDeniedError],
  [Code.Unauthenticated, "invalid auth token", InvalidAuthTokenError],
  [Code.Unavailable, "no leader", NoLeaderError],
  [Code.Unavailable, "leader changed", LeaderChangedError],
  [Code.Unavailable, "server stopped", ServerStoppedError],
  [Code.Unavailable, "unhealthy cluster", UnhealthyClusterError],
  [Code.Unavailable, "request timed out", ServerTimeoutError],
  [Code.DataLoss, "corrupt cluster", CorruptError],
];

const PREFIX = "etcdserver: ";

/** Finds the error class for a server answer, or undefined for an unknown one. */
function classify(code: Code, message: string): ServerErrorClass | undefined {
  const text = message.startsWith(PREFIX) ? message.slice(PREFIX.length) : message;
  for (const [c, m, cls] of SERVER_ERRORS) {
    // "request timed out" has variants with a suffix explaining the likely cause.
    if (c === code && (text === m || (m === "request timed out" && text.startsWith(m)))) return cls;
  }
  if (code === Code.ResourceExhausted && /message larger than max/.test(message)) {
    // grpc-go's own limit: the server refused our request. Any other such text is our receive limit.
    return message.startsWith("grpc: received") ? ServerRequestTooLargeError : ResponseTooLargeError;
  }
  return undefined;
}

/**
 * Turns anything a call can throw into an {@link EtcdError}: our own errors
 * pass through (the endpoint filled in), server answers map to their class,
 * anything else becomes a plain `EtcdError` with the original as `cause`.
 */
export function toEtcdError(e: unknown, endpoint?: string): EtcdError {
  if (e instanceof EtcdError) {
    e.endpoint ??= endpoint;
    return e;
  }
  if (e instanceof ConnectError) {
    const cls = classify(e.code, e.rawMessage);
    const options = { endpoint, cause: e.cause ?? e, metadata: e.metadata };
    if (cls !== undefined) return new cls(e.rawMessage, e.code, options);
    return new EtcdError(e.rawMessage, e.code, options);
  }
  if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError")) return new AbortedError(e);
  return new EtcdError(e instanceof Error ? e.message : String(e), Code.Unknown, { endpoint, cause: e });
}

// ---------------------------------------------------------------------------
// Leases.

/** Why a kept-alive lease was lost; see {@link LeaseLostError}. */
export type LeaseLostReason = "expired" | "revoked" | "not-found" | "keepalive-failed";

const LOST_TEXT: Record<LeaseLostReason, string> = {
  expired: "the server no longer has it (its TTL ran out)",
  revoked: "it was revoked through this client",
  "not-found": "the server no longer has it, although its TTL had not run out (revoked elsewhere)",
  "keepalive-failed": "no keep-alive was answered before its TTL ran out",
};

/**
 * A lease kept alive by this client is gone, or must be presumed gone. Never
 * thrown by a call: a kept lease resolves its `lost` promise with it and
 * emits it as its `lost` event.
 *
 * - `expired`: the server answered a keep-alive with TTL <= 0 when the lease's
 *   time was up anyway.
 * - `revoked`: revoked through this client.
 * - `not-found`: the server answered TTL <= 0 before the lease could have
 *   expired, so someone else revoked it.
 * - `keepalive-failed`: no refresh was answered before the TTL (counted from
 *   the last answered refresh) ran out; keep-alive had been failing since
 *   `since`, and `cause` holds the last stream error, if any. The lease may
 *   linger on the server for a moment, but whatever it guarded must be
 *   treated as lost.
 */
export class LeaseLostError extends EtcdError {
  constructor(
    /** The lease ID. */
    readonly leaseId: bigint,
    /** Why it was lost. */
    readonly reason: LeaseLostReason,
    /**
     * For `keepalive-failed`: when the first refresh that was never answered
     * fell due. For the other reasons: when the loss was seen.
     */
    readonly since: Date,
    cause?: EtcdError,
  ) {
    const failing = reason === "keepalive-failed" ? ` (keep-alive failing since ${since.toISOString()}${cause !== undefined ? `; last error: ${cause.rawMessage}` : ""})` : "";
    super(`lease ${leaseId.toString(16)} lost: ${LOST_TEXT[reason]}${failing}`, reason === "keepalive-failed" ? Code.Unavailable : Code.NotFound, {
      endpoint: cause?.endpoint,
      cause,
    });
  }
}
