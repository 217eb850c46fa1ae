// etcd's error answers as etcd 3.4 and 3.5 send them: each gRPC code with the
// message texts etcd's rpctypes pair with it (see etcd-facts.md), written here
// independently of src/errors.ts, with the class a caller should catch. The
// texts are checked against the etcd binary under test, the codes by mapping
// every text under every other code: a wrong table in src/errors.ts fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import * as errors from "../src/errors.js";
import {
  AbortedError,
  CompactedError,
  DeadlineExceededError,
  EndpointUnavailableError,
  EtcdError,
  InvalidKeyError,
  InvalidOptionError,
  NoEndpointAvailableError,
  OutcomeUnknownError,
  RequestTooLargeError,
  ResponseTooLargeError,
  ServerError,
  ServerTimeoutError,
  TooManyOpsError,
  toEtcdError,
} from "../src/errors.js";
import { etcdBinary, etcdVersion } from "./harness/index.js";

// gRPC code -> [text after "etcdserver: ", class to catch].
const ETCD: Partial<Record<keyof typeof Code, Array<[string, string]>>> = {
  InvalidArgument: [
    ["key is not provided", "InvalidKeyError"],
    ["key not found", "KeyNotFoundError"],
    ["value is provided", "ValueProvidedError"],
    ["lease is provided", "LeaseProvidedError"],
    ["too many operations in txn request", "TooManyOpsError"],
    ["duplicate key given in txn request", "DuplicateKeyError"],
    ["invalid sort option", "InvalidSortOptionError"],
    ["request is too large", "RequestTooLargeError"],
    ["user name is empty", "UserNameEmptyError"],
    ["role name is empty", "RoleNameEmptyError"],
    ["authentication failed, invalid user ID or password", "AuthFailedError"],
    ["revision of auth store is old", "AuthRevisionOldError"],
    ["given member URLs are invalid", "InvalidMemberUrlsError"],
    ["invalid auth management", "InvalidAuthManagementError"],
    ["wrong downgrade target version format", "WrongDowngradeVersionFormatError"],
    ["invalid downgrade target version", "InvalidDowngradeTargetVersionError"],
  ],
  OutOfRange: [
    ["mvcc: required revision has been compacted", "CompactedError"],
    ["mvcc: required revision is a future revision", "FutureRevisionError"],
    ["too large lease TTL", "LeaseTtlTooLargeError"],
  ],
  ResourceExhausted: [
    ["mvcc: database space exceeded", "NoSpaceError"],
    ["too many requests", "TooManyRequestsError"],
  ],
  NotFound: [
    ["requested lease not found", "LeaseNotFoundError"],
    ["member not found", "MemberNotFoundError"],
  ],
  FailedPrecondition: [
    ["lease already exists", "LeaseExistsError"],
    ["member ID already exist", "MemberExistsError"],
    ["Peer URLs already exists", "PeerUrlExistsError"],
    ["re-configuration failed due to not enough started members", "NotEnoughStartedMembersError"],
    ["user name already exists", "UserExistsError"],
    ["user name not found", "UserNotFoundError"],
    ["role name already exists", "RoleExistsError"],
    ["role name not found", "RoleNotFoundError"],
    ["role is not granted to the user", "RoleNotGrantedError"],
    ["permission is not granted to the role", "PermissionNotGrantedError"],
    ["authentication is not enabled", "AuthNotEnabledError"],
    ["root user does not exist", "RootUserNotExistError"],
    ["root user does not have root role", "RootRoleNotExistError"],
    ["not leader", "NotLeaderError"],
    ["not capable", "NotCapableError"],
    ["rpc not supported for learner", "LearnerNotSupportedError"],
    ["bad leader transferee", "BadLeaderTransfereeError"],
    ["can only promote a learner member", "MemberNotLearnerError"],
    ["can only promote a learner member which is in sync with leader", "LearnerNotReadyError"],
    ["too many learner members in cluster", "TooManyLearnersError"],
    ["cluster has a downgrade job in progress", "DowngradeInProgressError"],
    ["no inflight downgrade job", "NoInflightDowngradeError"],
  ],
  PermissionDenied: [["permission denied", "PermissionDeniedError"]],
  Unauthenticated: [["invalid auth token", "InvalidAuthTokenError"]],
  Unavailable: [
    ["no leader", "NoLeaderError"],
    ["leader changed", "LeaderChangedError"],
    ["server stopped", "ServerStoppedError"],
    ["unhealthy cluster", "UnhealthyClusterError"],
    ["request timed out", "ServerTimeoutError"],
    ["request timed out, possibly due to previous leader failure", "ServerTimeoutError"],
    ["request timed out, possibly due to connection lost", "ServerTimeoutError"],
    ["cluster version not found during downgrade", "ClusterVersionUnavailableError"],
  ],
  DataLoss: [["corrupt cluster", "CorruptError"]],
};

// etcd 3.4/3.5 also send these two under Unavailable; that mapping is checked where it is made (the admin layer).
const ALSO_UNDER_UNAVAILABLE = new Set(["not capable", "rpc not supported for learner"]);
// Sent only since etcd 3.6 (older servers accept any sort value): absent from the 3.4 and 3.5 binaries.
const SINCE_3_6 = new Set(["invalid sort option"]);
// Downgrades arrived in etcd 3.5: absent from the 3.4 binary.
const SINCE_3_5 = new Set([
  "wrong downgrade target version format",
  "invalid downgrade target version",
  "cluster has a downgrade job in progress",
  "no inflight downgrade job",
  "cluster version not found during downgrade",
]);
// The v3lock/v3election services and the auth store relay errors with code Unknown, as the whole message.
const RELAYED: Array<[string, string]> = [
  ["etcdserver: requested lease not found", "LeaseNotFoundError"],
  ["election: not leader", "ElectionNotLeaderError"],
  ["election: no leader", "ElectionNoLeaderError"],
  ["auth: authentication failed, password was given for no password user", "AuthFailedError"],
  // raft's own error, passed through by etcd's gRPC layer.
  ["raft proposal dropped", "ProposalDroppedError"],
  // The KV's "may still apply" answers, relayed by v3lock and v3election (seen from Lock under leader faults).
  ["etcdserver: request timed out", "ServerTimeoutError"],
  ["etcdserver: request timed out, possibly due to previous leader failure", "ServerTimeoutError"],
  ["etcdserver: request timed out, possibly due to connection lost", "ServerTimeoutError"],
  ["etcdserver: leader changed", "LeaderChangedError"],
  ["etcdserver: server stopped", "ServerStoppedError"],
];
const RELAYED_TEXTS = new Set(RELAYED.map(([m]) => m.replace(/^etcdserver: /, "")));

const CASES = Object.entries(ETCD).flatMap(([code, list]) => list!.map(([text, cls]) => ({ code: Code[code as keyof typeof Code], text, cls })));
const ALL_CODES = Object.values(Code).filter((c): c is Code => typeof c === "number" && Number(c) !== 0);
const classes = errors as unknown as Record<string, (new (...a: never[]) => EtcdError) | undefined>;

test("every etcd error maps to its class under its code, keeping code, message and endpoint", () => {
  for (const { code, text, cls } of CASES) {
    const expected = classes[cls];
    assert.ok(expected, `${cls} is exported`);
    const message = `etcdserver: ${text}`;
    const e = toEtcdError(new ConnectError(message, code), "127.0.0.1:2379");
    assert.ok(e instanceof expected, `${Code[code]} "${text}" -> ${e.name}, want ${cls}`);
    assert.equal(e.name, cls);
    assert.equal(e.code, code);
    assert.equal(e.rawMessage, message);
    assert.equal(e.endpoint, "127.0.0.1:2379");
  }
});

test("the same text under any other code is not that error (a code mistaken in the table shows here)", () => {
  for (const { code, text, cls } of CASES) {
    for (const other of ALL_CODES) {
      if (other === code || (other === Code.Unavailable && ALSO_UNDER_UNAVAILABLE.has(text)) || (other === Code.Unknown && RELAYED_TEXTS.has(text))) continue;
      const e = toEtcdError(new ConnectError(`etcdserver: ${text}`, other));
      assert.notEqual(e.name, cls, `${Code[other]} "${text}" must not be ${cls}`);
      assert.equal(e.code, other);
    }
  }
});

test("errors relayed with code Unknown map by their whole message", () => {
  for (const [message, cls] of RELAYED) {
    const e = toEtcdError(new ConnectError(message, Code.Unknown));
    assert.equal(e.name, cls, message);
    assert.equal(e.code, Code.Unknown);
  }
});

test("every text is one the etcd server under test actually sends", () => {
  const binary = readFileSync(etcdBinary()).toString("latin1");
  const is34 = etcdVersion().startsWith("3.4.");
  const missing = CASES.filter((c) => !SINCE_3_6.has(c.text) && !(is34 && SINCE_3_5.has(c.text)))
    .map((c) => `etcdserver: ${c.text}`)
    .filter((m) => !binary.includes(m));
  assert.deepEqual(missing, [], `texts absent from ${etcdBinary()}`);
});

test("every server error class is produced by some etcd answer", () => {
  const produced = new Set([...CASES.map((c) => c.cls), ...RELAYED.map(([, cls]) => cls)]);
  const serverClasses = Object.entries(classes)
    .filter(([, v]) => typeof v === "function" && v.prototype instanceof ServerError)
    .map(([k]) => k);
  assert.ok(serverClasses.length >= 40, `${serverClasses.length} server error classes`);
  assert.deepEqual(serverClasses.filter((k) => !produced.has(k)), []);
});

test("grpc's own size limit: the server's refusal is RequestTooLargeError, our receive limit ResponseTooLargeError", () => {
  const theirs = toEtcdError(new ConnectError("grpc: received message larger than max (2097174 vs. 1572864)", Code.ResourceExhausted));
  assert.ok(theirs instanceof RequestTooLargeError, theirs.name);
  const ours = toEtcdError(new ConnectError("received message larger than max (3000 vs. 100 bytes)", Code.ResourceExhausted));
  assert.ok(ours instanceof ResponseTooLargeError, ours.name);
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

test("client-side errors say what happened, with numbers, and name each endpoint once", () => {
  const big = new RequestTooLargeError(2_000_000, 1_572_864);
  assert.match(big.message, /2000000 bytes exceeds the limit of 1572864 bytes/);
  assert.equal(big.size, 2_000_000);
  const ops = new TooManyOpsError(200, 128);
  assert.match(ops.message, /200 operations, more than the limit of 128/);
  const dial = new EndpointUnavailableError("127.0.0.1:2379", "dial-timeout", undefined, 500);
  assert.match(dial.message, /^\[unavailable\] 127\.0\.0\.1:2379: no HTTP\/2 handshake within the dial timeout \(500 ms\)$/);
  assert.equal(dial.reason, "dial-timeout");
  const refused = new EndpointUnavailableError("127.0.0.1:1", "refused", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED", syscall: "connect" }));
  // The same endpoint twice keeps its latest failure only, in the order they last failed; no address is repeated.
  const none = new NoEndpointAvailableError([new EndpointUnavailableError("127.0.0.1:1", "dial-timeout"), dial, refused]);
  assert.equal(none.rawMessage, "no endpoint available: 127.0.0.1:2379: no HTTP/2 handshake within the dial timeout (500 ms); 127.0.0.1:1: connection refused: ECONNREFUSED");
  assert.deepEqual(none.errors, [dial, refused]);
  const unknown = new OutcomeUnknownError("etcdserverpb.KV/Put", dial);
  assert.match(unknown.message, /outcome of etcdserverpb\.KV\/Put is unknown/);
  assert.equal(unknown.endpoint, "127.0.0.1:2379");
  assert.equal(unknown.cause, dial);
  const deadline = new DeadlineExceededError(1500, [dial], "127.0.0.1:2380");
  assert.equal(deadline.code, Code.DeadlineExceeded);
  assert.match(deadline.message, /deadline of 1500 ms exceeded \(last endpoint 127\.0\.0\.1:2380\); earlier attempts: 127\.0\.0\.1:2379: no HTTP/);
  assert.equal(new InvalidOptionError("x").code, Code.InvalidArgument);
});

test("our own errors pass through unchanged, gaining the endpoint when missing; other failures are wrapped", () => {
  const key = new InvalidKeyError("key is empty");
  assert.equal(toEtcdError(key, "127.0.0.1:1"), key);
  assert.equal(key.endpoint, "127.0.0.1:1");
  const other = toEtcdError(new TypeError("boom"));
  assert.ok(other instanceof EtcdError);
  assert.equal(other.code, Code.Unknown);
  assert.ok(other.cause instanceof TypeError);
  assert.ok(toEtcdError(new DOMException("stop", "AbortError")) instanceof AbortedError);
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
