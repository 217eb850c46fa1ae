// Op, Compare and Txn builders produce the exact protocol messages, and refuse
// bad input before anything could be sent.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
} from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { Compare, InvalidKeyError, InvalidOptionError, Op, TooManyOpsError } from "../src/index.js";
import { checkTxn, txnRequest } from "../src/kv/op.js";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

test("Op.get carries every range option", () => {
  const { request: r } = Op.get("a", {
    prefix: true,
    limit: 10,
    revision: 5n,
    sort: { target: "modRevision", order: "descend" },
    serializable: true,
    keysOnly: true,
    countOnly: true,
    minModRevision: 1n,
    maxModRevision: 2n,
    minCreateRevision: 3n,
    maxCreateRevision: 4n,
  });
  assert.equal(text(r.key), "a");
  assert.equal(text(r.rangeEnd), "b");
  assert.equal(r.limit, 10n);
  assert.equal(r.revision, 5n);
  assert.equal(r.sortTarget, RangeRequest_SortTarget.MOD);
  assert.equal(r.sortOrder, RangeRequest_SortOrder.DESCEND);
  assert.deepEqual([r.serializable, r.keysOnly, r.countOnly], [true, true, true]);
  assert.deepEqual([r.minModRevision, r.maxModRevision, r.minCreateRevision, r.maxCreateRevision], [1n, 2n, 3n, 4n]);
});

test("Op.get refuses negative or fractional numbers and unknown sorts", () => {
  assert.throws(() => Op.get("a", { limit: -1 }), InvalidOptionError);
  assert.throws(() => Op.get("a", { limit: 1.5 }), InvalidOptionError);
  assert.throws(() => Op.get("a", { sort: { target: "size" as never } }), InvalidOptionError);
});

test("Op.put and Op.delete", () => {
  const p = Op.put("k", new Uint8Array([0, 255]), { lease: 7n, prevKv: true });
  assert.equal(p.kind, "put");
  assert.deepEqual(Array.from(p.request.value), [0, 255]);
  assert.equal(p.request.lease, 7n);
  assert.equal(p.request.prevKv, true);
  const d = Op.delete("dir/", { prefix: true, prevKv: true });
  assert.equal(text(d.request.rangeEnd), "dir0");
  assert.equal(d.request.prevKv, true);
  assert.throws(() => Op.put("k", "v", { ignoreValue: true }), InvalidOptionError);
  assert.throws(() => Op.put("k", "", { ignoreLease: true, lease: 3n }), InvalidOptionError);
  assert.throws(() => Op.delete(""), InvalidKeyError);
});

test("Compare builds each target and operator, with ranges", () => {
  const v = Compare.value("k", "!=", "x").raw;
  assert.equal(v.target, Compare_CompareTarget.VALUE);
  assert.equal(v.result, Compare_CompareResult.NOT_EQUAL);
  assert.deepEqual(v.targetUnion, { case: "value", value: Buffer.from("x") });
  const ver = Compare.version("k", ">", 2).raw;
  assert.equal(ver.result, Compare_CompareResult.GREATER);
  assert.deepEqual(ver.targetUnion, { case: "version", value: 2n });
  assert.deepEqual(Compare.createRevision("k", "<", 9n).raw.targetUnion, { case: "createRevision", value: 9n });
  assert.equal(Compare.createRevision("k", "<", 9n).raw.result, Compare_CompareResult.LESS);
  assert.deepEqual(Compare.modRevision("k", "=", 4).raw.targetUnion, { case: "modRevision", value: 4n });
  assert.deepEqual(Compare.lease("k", "=", 0).raw.targetUnion, { case: "lease", value: 0n });
  assert.equal(text(Compare.version("p/", ">", 0).withPrefix().raw.rangeEnd), "p0");
  assert.equal(text(Compare.version("a", ">", 0).withRange("c").raw.rangeEnd), "c");
  assert.deepEqual(Array.from(Compare.version("a", ">", 0).withFromKey().raw.rangeEnd), [0]);
  assert.throws(() => Compare.value("k", "~" as never, "x"), InvalidOptionError);
});

test("a txn refuses an empty compare key, and checkTxn counts every level", () => {
  assert.throws(() => txnRequest([Compare.version("", "=", 0)], [], []), InvalidKeyError);
  const many = Array.from({ length: 129 }, (_, i) => Op.put(`k${i}`, "v"));
  assert.throws(() => checkTxn(txnRequest([], many, []), 128), (e: unknown) => e instanceof TooManyOpsError && e.count === 129 && e.limit === 128);
  const nested = txnRequest([], [Op.txn([], many)], []);
  assert.throws(() => checkTxn(nested, 128), TooManyOpsError);
  checkTxn(txnRequest([], many.slice(0, 128), []), 128);
});

test("a nested txn gets what its parent level leaves of the limit, as etcd counts", () => {
  const ops = (n: number, p: string) => Array.from({ length: n }, (_, i) => Op.put(`${p}${i}`, "v"));
  // The parent uses 100 (its largest of compares, success, failure): a nested level may hold 28, not 29.
  checkTxn(txnRequest([], [...ops(99, "a"), Op.txn([], ops(28, "b"))], []), 128);
  assert.throws(
    () => checkTxn(txnRequest([], [...ops(99, "a"), Op.txn([], ops(29, "b"))], []), 128),
    (e: unknown) => e instanceof TooManyOpsError && e.count === 29 && e.limit === 28,
  );
  // Two levels down, each level's count is taken away again.
  checkTxn(txnRequest([], [Op.txn([], [...ops(9, "c"), Op.txn([], ops(117, "d"))])], []), 128);
  assert.throws(() => checkTxn(txnRequest([], [Op.txn([], [...ops(9, "c"), Op.txn([], ops(118, "d"))])], []), 128), TooManyOpsError);
});

test("bad ops inside nested txns are refused before sending", () => {
  const bad = (request: object): Op => ({ kind: "put", request }) as unknown as Op;
  const emptyKey = Op.put("k", "v");
  (emptyKey.request as { key: Uint8Array }).key = new Uint8Array(0);
  assert.throws(() => checkTxn(txnRequest([], [Op.txn([], [emptyKey])], []), 128), InvalidKeyError);
  const withValue = Op.put("k", "v");
  (withValue.request as { ignoreValue: boolean }).ignoreValue = true;
  assert.throws(() => checkTxn(txnRequest([], [], [Op.txn([], [withValue])]), 128), InvalidOptionError);
  const get = Op.get("k");
  (get.request as { key: Uint8Array }).key = new Uint8Array(0);
  assert.throws(() => checkTxn(txnRequest([], [Op.txn([], [], [get])], []), 128), InvalidKeyError);
  assert.throws(() => txnRequest([], [bad({ key: new Uint8Array([1]) }), { kind: "other" } as unknown as Op], []), InvalidOptionError);
});

test("key order is asked as no sort (etcd returns key order anyway); other sorts are sent", () => {
  for (const sort of [{ target: "key" as const, order: "ascend" as const }, { target: "key" as const }, {}]) {
    const r = Op.get("a", { prefix: true, sort }).request;
    assert.equal(r.sortOrder, RangeRequest_SortOrder.NONE, JSON.stringify(sort));
  }
  const desc = Op.get("a", { prefix: true, sort: { target: "key", order: "descend" } }).request;
  assert.equal(desc.sortOrder, RangeRequest_SortOrder.DESCEND);
  assert.equal(desc.sortTarget, RangeRequest_SortTarget.KEY);
  const byValue = Op.get("a", { prefix: true, sort: { target: "value" } }).request;
  assert.equal(byValue.sortOrder, RangeRequest_SortOrder.ASCEND);
  assert.equal(byValue.sortTarget, RangeRequest_SortTarget.VALUE);
});

test("one number rule: every integer option takes a number or a bigint", () => {
  const r = Op.get("a", { limit: 5, revision: 7, minModRevision: 1, maxModRevision: 2n, minCreateRevision: 3, maxCreateRevision: 4n }).request;
  assert.deepEqual([r.limit, r.revision, r.minModRevision, r.maxModRevision, r.minCreateRevision, r.maxCreateRevision], [5n, 7n, 1n, 2n, 3n, 4n]);
  assert.equal(Op.put("k", "v", { lease: 42 }).request.lease, 42n);
  assert.equal(Op.put("k", "v", { lease: 2n ** 62n }).request.lease, 2n ** 62n);
  assert.deepEqual(Compare.modRevision("k", "=", 3).raw.targetUnion, { case: "modRevision", value: 3n });
  for (const bad of [1.5, -1, Number.MAX_SAFE_INTEGER + 2, "3", 2n ** 63n]) {
    assert.throws(() => Op.get("a", { revision: bad as never }), InvalidOptionError, String(bad));
  }
  assert.throws(() => Op.put("k", "v", { lease: -5 }), InvalidOptionError);
});

test("builders describe odd caller values without throwing anything but InvalidOptionError", () => {
  // JSON.stringify throws on a bigint and String() on an object whose toString is not a function:
  // the message must not turn the typed error into a TypeError.
  const odd: unknown[] = [10n, { toString: "" }, Object.create(null), { a: 1n }, "toString"];
  for (const v of odd) {
    assert.throws(() => Compare.value("k", v as "=", "x"), InvalidOptionError);
    assert.throws(() => Op.get("k", { sort: { target: v as "key" } }), InvalidOptionError);
    assert.throws(() => Op.get("k", { sort: { target: "key", order: v as "ascend" } }), InvalidOptionError);
    assert.throws(() => txnRequest([], [v as Op], []), InvalidOptionError);
  }
});
