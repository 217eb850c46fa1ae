// Namespaces against a real etcd: a namespaced view sees only its own keys in
// every KV API (get and its ranges, put, delete, txn compares and ops, nested
// transactions, do, paginate, STM), keys come back without the prefix, and
// namespaces nest.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { uniquePrefix, useMember } from "./support.js";
import { Compare, Etcd, InvalidKeyError, Namespace, Op, type GetResult, type TxnResult } from "../src/index.js";

let etcd: Etcd;

useMember((_member, newClient) => {
  etcd = newClient();
});

const keys = (r: GetResult) => r.kvs.map((kv) => kv.keyText);

/**
 * A fresh base under which the test writes: `<base>app/` is the namespace;
 * neighbours just outside it (`<base>app`, `<base>app0`, `<base>ap`,
 * `<base>app/` itself, `<base>other/x`) hold decoys a leaky translation would show.
 */
async function setup(name: string): Promise<{ base: string; ns: Namespace }> {
  const base = uniquePrefix(name);
  for (const k of ["app", "app0", "app0/x", "ap", "app/", "other/x", "apq"]) await etcd.put(base + k, "decoy");
  return { base, ns: etcd.namespace(base + "app/") };
}

describe("single keys", () => {
  test("put and get go to prefixed keys; results come back without the prefix", async () => {
    const { base, ns } = await setup("ns-basic");
    const put = await ns.put("k", "v1");
    assert.equal((await etcd.get(base + "app/k")).text, "v1");
    const got = await ns.get("k");
    assert.equal(got.text, "v1");
    assert.equal(got.first?.keyText, "k");
    assert.equal(got.first?.modRevision, put.revision);
    const again = await ns.put("k", "v2", { prevKv: true });
    assert.equal(again.prevKv?.keyText, "k");
    assert.equal(again.prevKv?.text, "v1");
    // A key of the same name outside the namespace is another key.
    await etcd.put("k-" + base, "root");
    assert.equal((await ns.get("k-" + base)).kvs.length, 0);
  });

  test("an empty key is refused, as outside a namespace", async () => {
    const { ns } = await setup("ns-empty");
    await assert.rejects(ns.put("", "v"), InvalidKeyError);
    await assert.rejects(ns.get(""), InvalidKeyError);
  });
});

describe("ranges", () => {
  test("'all keys', prefix, fromKey and rangeEnd stay inside the namespace", async () => {
    const { ns } = await setup("ns-ranges");
    for (const k of ["a", "b/1", "b/2", "c", "\u00ff"]) await ns.put(k, k);
    assert.deepEqual(keys(await ns.get("", { prefix: true })), ["a", "b/1", "b/2", "c", "\u00ff"]);
    assert.equal((await ns.get("", { prefix: true, countOnly: true })).count, 5n);
    assert.deepEqual(keys(await ns.get("b/", { prefix: true })), ["b/1", "b/2"]);
    assert.deepEqual(keys(await ns.get("b/2", { fromKey: true })), ["b/2", "c", "\u00ff"]);
    assert.deepEqual(keys(await ns.get("", { fromKey: true })), ["a", "b/1", "b/2", "c", "\u00ff"]);
    assert.deepEqual(keys(await ns.get("a", { rangeEnd: "c" })), ["a", "b/1", "b/2"]);
    assert.deepEqual(keys(await ns.get("a", { rangeEnd: "\0" })), ["a", "b/1", "b/2", "c", "\u00ff"]);
    const sorted = await ns.get("", { prefix: true, sort: { target: "key", order: "descend" }, limit: 2 });
    assert.deepEqual(keys(sorted), ["\u00ff", "c"]);
    assert.equal(sorted.more, true);
  });

  test("delete of a range or of 'all keys' removes only the namespace's keys and returns them un-prefixed", async () => {
    const { base, ns } = await setup("ns-delete");
    for (const k of ["a", "b", "c"]) await ns.put(k, k);
    const one = await ns.delete("a", { prevKv: true });
    assert.deepEqual(one.prevKvs.map((kv) => kv.keyText), ["a"]);
    const all = await ns.delete("", { prefix: true, prevKv: true });
    assert.equal(all.deleted, 2n);
    assert.deepEqual(all.prevKvs.map((kv) => kv.keyText), ["b", "c"]);
    const left = (await etcd.get(base, { prefix: true })).kvs.map((kv) => kv.keyText.slice(base.length));
    assert.deepEqual(left, ["ap", "app", "app/", "app0", "app0/x", "apq", "other/x"]);
  });

  test("a prefix ending in 0xff: the key just past it stays outside", async () => {
    const base = Buffer.from(uniquePrefix("ns-ff"));
    const prefix = Buffer.concat([base, Buffer.from([0x61, 0xff])]);
    await etcd.put(Buffer.concat([base, Buffer.from([0x62])]), "decoy past the prefix");
    await etcd.put(Buffer.concat([base, Buffer.from([0x62, 0x00])]), "decoy");
    const ns = etcd.namespace(prefix);
    await ns.put("k", "in");
    await ns.put(new Uint8Array([0xff, 0xff]), "in");
    const got = await ns.get("", { prefix: true });
    assert.deepEqual(got.kvs.map((kv) => Buffer.from(kv.key).toString("hex")), ["6b", "ffff"]);
    assert.deepEqual(keys(await ns.get("k", { fromKey: true })), ["k", "\ufffd\ufffd"]);
  });
});

describe("transactions", () => {
  test("compares and ops use namespaced keys; results, nested ones included, come back un-prefixed", async () => {
    const { base, ns } = await setup("ns-txn");
    await ns.put("x", "1");
    await etcd.put(base + "x", "root value"); // same name, outside the namespace
    const ok = await ns
      .txn()
      .if(Compare.value("x", "=", "1"), Compare.version("missing", "=", 0))
      .then(
        Op.put("y", "2", { prevKv: true }),
        Op.get("x"),
        Op.txn([Compare.value("x", "=", "1")], [Op.get("", { prefix: true }), Op.delete("x", { prevKv: true })]),
      )
      .else(Op.get("x"))
      .commit();
    assert.equal(ok.succeeded, true);
    const [put, get, nested] = ok.results;
    assert.equal(put?.kind, "put");
    assert.equal(get?.kind === "get" && get.first?.keyText, "x");
    assert.equal(nested?.kind, "txn");
    const inner = nested as TxnResult;
    assert.equal(inner.succeeded, true);
    assert.deepEqual(keys(inner.results[0] as GetResult), ["x", "y"]);
    assert.deepEqual(inner.results[1]?.kind === "delete" && inner.results[1].prevKvs.map((kv) => kv.keyText), ["x"]);
    assert.equal((await etcd.get(base + "app/y")).text, "2");
    assert.equal((await etcd.get(base + "app/x")).kvs.length, 0);
    assert.equal((await etcd.get(base + "x")).text, "root value");
    // A compare that holds outside the namespace but not inside it fails.
    const no = await ns.txn().if(Compare.value("x", "=", "root value")).then(Op.put("z", "1")).else(Op.get("y")).commit();
    assert.equal(no.succeeded, false);
    assert.equal((no.results[0] as GetResult).first?.keyText, "y");
  });

  test("range compares (withPrefix, withFromKey) cover only the namespace", async () => {
    const { ns } = await setup("ns-cmp-range");
    await ns.put("a", "1");
    // The decoys outside hold "decoy": a compare over "all keys" of the namespace must not see them.
    const all = await ns.txn().if(Compare.value("", "=", "1").withPrefix()).then(Op.put("seen", "1")).commit();
    assert.equal(all.succeeded, true);
    const from = await ns.txn().if(Compare.value("a", "!=", "decoy").withFromKey()).commit();
    assert.equal(from.succeeded, true);
  });

  test("do() runs one op in the namespace", async () => {
    const { ns } = await setup("ns-do");
    await ns.do(Op.put("k", "v"));
    const r = await ns.do(Op.get("k"));
    assert.equal(r.kind === "get" && r.first?.keyText, "k");
  });
});

describe("paginate, nesting, STM, compaction", () => {
  test("paginate walks the namespace page by page, un-prefixed, and stops at its end", async () => {
    const { ns } = await setup("ns-page");
    const want: string[] = [];
    for (let i = 0; i < 23; i++) {
      const k = `k${String(i).padStart(2, "0")}`;
      want.push(k);
      await ns.put(k, String(i));
    }
    const got: string[] = [];
    for await (const kv of ns.paginate("", { prefix: true, pageSize: 5 })) got.push(kv.keyText);
    assert.deepEqual(got, want);
    const from: string[] = [];
    for await (const kv of ns.paginate("k20", { fromKey: true, pageSize: 2 })) from.push(kv.keyText);
    assert.deepEqual(from, ["k20", "k21", "k22"]);
  });

  test("namespaces nest", async () => {
    const { base, ns } = await setup("ns-nest");
    const inner = ns.namespace("x/");
    await inner.put("k", "1");
    await ns.put("x0", "sibling");
    assert.equal(Buffer.from(inner.prefix).toString(), base + "app/x/");
    assert.equal((await etcd.get(base + "app/x/k")).text, "1");
    assert.deepEqual(keys(await ns.get("", { prefix: true })), ["x/k", "x0"]);
    assert.deepEqual(keys(await inner.get("", { prefix: true })), ["k"]);
    const t = await inner.txn().if(Compare.value("k", "=", "1")).then(Op.get("", { fromKey: true })).commit();
    assert.deepEqual(keys(t.results[0] as GetResult), ["k"]);
  });

  test("an STM in a namespace reads and writes the namespace's keys", async () => {
    const { base, ns } = await setup("ns-stm");
    await ns.put("a", "5");
    await etcd.put(base + "a", "100");
    const r = await ns.stm(async (tx) => {
      const a = Number(await tx.get("a"));
      tx.put("b", String(a * 2));
      return a;
    });
    assert.equal(r.value, 5);
    assert.equal((await etcd.get(base + "app/b")).text, "10");
    assert.equal((await etcd.get(base + "b")).kvs.length, 0);
  });

  test("compact passes through (revisions are cluster-wide)", async () => {
    const { ns } = await setup("ns-compact");
    const p = await ns.put("k", "v");
    await ns.compact(p.revision);
    await assert.rejects(ns.get("k", { revision: p.revision - 1n }), /compacted/);
  });
});
