// The hand-written keep-alive codec against protobuf-es, on arbitrary input.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { LeaseKeepAliveRequestSchema, LeaseKeepAliveResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { encodeFrame } from "../src/transport/grpc-frame.js";
import { decodeKeepAliveFast, decodeKeepAliveResponse, encodeKeepAliveFrame } from "../src/lease/keep-alive-codec.js";

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
      assert.equal(fast.id, ref.ID);
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
        assert.equal(fast.id, ref.ID);
        assert.equal(fast.ttl, Number(ref.TTL));
      }
      // The full decoder falls back to protobuf-es: same answer or the same refusal.
      if (ref === undefined) assert.throws(() => decodeKeepAliveResponse(bytes));
      else assert.deepEqual(decodeKeepAliveResponse(bytes), { id: ref.ID, ttl: Number(ref.TTL) });
    }),
    { numRuns: 5000 },
  );
});
