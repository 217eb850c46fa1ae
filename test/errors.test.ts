// Error mapping is pure logic: every etcd error string under its gRPC code maps
// to its own class, carries code, server message and endpoint, and
// instanceof works through the whole hierarchy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import * as errors from "../src/errors.js";
import {
  AbortedError,
  CompactedError,
  DeadlineExceededError,
  EndpointUnavailableError,
  EtcdError,
  InvalidKeyError,
  NoEndpointAvailableError,
  OutcomeUnknownError,
  RequestTooLargeError,
  ResponseTooLargeError,
  ServerError,
  ServerTimeoutError,
  TooManyOpsError,
  toEtcdError,
} from "../src/errors.js";

// [code, message as the server sends it, class name expected]
const CASES: Array<[Code, string, string]> = [
  [Code.InvalidArgument, "etcdserver: key is not provided", "InvalidKeyError"],
  [Code.InvalidArgument, "etcdserver: key not found", "KeyNotFoundError"],
  [Code.InvalidArgument, "etcdserver: value is provided", "ValueProvidedError"],
  [Code.InvalidArgument, "etcdserver: lease is provided", "LeaseProvidedError"],
  [Code.InvalidArgument, "etcdserver: too many operations in txn request", "TooManyOpsError"],
  [Code.InvalidArgument, "etcdserver: duplicate key given in txn request", "DuplicateKeyError"],
  [Code.InvalidArgument, "etcdserver: invalid sort option", "InvalidSortOptionError"],
  [Code.InvalidArgument, "etcdserver: request is too large", "RequestTooLargeError"],
  [Code.InvalidArgument, "etcdserver: user name is empty", "UserNameEmptyError"],
  [Code.InvalidArgument, "etcdserver: role name is empty", "RoleNameEmptyError"],
  [Code.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password", "AuthFailedError"],
  [Code.InvalidArgument, "etcdserver: revision of auth store is old", "AuthRevisionOldError"],
  [Code.InvalidArgument, "etcdserver: given member URLs are invalid", "InvalidMemberUrlsError"],
  [Code.OutOfRange, "etcdserver: mvcc: required revision has been compacted", "CompactedError"],
  [Code.OutOfRange, "etcdserver: mvcc: required revision is a future revision", "FutureRevisionError"],
  [Code.OutOfRange, "etcdserver: too large lease TTL", "LeaseTtlTooLargeError"],
  [Code.ResourceExhausted, "etcdserver: mvcc: database space exceeded", "NoSpaceError"],
  [Code.ResourceExhausted, "etcdserver: too many requests", "TooManyRequestsError"],
  [Code.ResourceExhausted, "grpc: received message larger than max (2097174 vs. 1572864)", "RequestTooLargeError"],
  [Code.NotFound, "etcdserver: requested lease not found", "LeaseNotFoundError"],
  [Code.NotFound, "etcdserver: member not found", "MemberNotFoundError"],
  [Code.FailedPrecondition, "etcdserver: lease already exists", "LeaseExistsError"],
  [Code.FailedPrecondition, "etcdserver: member ID already exist", "MemberExistsError"],
  [Code.FailedPrecondition, "etcdserver: Peer URLs already exists", "PeerUrlExistsError"],
  [Code.FailedPrecondition, "etcdserver: re-configuration failed due to not enough started members", "NotEnoughStartedMembersError"],
  [Code.FailedPrecondition, "etcdserver: user name already exists", "UserExistsError"],
  [Code.FailedPrecondition, "etcdserver: user name not found", "UserNotFoundError"],
  [Code.FailedPrecondition, "etcdserver: role name already exists", "RoleExistsError"],
  [Code.FailedPrecondition, "etcdserver: role name not found", "RoleNotFoundError"],
  [Code.FailedPrecondition, "etcdserver: role is not granted to the user", "RoleNotGrantedError"],
  [Code.FailedPrecondition, "etcdserver: permission is not granted to the role", "PermissionNotGrantedError"],
  [Code.FailedPrecondition, "etcdserver: authentication is not enabled", "AuthNotEnabledError"],
  [Code.FailedPrecondition, "etcdserver: root user does not exist", "RootUserNotExistError"],
  [Code.FailedPrecondition, "etcdserver: root user does not have root role", "RootRoleNotExistError"],
  [Code.FailedPrecondition, "etcdserver: not leader", "NotLeaderError"],
  [Code.FailedPrecondition, "etcdserver: not capable", "NotCapableError"],
  [Code.FailedPrecondition, "etcdserver: rpc not supported for learner", "LearnerNotSupportedError"],
  [Code.FailedPrecondition, "etcdserver: bad leader transferee", "BadLeaderTransfereeError"],
  [Code.FailedPrecondition, "etcdserver: can only promote a learner member", "MemberNotLearnerError"],
  [Code.PermissionDenied, "etcdserver: permission denied", "PermissionDeniedError"],
  [Code.Unauthenticated, "etcdserver: invalid auth token", "InvalidAuthTokenError"],
  [Code.Unavailable, "etcdserver: no leader", "NoLeaderError"],
  [Code.Unavailable, "etcdserver: leader changed", "LeaderChangedError"],
  [Code.Unavailable, "etcdserver: server stopped", "ServerStoppedError"],
  [Code.Unavailable, "etcdserver: unhealthy cluster", "UnhealthyClusterError"],
  [Code.Unavailable, "etcdserver: request timed out", "ServerTimeoutError"],
  [Code.Unavailable, "etcdserver: request timed out, possibly due to previous leader failure", "ServerTimeoutError"],
  [Code.Unavailable, "etcdserver: request timed out, possibly due to connection lost", "ServerTimeoutError"],
  [Code.DataLoss, "etcdserver: corrupt cluster", "CorruptError"],
  // etcd 3.4 and 3.5 (api/v3rpc/rpctypes/error.go) send these two as Unavailable, not FailedPrecondition.
  [Code.Unavailable, "etcdserver: not capable", "NotCapableError"],
  [Code.Unavailable, "etcdserver: rpc not supported for learner", "LearnerNotSupportedError"],
  [Code.FailedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader", "LearnerNotReadyError"],
  [Code.FailedPrecondition, "etcdserver: too many learner members in cluster", "TooManyLearnersError"],
  [Code.InvalidArgument, "etcdserver: invalid auth management", "InvalidAuthManagementError"],
  [Code.Unavailable, "etcdserver: cluster version not found during downgrade", "ClusterVersionUnavailableError"],
  [Code.InvalidArgument, "etcdserver: wrong downgrade target version format", "WrongDowngradeVersionFormatError"],
  [Code.InvalidArgument, "etcdserver: invalid downgrade target version", "InvalidDowngradeTargetVersionError"],
  [Code.FailedPrecondition, "etcdserver: cluster has a downgrade job in progress", "DowngradeInProgressError"],
  [Code.FailedPrecondition, "etcdserver: no inflight downgrade job", "NoInflightDowngradeError"],
  // The auth store's own text, passed through by the server with code Unknown.
  [Code.Unknown, "auth: authentication failed, password was given for no password user", "AuthFailedError"],
];

test("every etcd error string maps to its class, keeping code, message and endpoint", () => {
  for (const [code, message, name] of CASES) {
    const cls = (errors as unknown as Record<string, new (...a: never[]) => EtcdError>)[name];
    assert.ok(cls, `${name} is exported`);
    const e = toEtcdError(new ConnectError(message, code), "127.0.0.1:2379");
    assert.ok(e instanceof cls, `${message} -> ${e.name}, want ${name}`);
    assert.ok(e instanceof EtcdError);
    assert.equal(e.name, name);
    assert.equal(e.code, code);
    assert.equal(e.rawMessage, message);
    assert.equal(e.endpoint, "127.0.0.1:2379");
  }
});

test("the same text under another code is not that error", () => {
  const e = toEtcdError(new ConnectError("etcdserver: key not found", Code.Unavailable));
  assert.equal(e.name, "EtcdError");
  assert.equal(e.code, Code.Unavailable);
});

test("instanceof follows the hierarchy, and unrelated classes do not match", () => {
  const compacted = toEtcdError(new ConnectError("etcdserver: mvcc: required revision has been compacted", Code.OutOfRange));
  assert.ok(compacted instanceof CompactedError);
  assert.ok(compacted instanceof ServerError);
  assert.ok(compacted instanceof EtcdError);
  assert.ok(!(compacted instanceof ServerTimeoutError));
  assert.ok(!(new Error("x") instanceof EtcdError));
  assert.ok(!((null as unknown as object) instanceof EtcdError));
});

test("client-side errors say what happened, with numbers", () => {
  const big = new RequestTooLargeError(2_000_000, 1_572_864);
  assert.match(big.message, /2000000 bytes exceeds the limit of 1572864 bytes/);
  assert.equal(big.size, 2_000_000);
  const ops = new TooManyOpsError(200, 128);
  assert.match(ops.message, /200 operations, more than the limit of 128/);
  const dial = new EndpointUnavailableError("127.0.0.1:2379", "dial-timeout", undefined, 500);
  assert.match(dial.message, /127\.0\.0\.1:2379: no answer within the dial timeout \(500 ms\)/);
  assert.equal(dial.reason, "dial-timeout");
  const none = new NoEndpointAvailableError([dial, new EndpointUnavailableError("127.0.0.1:2380", "refused")]);
  assert.match(none.message, /127\.0\.0\.1:2379: .*; 127\.0\.0\.1:2380: /);
  const unknown = new OutcomeUnknownError("etcdserverpb.KV/Put", dial);
  assert.match(unknown.message, /outcome of etcdserverpb\.KV\/Put is unknown/);
  assert.equal(unknown.endpoint, "127.0.0.1:2379");
  const deadline = new DeadlineExceededError(1500, [dial], "127.0.0.1:2380");
  assert.equal(deadline.code, Code.DeadlineExceeded);
  assert.match(deadline.message, /deadline of 1500 ms exceeded/);
});

test("our own errors pass through unchanged, gaining the endpoint when missing", () => {
  const key = new InvalidKeyError("key is empty");
  assert.equal(toEtcdError(key, "127.0.0.1:1"), key);
  assert.equal(key.endpoint, "127.0.0.1:1");
  const other = toEtcdError(new TypeError("boom"));
  assert.equal(other.code, Code.Unknown);
  assert.ok(other.cause instanceof TypeError);
  const abort = new DOMException("stop", "AbortError");
  assert.ok(toEtcdError(abort) instanceof AbortedError);
});

test("a receive limit of our own maps to ResponseTooLargeError, the server's to RequestTooLargeError", () => {
  const ours = toEtcdError(new ConnectError("received message larger than max (3000 vs. 100 bytes)", Code.ResourceExhausted));
  assert.ok(ours instanceof ResponseTooLargeError, ours.name);
  const theirs = toEtcdError(new ConnectError("grpc: received message larger than max (3000 vs. 100)", Code.ResourceExhausted));
  assert.ok(theirs instanceof RequestTooLargeError, theirs.name);
});

test("NotSupportedError names the feature, the version needed and the server's", () => {
  const e = new errors.NotSupportedError("AuthStatus", "3.5", "3.4.23", { endpoint: "127.0.0.1:2379" });
  assert.equal(e.rawMessage, "AuthStatus needs etcd 3.5 or later; this server is 3.4.23");
  assert.equal(e.code, Code.Unimplemented);
  assert.equal(e.requiredVersion, "3.5");
  assert.equal(e.serverVersion, "3.4.23");
  assert.equal(e.endpoint, "127.0.0.1:2379");
  assert.match(new errors.NotSupportedError("Downgrade", "3.5").message, /Downgrade needs etcd 3\.5 or later; this server does not implement it/);
  assert.ok(new errors.SnapshotVerificationError("x") instanceof EtcdError);
});
