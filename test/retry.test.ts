// The retry policy is pure logic: what may be sent again, and which failures
// leave a write's outcome unknown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { KV, Lease, Maintenance } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { EndpointUnavailableError, InvalidAuthTokenError, OutcomeUnknownError, ProposalDroppedError, toEtcdError } from "../src/errors.js";
import { isConnectionLost, isUnsent, markConnectionLost, markUnsent } from "../src/transport/failure.js";
import { classifyFailure, isDefinitiveFailure, isRepeatable, mayHaveBeenApplied } from "../src/cluster/retry.js";

const server = (code: Code, msg: string) => new ConnectError(`etcdserver: ${msg}`, code);

test("reads are repeatable; writes are not (lease grant and revoke included); Alarm only when it lists", () => {
  assert.equal(isRepeatable(KV.method.range, {}), true);
  assert.equal(isRepeatable(Lease.method.leaseTimeToLive, {}), true);
  // Grant and revoke are retried by the lease layer, which knows when a retry is safe.
  assert.equal(isRepeatable(Lease.method.leaseGrant, {}), false);
  assert.equal(isRepeatable(Lease.method.leaseRevoke, {}), false);
  assert.equal(isRepeatable(KV.method.put, {}), false);
  assert.equal(isRepeatable(KV.method.txn, {}), false);
  assert.equal(isRepeatable(KV.method.compact, {}), false);
  assert.equal(isRepeatable(Maintenance.method.alarm, { action: 0 }), true);
  assert.equal(isRepeatable(Maintenance.method.alarm, { action: 2 }), false);
});

test("failures are classified by cause: unsent, lost, or a server answer", () => {
  assert.deepEqual(classifyFailure(markUnsent(new ConnectError("refused", Code.Unavailable))), {
    endpointFailed: true,
    safeToResend: true,
    retryableIfRepeatable: true,
  });
  assert.deepEqual(classifyFailure(markConnectionLost(new ConnectError("reset", Code.Unavailable))), {
    endpointFailed: true,
    safeToResend: false,
    retryableIfRepeatable: true,
  });
  const noLeader = classifyFailure(server(Code.Unavailable, "no leader"));
  assert.equal(noLeader.endpointFailed, true);
  assert.equal(noLeader.safeToResend, false);
  assert.equal(classifyFailure(server(Code.InvalidArgument, "key is not provided")).retryableIfRepeatable, false);
});

test("a write that timed out, lost its leader or met a stopping member may have been applied", () => {
  for (const msg of ["request timed out", "request timed out, possibly due to previous leader failure", "leader changed", "server stopped"]) {
    assert.equal(mayHaveBeenApplied(toEtcdError(server(Code.Unavailable, msg))), true, msg);
    // The same answers relayed by v3lock/v3election (code Unknown): a Lock may still take the lock.
    assert.equal(mayHaveBeenApplied(toEtcdError(server(Code.Unknown, msg))), true, `relayed ${msg}`);
  }
  for (const msg of ["no leader", "unhealthy cluster"]) {
    assert.equal(mayHaveBeenApplied(toEtcdError(server(Code.Unavailable, msg))), false, msg);
  }
  assert.equal(mayHaveBeenApplied(toEtcdError(server(Code.InvalidArgument, "duplicate key given in txn request"))), false);
});

test("a learner's or an incapable member's refusal moves on, and even a write may be resent: nothing was proposed", () => {
  for (const code of [Code.Unavailable, Code.FailedPrecondition]) {
    for (const msg of ["rpc not supported for learner", "not capable"]) {
      assert.deepEqual(classifyFailure(server(code, msg)), { endpointFailed: true, safeToResend: true, retryableIfRepeatable: true }, `${code} ${msg}`);
    }
  }
  // Only the exact refusal: a message that merely mentions it is not.
  assert.equal(classifyFailure(new ConnectError("proxy: rpc not supported for learner?", Code.Unavailable)).safeToResend, false);
});

test("a proposal raft dropped was never logged: even a write may be resent, and the member is not marked failed", () => {
  const dropped = new ConnectError("raft proposal dropped", Code.Unknown);
  assert.ok(toEtcdError(dropped) instanceof ProposalDroppedError);
  const want = { endpointFailed: false, safeToResend: true, retryableIfRepeatable: true };
  assert.deepEqual(classifyFailure(dropped), want);
  assert.deepEqual(classifyFailure(toEtcdError(dropped)), want, "the mapped error classifies the same");
  // Only that text under Unknown: other unknown failures, or the text under another code, prove nothing.
  assert.equal(classifyFailure(new ConnectError("raft proposal dropped?", Code.Unknown)).safeToResend, false);
  assert.equal(classifyFailure(new ConnectError("raft proposal dropped", Code.Internal)).safeToResend, false);
  assert.equal(classifyFailure(new ConnectError("something else", Code.Unknown)).safeToResend, false);
});

test("mapping an error to its class keeps the marks of where the call broke", () => {
  // A server answer carried over a connection that then broke: the mark sits on the ConnectError, which has its own cause.
  const lost = markConnectionLost(new ConnectError("etcdserver: request timed out", Code.Unavailable, undefined, undefined, new Error("socket")));
  const mapped = toEtcdError(lost, "127.0.0.1:1");
  assert.notEqual(mapped, lost);
  assert.ok(isConnectionLost(mapped), "the connection-lost mark survives the mapping");
  const unsent = markUnsent(new ConnectError("etcdserver: invalid auth token", Code.Unauthenticated, undefined, undefined, new Error("x")));
  const mappedUnsent = toEtcdError(unsent);
  assert.ok(mappedUnsent instanceof InvalidAuthTokenError);
  assert.ok(isUnsent(mappedUnsent), "the unsent mark survives the mapping");
  assert.deepEqual(classifyFailure(mappedUnsent), classifyFailure(unsent));
});

test("definitive endpoint failures: refused, unknown name, TLS, protocol; not timeouts or lost connections", () => {
  for (const r of ["refused", "name-not-found", "tls", "protocol"] as const) assert.equal(isDefinitiveFailure(new EndpointUnavailableError("h:1", r)), true, r);
  for (const r of ["dial-timeout", "connect-timeout", "dns-timeout", "connection-lost", "ping-timeout", "goaway", "other"] as const) {
    assert.equal(isDefinitiveFailure(new EndpointUnavailableError("h:1", r)), false, r);
  }
  assert.equal(isDefinitiveFailure(new OutcomeUnknownError("x", new EndpointUnavailableError("h:1", "refused"))), false);
});
