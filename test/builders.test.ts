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
