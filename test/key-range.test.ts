import { test } from "node:test";
import assert from "node:assert/strict";
import { prefixEnd, resolveRange } from "../src/kv/key-range.js";
import { InvalidKeyError, InvalidOptionError } from "../src/errors.js";

const b = (...x: number[]) => new Uint8Array(x);
/** resolveRange with its byte arrays as plain Uint8Arrays (strings become Buffers, a Uint8Array subclass). */
const range = (...args: Parameters<typeof resolveRange>) => {
  const r = resolveRange(...args);
  return { key: new Uint8Array(r.key), rangeEnd: new Uint8Array(r.rangeEnd) };
};

test("prefixEnd increments the last byte", () => {
  assert.deepEqual(prefixEnd(new TextEncoder().encode("abc")), new TextEncoder().encode("abd"));
  assert.deepEqual(prefixEnd(b(0x00)), b(0x01));
});

test("prefixEnd drops trailing 0xff bytes before incrementing", () => {
  assert.deepEqual(prefixEnd(b(0x61, 0xff)), b(0x62));
  assert.deepEqual(prefixEnd(b(0x61, 0xfe, 0xff, 0xff)), b(0x61, 0xff));
});

test("prefixEnd of all-0xff or empty runs to the end of the keyspace", () => {
  assert.deepEqual(prefixEnd(b(0xff, 0xff)), b(0));
  assert.deepEqual(prefixEnd(b()), b(0));
});

test("prefixEnd does not modify its input", () => {
  const k = b(1, 2, 0xff);
  prefixEnd(k);
  assert.deepEqual(k, b(1, 2, 0xff));
});

test("resolveRange: single key, prefix, fromKey, explicit end", () => {
  assert.deepEqual(range("a", undefined), { key: b(0x61), rangeEnd: b() });
  assert.deepEqual(range("a", { prefix: true }), { key: b(0x61), rangeEnd: b(0x62) });
  assert.deepEqual(range("a", { fromKey: true }), { key: b(0x61), rangeEnd: b(0) });
  assert.deepEqual(range("a", { rangeEnd: "c" }), { key: b(0x61), rangeEnd: b(0x63) });
});

test("resolveRange: an empty prefix or fromKey means every key", () => {
  assert.deepEqual(range("", { prefix: true }), { key: b(0), rangeEnd: b(0) });
  assert.deepEqual(range(new Uint8Array(0), { fromKey: true }), { key: b(0), rangeEnd: b(0) });
});

test("resolveRange refuses an empty single key and conflicting selectors", () => {
  assert.throws(() => resolveRange("", undefined), InvalidKeyError);
  assert.throws(() => resolveRange("", {}), InvalidKeyError);
  assert.throws(() => resolveRange("a", { prefix: true, fromKey: true }), InvalidOptionError);
  assert.throws(() => resolveRange("a", { prefix: true, rangeEnd: "b" }), InvalidOptionError);
});

test("resolveRange refuses keys that are neither string nor bytes", () => {
  assert.throws(() => resolveRange(42 as unknown as string, undefined), InvalidKeyError);
  assert.throws(() => resolveRange(null as unknown as string, { prefix: true }), InvalidKeyError);
});

test("prefixEnd never changes the caller's bytes, even for a Buffer", () => {
  const key = Buffer.from("abc");
  const end = prefixEnd(key);
  assert.equal(Buffer.from(end).toString(), "abd");
  assert.equal(key.toString(), "abc");
});
