// The hand-written keep-alive codec against protobuf-es, on arbitrary input.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { LeaseKeepAliveRequestSchema, LeaseKeepAliveResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { encodeFrame } from "../src/transport/grpc-frame.js";
import { LeaseTable } from "../src/lease/lease-table.js";
import { decodeKeepAliveFast, decodeKeepAliveResponse, encodeKeepAliveFrame, leaseIdHalves, leaseIdOf } from "../src/lease/keep-alive-codec.js";

const int64 = fc.bigInt(-(1n << 63n), (1n << 63n) - 1n);
const uint64 = fc.bigInt(0n, (1n << 64n) - 1n);
// Values near the edges of each varint length matter most; mix them in.
const edgy = fc.oneof(int64, fc.constantFrom(0n, 1n, 127n, 128n, (1n << 53n) - 1n, 1n << 53n, (1n << 63n) - 1n, -1n, -(1n << 63n)));

test("a keep-alive request frame is byte for byte what protobuf-es and the gRPC framer make", () => {
  fc.assert(
    fc.property(edgy, (id) => {
      const ours = encodeKeepAliveFrame(id);
      const theirs = encodeFrame(toBinary(LeaseKeepAliveRequestSchema, create(LeaseKeepAliveRequestSchema, { ID: id })));
      // protobuf-es leaves out a zero ID (proto3 default); etcd reads both as 0.
      if (id === 0n) assert.deepEqual(fromBinary(LeaseKeepAliveRequestSchema, ours.subarray(5)).ID, 0n);
      else assert.deepEqual(Buffer.from(ours), Buffer.from(theirs));
    }),
    { numRuns: 2000 },
  );
});

test("a keep-alive response decodes as protobuf-es decodes it", () => {
  const header = fc.record({ clusterId: uint64, memberId: uint64, revision: int64, raftTerm: uint64 });
  fc.assert(
    fc.property(fc.option(header, { nil: undefined }), edgy, fc.oneof(fc.integer({ min: -1, max: 9_000_000_000 }).map(BigInt), int64), (h, id, ttl) => {
      const bytes = toBinary(LeaseKeepAliveResponseSchema, create(LeaseKeepAliveResponseSchema, { header: h, ID: id, TTL: ttl }));
      const ref = fromBinary(LeaseKeepAliveResponseSchema, bytes);
      const fast = decodeKeepAliveFast(bytes);
      assert.ok(fast !== undefined, "the fast path reads every well-formed response etcd sends");
      assert.equal(leaseIdOf(fast.idHi, fast.idLo), ref.ID);
      assert.equal(fast.ttl, Number(ref.TTL));
    }),
    { numRuns: 2000 },
  );
});

/** Bytes that look like a response: known and unknown fields, truncated and oversized varints, bad lengths. */
const messy = fc
  .array(
    fc.oneof(
      fc.tuple(fc.constantFrom(0x08, 0x10, 0x18, 0x20, 0x28, 0x0a, 0x12, 0x1a, 0x0d, 0x09, 0x0b, 0x0c, 0x80), fc.uint8Array({ maxLength: 12 })),
      fc.tuple(fc.constant(0x0a), fc.uint8Array({ maxLength: 30 }).map((inner) => Uint8Array.of(inner.length, ...inner))),
    ),
    { maxLength: 5 },
  )
  .map((fields) => Uint8Array.from(fields.flatMap(([tag, rest]) => [tag, ...rest])));

test("on anything else the decoder agrees with protobuf-es or refuses, never guesses", () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 40 }), messy), (bytes) => {
      let ref;
      try {
        ref = fromBinary(LeaseKeepAliveResponseSchema, bytes);
      } catch {
        ref = undefined;
      }
      const fast = decodeKeepAliveFast(bytes);
      if (fast !== undefined) {
        assert.ok(ref !== undefined, "fast path accepted bytes protobuf-es refuses");
        assert.equal(leaseIdOf(fast.idHi, fast.idLo), ref.ID);
        assert.equal(fast.ttl, Number(ref.TTL));
      }
      // The full decoder falls back to protobuf-es: same answer or the same refusal.
      if (ref === undefined) assert.throws(() => decodeKeepAliveResponse(bytes));
      else {
        const full = decodeKeepAliveResponse(bytes);
        assert.deepEqual({ id: leaseIdOf(full.idHi, full.idLo), ttl: full.ttl }, { id: ref.ID, ttl: Number(ref.TTL) });
      }
    }),
    { numRuns: 5000 },
  );
});

test("a lease ID splits into unsigned 32-bit halves and back", () => {
  fc.assert(
    fc.property(fc.oneof(edgy, int64), (id) => {
      const [hi, lo] = leaseIdHalves(id);
      assert.ok(Number.isInteger(hi) && hi >= 0 && hi < 2 ** 32 && Number.isInteger(lo) && lo >= 0 && lo < 2 ** 32);
      assert.equal(leaseIdOf(hi, lo), id);
    }),
    { numRuns: 2000 },
  );
});

interface Row {
  id: bigint;
  idHi: number;
  idLo: number;
  kept: boolean;
}
const row = (id: bigint): Row => {
  const [idHi, idLo] = leaseIdHalves(id);
  return { id, idHi, idLo, kept: false };
};

test("the lease table finds leases by their ID's halves, also when two IDs share the low bits", () => {
  const t = new LeaseTable<Row>();
  // Same low 32 bits, different high bits; one with the low word's top bit set (not a small integer as a uint32).
  const a = row(0x694d_0001_8000_0001n);
  const b = row(0x694d_0002_8000_0001n);
  const c = row(-5n);
  for (const r of [a, b, c]) assert.equal(t.add(r), r);
  assert.equal(t.add(row(a.id)), a, "an ID already kept stays with its entry");
  for (const r of [a, b, c]) assert.equal(t.find(r.idHi, r.idLo), r);
  assert.equal(t.find(a.idHi + 7, a.idLo), undefined);
  assert.equal(t.find(1, 2), undefined);
  assert.ok(t.delete(a));
  assert.ok(!t.delete(a), "deleted once");
  assert.equal(t.find(a.idHi, a.idLo), undefined);
  assert.equal(t.find(b.idHi, b.idLo), b, "the entry sharing the low bits is still found");
  assert.equal(t.get(b.id), b);
  assert.deepEqual(t.clear().map((r) => r.id).sort(), [b.id, c.id].sort());
  assert.equal(t.size, 0);
  assert.ok(!b.kept && !c.kept);
});
