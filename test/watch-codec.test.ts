// The hand-written Watch codecs must produce exactly what protobuf-es
// produces, and step aside (undefined) for anything they do not handle.
// Property tests with fast-check: random messages, and random bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { WatchRequestSchema, WatchResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { decodeWatchResponse, encodeWatchRequest } from "../src/watch/watch-codec.js";

type WatchRequestInit = MessageInitShape<typeof WatchRequestSchema>;

/** Comparable form: bigints and byte arrays as strings and plain arrays. */
function plain(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (_, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v)));
}

const int64 = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.constantFrom(0n, 1n, 127n, 128n, 2n ** 31n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, -1n, -(2n ** 63n)),
  fc.bigInt({ min: 0n, max: 1000n }),
);
const uint64 = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, 2n ** 63n, 2n ** 64n - 1n));
const bytes = fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ minLength: 120, maxLength: 400 }));
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });

const createRequest = fc.record(
  {
    key: bytes,
    rangeEnd: bytes,
    startRevision: int64,
    progressNotify: fc.boolean(),
    filters: fc.array(fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 0x7fffffff })), { maxLength: 4 }),
    prevKv: fc.boolean(),
    watchId: int64,
    fragment: fc.boolean(),
  },
  { requiredKeys: [] },
);

const watchRequest: fc.Arbitrary<WatchRequestInit> = fc.oneof(
  createRequest.map((value) => ({ requestUnion: { case: "createRequest" as const, value } })),
  opt(int64).map((watchId) => ({ requestUnion: { case: "cancelRequest" as const, value: watchId === undefined ? {} : { watchId } } })),
  fc.constant({ requestUnion: { case: "progressRequest" as const, value: {} } }),
);

test("WatchRequest: byte for byte what protobuf-es writes, for random requests", () => {
  fc.assert(
    fc.property(watchRequest, (init) => {
      const fast = encodeWatchRequest(init);
      assert.ok(fast !== undefined, "took the slow path");
      assert.deepEqual(Array.from(fast), Array.from(toBinary(WatchRequestSchema, create(WatchRequestSchema, init))));
    }),
    { numRuns: 2000 },
  );
});

test("WatchRequest: full messages from create() encode the same", () => {
  fc.assert(
    fc.property(watchRequest, (init) => {
      const msg = create(WatchRequestSchema, init);
      const fast = encodeWatchRequest(msg);
      assert.ok(fast !== undefined);
      assert.deepEqual(Array.from(fast), Array.from(toBinary(WatchRequestSchema, msg)));
    }),
    { numRuns: 500 },
  );
});

test("WatchRequest: anything unexpected steps aside", () => {
  const cases: unknown[] = [
    {},
    { requestUnion: { case: undefined } },
    { requestUnion: { case: "createRequest", value: { startRevision: 5 } } }, // a number, not a bigint
    { requestUnion: { case: "createRequest", value: { key: "a" } } },
    { requestUnion: { case: "createRequest", value: { filters: [-1] } } },
    { requestUnion: { case: "createRequest", value: { somethingNew: true } } },
    { requestUnion: { case: "cancelRequest", value: { watchId: "7" } } },
    { requestUnion: { case: "progressRequest", value: { x: 1 } } },
  ];
  for (const c of cases) assert.equal(encodeWatchRequest(c as WatchRequestInit), undefined, JSON.stringify(c));
});

const keyValue = fc.record(
  { key: bytes, createRevision: int64, modRevision: int64, version: int64, value: bytes, lease: int64 },
  { requiredKeys: [] },
);
const event = fc.record({ type: fc.constantFrom(0, 1), kv: opt(keyValue), prevKv: opt(keyValue) }, { requiredKeys: ["type"] });
const watchResponse = fc.record(
  {
    header: fc.record({ clusterId: uint64, memberId: uint64, revision: int64, raftTerm: uint64 }, { requiredKeys: [] }),
    watchId: int64,
    created: fc.boolean(),
    canceled: fc.boolean(),
    compactRevision: int64,
    cancelReason: fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.constant("rpc error: code = PermissionDenied desc = etcdserver: permission denied")),
    fragment: fc.boolean(),
    events: fc.array(event, { maxLength: 12 }),
  },
  { requiredKeys: [] },
);

test("WatchResponse: exactly what protobuf-es reads, for random responses", () => {
  fc.assert(
    fc.property(watchResponse, (init) => {
      const wire = toBinary(WatchResponseSchema, create(WatchResponseSchema, init));
      const fast = decodeWatchResponse(wire);
      assert.ok(fast !== undefined, "took the slow path");
      assert.deepEqual(plain(fast), plain(fromBinary(WatchResponseSchema, wire)));
    }),
    { numRuns: 1000 },
  );
});

test("WatchResponse: random bytes either decode as protobuf-es does or step aside", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (wire) => {
      const fast = decodeWatchResponse(wire);
      if (fast === undefined) return;
      // When the fast path accepts bytes, protobuf-es must accept them too and agree.
      assert.deepEqual(plain(fast), plain(fromBinary(WatchResponseSchema, wire)));
    }),
    { numRuns: 20000 },
  );
});

test("WatchResponse: unknown fields, unknown event types and truncation step aside", () => {
  const base = toBinary(WatchResponseSchema, create(WatchResponseSchema, { watchId: 3n, events: [{ type: 0, kv: { key: new Uint8Array([97]) } }] }));
  assert.ok(decodeWatchResponse(base) !== undefined);
  // Field 20, varint: unknown here; protobuf-es keeps it as an unknown field.
  assert.equal(decodeWatchResponse(new Uint8Array([...base, 20 << 3, 1])), undefined);
  // An event of type 2 (not PUT or DELETE).
  assert.equal(decodeWatchResponse(new Uint8Array([90, 2, 8, 2])), undefined);
  // An event whose length runs past the end.
  assert.equal(decodeWatchResponse(new Uint8Array([90, 9, 8, 1])), undefined);
  // A truncated varint.
  assert.equal(decodeWatchResponse(new Uint8Array([16, 0xff])), undefined);
  // A cancel reason that is not UTF-8: protobuf-es refuses it, so the fast path must not accept it.
  assert.equal(decodeWatchResponse(new Uint8Array([50, 1, 0x80])), undefined);
  // A byte order mark is dropped by both.
  const bom = new Uint8Array([50, 4, 0xef, 0xbb, 0xbf, 0x61]);
  assert.deepEqual(plain(decodeWatchResponse(bom)), plain(fromBinary(WatchResponseSchema, bom)));
});
