// The retry policy is pure logic: what may be sent again, and which failures
// leave a write's outcome unknown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import { KV, Lease, Maintenance } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { toEtcdError } from "../src/errors.js";
import { markConnectionLost, markUnsent } from "../src/transport/failure.js";
import { classifyFailure, isRepeatable, mayHaveBeenApplied } from "../src/cluster/retry.js";

const server = (code: Code, msg: string) => new ConnectError(`etcdserver: ${msg}`, code);

test("reads and lease bookkeeping are repeatable; writes are not; Alarm only when it lists", () => {
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
  }
  for (const msg of ["no leader", "unhealthy cluster"]) {
    assert.equal(mayHaveBeenApplied(toEtcdError(server(Code.Unavailable, msg))), false, msg);
  }
  assert.equal(mayHaveBeenApplied(toEtcdError(server(Code.InvalidArgument, "duplicate key given in txn request"))), false);
});
