// The hand-written RangeResponse decoder must produce exactly what protobuf-es
// produces, and step aside (undefined) for anything it does not handle.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RangeResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { decodeRangeResponse } from "../src/kv/range-decoder.js";

const enc = new TextEncoder();

/** Deterministic pseudo-random numbers, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

const INT64_EDGES = [0n, 1n, 127n, 128n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -1n, -(2n ** 63n), -(2n ** 32n)];
const UINT64_EDGES = [0n, 1n, 2n ** 32n, 2n ** 53n + 3n, 2n ** 63n, 2n ** 64n - 1n];

function plain(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (_, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v)));
}

test("matches protobuf-es on random responses, including 64-bit edge values", () => {
  const r = rng(42);
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  for (let round = 0; round < 200; round++) {
    const n = Math.floor(r() * 20);
    const msg = create(RangeResponseSchema, {
      ...(r() < 0.9
        ? { header: { clusterId: pick(UINT64_EDGES), memberId: pick(UINT64_EDGES), revision: pick(INT64_EDGES), raftTerm: pick(UINT64_EDGES) } }
        : {}),
      kvs: Array.from({ length: n }, (_, i) => ({
        key: enc.encode(`k${round}/${i}`),
        value: r() < 0.2 ? new Uint8Array(0) : enc.encode("v".repeat(Math.floor(r() * 300))),
        createRevision: pick(INT64_EDGES),
        modRevision: pick(INT64_EDGES),
        version: pick(INT64_EDGES),
        lease: pick(INT64_EDGES),
      })),
      more: r() < 0.5,
      count: pick(INT64_EDGES),
    });
    const bytes = toBinary(RangeResponseSchema, msg);
    const fast = decodeRangeResponse(bytes);
    assert.ok(fast !== undefined, `round ${round} took the slow path`);
    assert.deepEqual(plain(fast), plain(fromBinary(RangeResponseSchema, bytes)), `round ${round}`);
  }
});

test("an empty response decodes to the empty message", () => {
  assert.deepEqual(plain(decodeRangeResponse(new Uint8Array(0))), plain(create(RangeResponseSchema)));
});

test("unknown fields and malformed input fall back to protobuf-es", () => {
  const base = toBinary(RangeResponseSchema, create(RangeResponseSchema, { kvs: [{ key: enc.encode("a") }] }));
  // Field 9, varint: unknown to this decoder; protobuf-es keeps it as an unknown field.
  assert.equal(decodeRangeResponse(new Uint8Array([...base, 9 << 3, 1])), undefined);
  // A KeyValue whose length runs past the end.
  assert.equal(decodeRangeResponse(new Uint8Array([18, 50, 10, 1, 97])), undefined);
  // A truncated varint.
  assert.equal(decodeRangeResponse(new Uint8Array([32, 0xff])), undefined);
});
