// A write is never silently sent twice, on either transport: a member that
// reads a write and then resets the stream, or lets the call's deadline pass,
// leaves its outcome unknown (OutcomeUnknownError), and the write is not sent
// to the next member. A stream the server refused (REFUSED_STREAM) provably
// did no work and is sent elsewhere. Checked with two fake members.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { DescMethodUnary } from "@bufbuild/protobuf";
import { Auth, Cluster, KV, Lease, Maintenance } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { DeadlineExceededError, Etcd, OutcomeUnknownError } from "../src/index.js";
import { startFakeServer, type FakeCall, type FakeServer } from "./fake-server.js";

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

// Every kind of write the API has, with a representative request: key-value, lease, member and auth writes.
const WRITES: Array<[DescMethodUnary, (etcd: Etcd) => Promise<unknown>]> = [
  [KV.method.put, (e) => e.raw.kv.put({ key: bytes("k"), value: bytes("v") })],
  [KV.method.deleteRange, (e) => e.raw.kv.deleteRange({ key: bytes("k") })],
  [KV.method.txn, (e) => e.raw.kv.txn({ success: [{ request: { case: "requestPut", value: { key: bytes("k"), value: bytes("v") } } }] })],
  [KV.method.compact, (e) => e.raw.kv.compact({ revision: 5n })],
  [Lease.method.leaseGrant, (e) => e.raw.lease.leaseGrant({ TTL: 10n })],
  [Lease.method.leaseRevoke, (e) => e.raw.lease.leaseRevoke({ ID: 7n })],
  [Cluster.method.memberAdd, (e) => e.raw.cluster.memberAdd({ peerURLs: ["http://127.0.0.1:1"] })],
  [Auth.method.userAdd, (e) => e.raw.auth.userAdd({ name: "u", password: "p" })],
  [Maintenance.method.defragment, (e) => e.raw.maintenance.defragment({})],
];

function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

const path = (m: DescMethodUnary) => `/${m.parent.typeName}/${m.name}`;
const outputs = new Map(WRITES.map(([m]) => [path(m), m.output]));
outputs.set(path(KV.method.range), KV.method.range.output);

/** A member that answers every call correctly. */
function answer(c: FakeCall): void {
  const out = outputs.get(c.path);
  if (out === undefined) c.fail(12, "unimplemented");
  else c.reply(out, {});
}

/** Two fake members: the first misbehaves as `first` says, the second answers. */
async function pair(first: (c: FakeCall) => void | Promise<void>): Promise<[FakeServer, FakeServer]> {
  const a = await startFakeServer({ onCall: first });
  const b = await startFakeServer({ onCall: answer });
  servers.push(a, b);
  return [a, b];
}

for (const transport of ["http2", "connect-node"] as const) {
  describe(`write safety, ${transport} transport`, () => {
    test("a write the member read and then reset is reported unknown and never sent again, for every write RPC", async () => {
      const [a, b] = await pair(async (c) => {
        await c.received(1);
        c.reset(http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
      for (const [method, call] of WRITES) {
        // A fresh client each time: a failed member loses the pin, and each write must meet the faulty one first.
        const etcd = new Etcd({ endpoints: [a.endpoint, b.endpoint], transport, requestTimeoutMs: 5000 });
        try {
          const outcome = await call(etcd).then(
            () => "success",
            (e: unknown) => e,
          );
          assert.ok(outcome instanceof OutcomeUnknownError, `${method.name}: ${String(outcome)}`);
          assert.equal(a.callsTo(path(method)).length, 1, `${method.name} reached the first member once`);
          assert.equal(b.callsTo(path(method)).length, 0, `${method.name} was sent again to the second member`);
        } finally {
          await etcd.close();
        }
      }
    });

    test("a write whose deadline passes after it was sent is unknown, with the deadline as its cause; a read gets the deadline", async () => {
      // The first member reads every call and never answers.
      const [a, b] = await pair(() => undefined);
      const etcd = new Etcd({ endpoints: [a.endpoint, b.endpoint], transport });
      try {
        const write = await etcd.put("k", "v", { timeoutMs: 400 }).then(
          () => "success",
          (e: unknown) => e,
        );
        assert.ok(write instanceof OutcomeUnknownError, String(write));
        assert.ok(write.cause instanceof DeadlineExceededError, `cause: ${String(write.cause)}`);
        assert.equal(b.callsTo(path(KV.method.put)).length, 0);
        await assert.rejects(etcd.get("k", { timeoutMs: 400 }), DeadlineExceededError);
      } finally {
        await etcd.close();
      }
    });

    test("a write the member refused (REFUSED_STREAM: no work done) goes to the next member and succeeds", async () => {
      const [a, b] = await pair(async (c) => {
        await c.received(1);
        c.reset(http2.constants.NGHTTP2_REFUSED_STREAM);
      });
      const etcd = new Etcd({ endpoints: [a.endpoint, b.endpoint], transport, requestTimeoutMs: 5000 });
      try {
        await etcd.put("k", "v");
        assert.equal(a.callsTo(path(KV.method.put)).length, 1);
        assert.equal(b.callsTo(path(KV.method.put)).length, 1);
      } finally {
        await etcd.close();
      }
    });
  });
}
