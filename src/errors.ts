/**
 * Typed errors. Every error this client throws is an {@link EtcdError}: a
 * `ConnectError` (so it carries the gRPC `code`, the server's `rawMessage` and
 * `metadata`) plus the endpoint it came from. Server errors are matched by
 * gRPC code and message, as etcd's own clients do, and turned into one class
 * per condition so callers can `instanceof`-check them.
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { carryMarks } from "./transport/failure.js";

/** Common options of every {@link EtcdError}. */
export interface EtcdErrorOptions {
  /** `host:port` of the endpoint the error came from, when one is known. */
  endpoint?: string;
  /** The underlying error, if any. */
  cause?: unknown;
  /** Response headers and trailers that came with the error. */
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
    const last = attempts.length > 0 ? `; earlier attempts: ${attempts.map(describeFailure).join("; ")}` : "";
    super(`deadline of ${timeoutMs} ms exceeded${endpoint !== undefined ? ` (last endpoint ${endpoint})` : ""}${last}`, Code.DeadlineExceeded, { endpoint });
  }
}

/**
 * Why an endpoint could not be used. The dial reports its stage: name lookup
 * (`name-not-found`, `dns-timeout`), TCP (`refused`, `unreachable`,
 * `connect-timeout`), TLS (`tls`, `tls-timeout`) and the HTTP/2 handshake
 * (`protocol`, `dial-timeout`).
 */
export type EndpointFailureReason =
  | "name-not-found"
  | "dns-timeout"
  | "refused"
  | "unreachable"
  | "connect-timeout"
  | "tls"
  | "tls-timeout"
  | "dial-timeout"
  | "protocol"
  | "connection-lost"
  | "ping-timeout"
  | "goaway"
  | "closed"
  | "other";

const REASON_TEXT: Record<EndpointFailureReason, string> = {
  "name-not-found": "host name not found",
  "dns-timeout": "host name lookup timed out",
  refused: "connection refused",
  unreachable: "host or network unreachable",
  "connect-timeout": "TCP connection not established within the timeout",
  tls: "TLS handshake failed",
  "tls-timeout": "TLS handshake not finished within the timeout",
  "dial-timeout": "no HTTP/2 handshake within the dial timeout",
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
    const detail = causeDetail(cause);
    const within = timeoutMs !== undefined ? ` (${timeoutMs} ms)` : "";
    super(`${address}: ${REASON_TEXT[reason]}${within}${detail ? `: ${detail}` : ""}`, Code.Unavailable, { endpoint: address, cause });
  }
}

/**
 * What a cause adds to an endpoint failure's message. A Node system error
 * ("connect ECONNREFUSED 127.0.0.1:2379") only restates the endpoint: its code
 * is enough.
 */
function causeDetail(cause: unknown): string {
  if (typeof cause === "string") return cause;
  if (!(cause instanceof Error)) return "";
  const sys = cause as Error & { code?: unknown; syscall?: unknown };
  if (typeof sys.code === "string" && typeof sys.syscall === "string") return sys.code;
  return cause.message;
}

/** Every endpoint failed; `errors` holds each endpoint's last failure, one per endpoint. */
export class NoEndpointAvailableError extends EtcdError {
  /** The last failure of each endpoint, one per endpoint. */
  readonly errors: readonly EtcdError[];

  constructor(errors: readonly EtcdError[]) {
    // One entry per endpoint: its latest failure.
    const byEndpoint = new Map<string, EtcdError>();
    for (const e of errors) {
      const key = e.endpoint ?? "?";
      byEndpoint.delete(key);
      byEndpoint.set(key, e);
    }
    const list = [...byEndpoint.values()];
    super(`no endpoint available: ${list.map(describeFailure).join("; ") || "none configured"}`, Code.Unavailable, {
      cause: list[list.length - 1],
    });
    this.errors = list;
  }
}

/** `endpoint: what went wrong`, naming the endpoint once even when the message already starts with it. */
function describeFailure(e: EtcdError): string {
  const endpoint = e.endpoint ?? "?";
  return e.rawMessage.startsWith(`${endpoint}: `) ? e.rawMessage : `${endpoint}: ${e.rawMessage}`;
}

/**
 * A write may or may not have been applied: the connection broke after the
 * request was sent and before the answer came. It was not retried, because a
 * retry could apply it twice. Read the state back to find out, or opt in with
 * `retryWrites` for idempotent writes.
 *
 * ```ts
 * try {
 *   await etcd.put("orders/42", order);
 * } catch (e) {
 *   if (!(e instanceof OutcomeUnknownError)) throw e;
 *   const applied = (await etcd.get("orders/42")).count > 0n; // the store says what happened
 * }
 * ```
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
    /** Operations in the transaction, when known. */
    readonly count?: number,
    /** The limit (`maxTxnOps`), when known. */
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
/** The `v3election` service: the leader key given was not (or no longer) the leader's (resigned, or its lease ended). */
export class ElectionNotLeaderError extends ServerError {}
/** The `v3election` service: the election has no leader now. */
export class ElectionNoLeaderError extends ServerError {}
/** A learner cannot be promoted until it has caught up with the leader; try again shortly. */
export class LearnerNotReadyError extends ServerError {}
/** The cluster already has as many learners as it allows (one, by default). */
export class TooManyLearnersError extends ServerError {}
/** The auth change is not allowed (e.g. revoking the root role from root while auth is on). */
export class InvalidAuthManagementError extends ServerError {}
/** The cluster version is not known yet, so no downgrade can be planned. */
export class ClusterVersionUnavailableError extends ServerError {}
/** The downgrade target is not a `major.minor` version. */
export class WrongDowngradeVersionFormatError extends ServerError {}
/** The downgrade target is not one minor version below the cluster version. */
export class InvalidDowngradeTargetVersionError extends ServerError {}
/** A downgrade is already under way. */
export class DowngradeInProgressError extends ServerError {}
/** There is no downgrade to cancel. */
export class NoInflightDowngradeError extends ServerError {}

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
  [Code.FailedPrecondition, "can only promote a learner member which is in sync with leader", LearnerNotReadyError],
  [Code.FailedPrecondition, "too many learner members in cluster", TooManyLearnersError],
  [Code.InvalidArgument, "invalid auth management", InvalidAuthManagementError],
  // The auth store's own error, passed through unmapped (code Unknown) by 3.4 and 3.5.
  [Code.Unknown, "auth: authentication failed, password was given for no password user", AuthFailedError],
  [Code.Unavailable, "cluster version not found during downgrade", ClusterVersionUnavailableError],
  [Code.InvalidArgument, "wrong downgrade target version format", WrongDowngradeVersionFormatError],
  [Code.InvalidArgument, "invalid downgrade target version", InvalidDowngradeTargetVersionError],
  [Code.FailedPrecondition, "cluster has a downgrade job in progress", DowngradeInProgressError],
  [Code.FailedPrecondition, "no inflight downgrade job", NoInflightDowngradeError],
  [Code.PermissionDenied, "permission denied", PermissionDeniedError],
  [Code.Unauthenticated, "invalid auth token", InvalidAuthTokenError],
  [Code.Unavailable, "no leader", NoLeaderError],
  [Code.Unavailable, "leader changed", LeaderChangedError],
  [Code.Unavailable, "server stopped", ServerStoppedError],
  [Code.Unavailable, "unhealthy cluster", UnhealthyClusterError],
  [Code.Unavailable, "request timed out", ServerTimeoutError],
  // etcd 3.4 and 3.5 refuse these with Unavailable; later releases use FailedPrecondition (above).
  [Code.Unavailable, "not capable", NotCapableError],
  [Code.Unavailable, "rpc not supported for learner", LearnerNotSupportedError],
  [Code.DataLoss, "corrupt cluster", CorruptError],
  // The v3lock and v3election services relay their own errors, and the KV's, as Unknown.
  [Code.Unknown, "requested lease not found", LeaseNotFoundError],
  [Code.Unknown, "election: not leader", ElectionNotLeaderError],
  [Code.Unknown, "election: no leader", ElectionNoLeaderError],
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
    // The marks say where the call broke (never sent, or lost with its connection): the mapped error keeps them.
    return carryMarks(e, cls !== undefined ? new cls(e.rawMessage, e.code, options) : new EtcdError(e.rawMessage, e.code, options));
  }
  if (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError")) return new AbortedError(e);
  return new EtcdError(e instanceof Error ? e.message : String(e), Code.Unknown, { endpoint, cause: e });
}

// ---------------------------------------------------------------------------
// Concurrency recipes.

/**
 * A software transaction (`etcd.stm`) found its reads or writes overtaken by
 * other writers on every attempt: it ran `attempts` times and never committed.
 * Nothing of it was applied.
 */
export class StmConflictError extends EtcdError {
  constructor(
    /** How many times the function ran. */
    readonly attempts: number,
  ) {
    super(`software transaction still conflicted after ${attempts} attempts; nothing was applied`, Code.Aborted);
  }
}

// Administration: features a server lacks, snapshots.

/**
 * The server lacks a feature this call needs (e.g. `AuthStatus` on etcd 3.4).
 * Nothing was changed: calls whose request an older server would silently
 * misread are refused before they are sent.
 */
export class NotSupportedError extends EtcdError {
  constructor(
    /** What was asked for, e.g. `AuthStatus` or `hashedPassword`. */
    readonly feature: string,
    /** The oldest etcd version that has it, e.g. `3.5`. */
    readonly requiredVersion: string,
    /** The version the server reported, when known. */
    readonly serverVersion?: string,
    options?: EtcdErrorOptions,
  ) {
    super(
      `${feature} needs etcd ${requiredVersion} or later; ${serverVersion !== undefined ? `this server is ${serverVersion}` : "this server does not implement it"}`,
      Code.Unimplemented,
      options,
    );
  }
}

/** A snapshot stream ended incomplete or does not match its SHA-256; what was written must not be used. */
export class SnapshotVerificationError extends EtcdError {
  constructor(message: string, options?: EtcdErrorOptions) {
    super(message, Code.DataLoss, options);
  }
}

/**
 * The error for a server message that arrives outside a call status, such as
 * a watcher's `cancel_reason`: either a gRPC status in text form
 * (`rpc error: code = PermissionDenied desc = etcdserver: permission denied`)
 * or a bare message (`mvcc: watcher range is empty`). Both are looked up in
 * the same table as call errors; an unknown message gives a plain
 * {@link EtcdError} carrying the text.
 */
export function errorFromServerMessage(text: string, endpoint?: string): EtcdError {
  const status = /^rpc error: code = (\w+) desc = ([\s\S]*)$/.exec(text);
  const message = status !== null ? status[2]! : text;
  let code = status !== null ? (Code as unknown as Record<string, Code | undefined>)[status[1]!] : undefined;
  let cls = code !== undefined ? classify(code, message) : undefined;
  if (cls === undefined) {
    // No code, or one the table does not pair with this text: match the text alone.
    const bare = message.startsWith(PREFIX) ? message.slice(PREFIX.length) : message;
    const row = SERVER_ERRORS.find(([, m]) => bare === m || (m === "request timed out" && bare.startsWith(m)));
    if (row !== undefined) [code, , cls] = row;
  }
  const options = endpoint !== undefined ? { endpoint } : {};
  return cls !== undefined ? new cls(message, code!, options) : new EtcdError(message, code ?? Code.Unknown, options);
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
