// Namespace key translation is pure logic: property tests (fast-check) that
// prefixing then stripping is the identity and that a translated range holds
// exactly the prefixed keys of the user's range, plus the request and
// response translations on protocol messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { create, toBinary } from "@bufbuild/protobuf";
import { KeyValueSchema } from "../gen/etcd/api/mvccpb/kv_pb.js";
import {
  DeleteRangeResponseSchema,
  PutResponseSchema,
  RangeResponseSchema,
  ResponseOpSchema,
  TxnResponseSchema,
  TxnRequestSchema,
} from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { KeyPrefix } from "../src/namespace/key-prefix.js";
import { Compare, Op, prefixEnd } from "../src/index.js";

const b = (...x: number[]) => new Uint8Array(x);
const u = (s: string) => new Uint8Array(Buffer.from(s));
const plain = (x: Uint8Array) => new Uint8Array(x);

/** Bytewise comparison, as etcd orders keys. */
function cmp(a: Uint8Array, c: Uint8Array): number {
  const n = Math.min(a.length, c.length);
  for (let i = 0; i < n; i++) if (a[i] !== c[i]) return a[i]! - c[i]!;
  return a.length - c.length;
}
const isNul = (e: Uint8Array) => e.length === 1 && e[0] === 0;
/** Whether `x` is in etcd's range `[key, end)`: empty end = the key alone, "\0" = no upper bound. */
function inRange(x: Uint8Array, key: Uint8Array, end: Uint8Array): boolean {
  if (end.length === 0) return cmp(x, key) === 0;
  return cmp(x, key) >= 0 && (isNul(end) || cmp(x, end) < 0);
}
const startsWith = (x: Uint8Array, p: Uint8Array) => x.length >= p.length && p.every((v, i) => x[i] === v);

// Bytes drawn from a small alphabet with the edge values, so prefixes ending in 0xff and zero bytes are common.
const byte = fc.constantFrom(0x00, 0x01, 0x2f, 0x61, 0x62, 0xfe, 0xff);
const bytes = (maxLength: number) => fc.array(byte, { maxLength }).map((a) => new Uint8Array(a));
const end = fc.oneof(fc.constant(b()), fc.constant(b(0)), bytes(4));

test("property: strip(key(k)) is k, for any prefix and key", () => {
  fc.assert(
    fc.property(bytes(5), bytes(6), (prefix, k) => {
      const p = new KeyPrefix(prefix);
      assert.deepEqual(plain(p.strip(p.key(k))), k);
      assert.ok(startsWith(p.key(k), prefix));
    }),
    { numRuns: 2000 },
  );
});

test("property: a translated range holds exactly the prefixed keys of the user's range", () => {
  fc.assert(
    fc.property(bytes(4), bytes(4), end, bytes(5), fc.boolean(), (prefix, key, rangeEnd, tail, underPrefix) => {
      const p = new KeyPrefix(prefix);
      const r = p.range(key, rangeEnd);
      // A server key: often one under the prefix (the interesting case), sometimes any key.
      const x = underPrefix ? p.key(tail) : tail;
      const inServer = inRange(x, r.key, r.rangeEnd);
      const inUser = startsWith(x, prefix) && inRange(p.strip(x), key, rangeEnd);
      assert.equal(inServer, inUser, `x=${Buffer.from(x).toString("hex")} range=[${Buffer.from(r.key).toString("hex")}, ${Buffer.from(r.rangeEnd).toString("hex")})`);
    }),
    { numRuns: 5000 },
  );
});

test("property: translated ranges stay within the prefix", () => {
  fc.assert(
    fc.property(bytes(4), bytes(4), end, (prefix, key, rangeEnd) => {
      const p = new KeyPrefix(prefix);
      const r = p.range(key, rangeEnd);
      assert.ok(startsWith(r.key, prefix));
      if (r.rangeEnd.length === 0) return;
      const top = prefixEnd(prefix);
      // Past the end of the keyspace only when the prefix itself reaches it (all 0xff, or empty).
      if (isNul(r.rangeEnd)) assert.ok(isNul(top));
      else if (!isNul(top)) assert.ok(cmp(r.rangeEnd, top) <= 0);
    }),
    { numRuns: 3000 },
  );
});

test("'all keys' and fromKey end at the end of the namespace; single keys stay single", () => {
  const p = new KeyPrefix(u("app/"));
  assert.deepEqual(p.range(b(0), b(0)), { key: u("app/\0"), rangeEnd: u("app0") });
  assert.deepEqual(p.range(u("k"), b(0)), { key: u("app/k"), rangeEnd: u("app0") });
  assert.deepEqual(plain(p.range(u("k"), b()).rangeEnd), b());
  assert.deepEqual(p.range(u("a"), u("c")), { key: u("app/a"), rangeEnd: u("app/c") });
  // A prefix ending in 0xff: its end drops the 0xff (no key outside the prefix gets in).
  const q = new KeyPrefix(b(0x61, 0xff));
  assert.deepEqual(plain(q.range(b(0), b(0)).rangeEnd), b(0x62));
  // The empty prefix translates nothing.
  const none = new KeyPrefix(b());
  assert.deepEqual(plain(none.range(b(0), b(0)).rangeEnd), b(0));
});

test("nested prefixes concatenate", () => {
  const p = new KeyPrefix(u("a/")).child(u("b/"));
  assert.deepEqual(plain(p.prefix), u("a/b/"));
  assert.deepEqual(plain(p.key(u("k"))), u("a/b/k"));
  assert.deepEqual(plain(p.end), u("a/b0"));
});

test("strip leaves keys outside the prefix alone", () => {
  const p = new KeyPrefix(u("app/"));
  assert.deepEqual(plain(p.strip(u("other/k"))), u("other/k"));
  assert.deepEqual(plain(p.strip(u("ap"))), u("ap"));
});

test("transaction requests: compares and ops translated at every level, the original untouched", () => {
  const p = new KeyPrefix(u("ns/"));
  const inner = Op.txn([Compare.value("c", "=", "1").withPrefix()], [Op.delete("d", { fromKey: true })], [Op.get("", { prefix: true })]);
  const op = Op.txn([Compare.version("a", ">", 0), Compare.modRevision("r", "<", 5).withRange("s")], [Op.put("b", "v"), inner], [Op.get("e")]);
  const before = toBinary(TxnRequestSchema, op.request);
  const t = p.op(op);
  assert.equal(t.kind, "txn");
  if (t.kind !== "txn") return;
  const r = t.request;
  assert.deepEqual(plain(r.compare[0]!.key), u("ns/a"));
  assert.deepEqual(plain(r.compare[0]!.rangeEnd), b());
  assert.deepEqual([plain(r.compare[1]!.key), plain(r.compare[1]!.rangeEnd)], [u("ns/r"), u("ns/s")]);
  const put = r.success[0]!.request;
  assert.equal(put.case, "requestPut");
  assert.deepEqual(plain(put.value!.key as Uint8Array), u("ns/b"));
  const nested = r.success[1]!.request;
  assert.equal(nested.case, "requestTxn");
  if (nested.case !== "requestTxn") return;
  assert.deepEqual([plain(nested.value.compare[0]!.key), plain(nested.value.compare[0]!.rangeEnd)], [u("ns/c"), u("ns/d")]);
  const del = nested.value.success[0]!.request;
  if (del.case !== "requestDeleteRange") return assert.fail("delete expected");
  assert.deepEqual([plain(del.value.key), plain(del.value.rangeEnd)], [u("ns/d"), u("ns0")]);
  const all = nested.value.failure[0]!.request;
  if (all.case !== "requestRange") return assert.fail("range expected");
  assert.deepEqual([plain(all.value.key), plain(all.value.rangeEnd)], [u("ns/\0"), u("ns0")]);
  const get = r.failure[0]!.request;
  if (get.case !== "requestRange") return assert.fail("range expected");
  assert.deepEqual(plain(get.value.key), u("ns/e"));
  // An op may be reused elsewhere (or in the root keyspace): translation copies.
  assert.deepEqual(toBinary(TxnRequestSchema, op.request), before);
});

test("responses: keys stripped in kvs, prevKv, prevKvs and nested transaction results", () => {
  const p = new KeyPrefix(u("ns/"));
  const kv = (k: string) => create(KeyValueSchema, { key: u(k), value: u("v") });
  const range = create(RangeResponseSchema, { kvs: [kv("ns/a"), kv("ns/b")] });
  const put = create(PutResponseSchema, { prevKv: kv("ns/c") });
  const del = create(DeleteRangeResponseSchema, { prevKvs: [kv("ns/d")] });
  const nested = create(TxnResponseSchema, { responses: [create(ResponseOpSchema, { response: { case: "responseRange", value: create(RangeResponseSchema, { kvs: [kv("ns/e")] }) } })] });
  const txn = create(TxnResponseSchema, {
    responses: [
      create(ResponseOpSchema, { response: { case: "responseRange", value: range } }),
      create(ResponseOpSchema, { response: { case: "responsePut", value: put } }),
      create(ResponseOpSchema, { response: { case: "responseDeleteRange", value: del } }),
      create(ResponseOpSchema, { response: { case: "responseTxn", value: nested } }),
    ],
  });
  p.txnResponse(txn);
  const text = (x: Uint8Array) => Buffer.from(x).toString();
  assert.deepEqual(range.kvs.map((k) => text(k.key)), ["a", "b"]);
  assert.equal(text(put.prevKv!.key), "c");
  assert.equal(text(del.prevKvs[0]!.key), "d");
  assert.equal(text(nested.responses[0]!.response.value!.$typeName === "etcdserverpb.RangeResponse" ? (nested.responses[0]!.response.value as typeof range).kvs[0]!.key : b()), "e");
});
