import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { EtcdMember } from "./harness/index.js";
import { client, uniquePrefix, useMember } from "./support.js";
import type { Interceptor } from "@connectrpc/connect";
import { RangeRequest_SortOrder, type RangeRequest } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import {
  AbortedError,
  ClientClosedError,
  Compare,
  CompactResult,
  CompactedError,
  Etcd,
  KeyNotFoundError,
  FutureRevisionError,
  InvalidKeyError,
  InvalidOptionError,
  LeaseNotFoundError,
  Op,
  RequestTooLargeError,
  TooManyOpsError,
  DuplicateKeyError,
  ValueProvidedError,
} from "../src/index.js";

let member: EtcdMember;
let etcd: Etcd;

useMember((m, newClient) => {
  member = m;
  etcd = newClient();
});

const enc = (s: string) => new TextEncoder().encode(s);

describe("get and put", () => {
  test("put then get returns the value with revisions", async () => {
    const p = uniquePrefix("basic");
    const put = await etcd.put(p + "a", "1");
    assert.ok(put.revision > 0n);
    const got = await etcd.get(p + "a");
    assert.equal(got.text, "1");
    assert.equal(got.kvs.length, 1);
    assert.equal(got.first?.keyText, p + "a");
    assert.equal(got.first?.modRevision, put.revision);
    assert.equal(got.first?.createRevision, put.revision);
    assert.equal(got.first?.version, 1n);
    assert.equal(got.count, 1n);
  });

  test("missing key gives an empty result, not an error", async () => {
    const got = await etcd.get(uniquePrefix("missing") + "nope");
    assert.equal(got.kvs.length, 0);
    assert.equal(got.text, undefined);
    assert.equal(got.first, undefined);
    assert.equal(got.count, 0n);
  });

  test("binary keys and values round-trip, JSON accessor works", async () => {
    const p = uniquePrefix("bin");
    const key = new Uint8Array([...enc(p), 0xff, 0x00, 0xfe]);
    const value = new Uint8Array([0, 1, 2, 255]);
    await etcd.put(key, value);
    const got = await etcd.get(key);
    assert.deepEqual(got.bytes, value);
    assert.deepEqual(got.first?.key, key);
    await etcd.put(p + "j", JSON.stringify({ a: [1, 2] }));
    assert.deepEqual((await etcd.get(p + "j")).json(), { a: [1, 2] });
  });

  test("prevKv on put returns the old pair", async () => {
    const p = uniquePrefix("prev");
    await etcd.put(p + "k", "old");
    const r = await etcd.put(p + "k", "new", { prevKv: true });
    assert.equal(r.prevKv?.text, "old");
    const first = await etcd.put(p + "fresh", "v", { prevKv: true });
    assert.equal(first.prevKv, undefined);
  });

  test("ignoreValue keeps the value, ignoreLease keeps the lease", async () => {
    const p = uniquePrefix("ignore");
    await etcd.put(p + "k", "keep");
    await etcd.put(p + "k", "", { ignoreValue: true });
    assert.equal((await etcd.get(p + "k")).text, "keep");
    await etcd.put(p + "k", "changed", { ignoreLease: true });
    assert.equal((await etcd.get(p + "k")).text, "changed");
    await assert.rejects(etcd.put(p + "absent", "", { ignoreValue: true }), KeyNotFoundError);
    await assert.rejects(etcd.put(p + "k", "x", { ignoreValue: true }), InvalidOptionError);
  });

  test("puts with a lease attach it", async () => {
    const p = uniquePrefix("lease");
    const grant = await etcd.raw.lease.leaseGrant({ TTL: 30n });
    await etcd.put(p + "k", "v", { lease: grant.ID });
    assert.equal((await etcd.get(p + "k")).first?.lease, grant.ID);
    await etcd.raw.lease.leaseRevoke({ ID: grant.ID });
    assert.equal((await etcd.get(p + "k")).kvs.length, 0, "revoking the lease deletes the key");
    // A put on a lease that is gone is refused with a typed error, and writes nothing.
    await assert.rejects(etcd.put(p + "k", "again", { lease: grant.ID }), LeaseNotFoundError);
    assert.equal((await etcd.get(p + "k")).kvs.length, 0);
  });
});

describe("ranges", () => {
  const p = uniquePrefix("range");
  before(async () => {
    for (const k of ["a", "b", "c", "d", "e"]) await etcd.put(p + k, k.toUpperCase());
  });

  test("prefix returns keys in order", async () => {
    const r = await etcd.get(p, { prefix: true });
    assert.deepEqual(r.kvs.map((kv) => kv.keyText), ["a", "b", "c", "d", "e"].map((k) => p + k));
  });

  test("explicit range end is exclusive; fromKey runs to the end", async () => {
    const r = await etcd.get(p + "b", { rangeEnd: p + "d" });
    assert.deepEqual(r.kvs.map((kv) => kv.text), ["B", "C"]);
    const f = await etcd.get(p + "d", { fromKey: true });
    assert.deepEqual(f.kvs.slice(0, 2).map((kv) => kv.text), ["D", "E"]);
  });

  test("limit, more and count", async () => {
    const r = await etcd.get(p, { prefix: true, limit: 2 });
    assert.equal(r.kvs.length, 2);
    assert.equal(r.more, true);
    assert.equal(r.count, 5n);
  });

  test("sort by value descending, by key ascending", async () => {
    const r = await etcd.get(p, { prefix: true, sort: { target: "value", order: "descend" } });
    assert.deepEqual(r.kvs.map((kv) => kv.text), ["E", "D", "C", "B", "A"]);
    const k = await etcd.get(p, { prefix: true, sort: { target: "key", order: "ascend" }, limit: 1 });
    assert.equal(k.text, "A");
  });

  test("keysOnly and countOnly", async () => {
    const r = await etcd.get(p, { prefix: true, keysOnly: true });
    assert.equal(r.kvs.length, 5);
    assert.ok(r.kvs.every((kv) => kv.value.length === 0));
    const c = await etcd.get(p, { prefix: true, countOnly: true });
    assert.equal(c.kvs.length, 0);
    assert.equal(c.count, 5n);
  });

  test("revision reads the past; serializable reads work", async () => {
    const q = uniquePrefix("rev");
    const r1 = await etcd.put(q + "k", "v1");
    await etcd.put(q + "k", "v2");
    assert.equal((await etcd.get(q + "k", { revision: r1.revision })).text, "v1");
    assert.equal((await etcd.get(q + "k", { serializable: true })).text, "v2");
  });

  test("min/max mod and create revision filters", async () => {
    const q = uniquePrefix("filter");
    const r1 = await etcd.put(q + "a", "1");
    const r2 = await etcd.put(q + "b", "2");
    await etcd.put(q + "a", "1b");
    const created = await etcd.get(q, { prefix: true, minCreateRevision: r2.revision });
    assert.deepEqual(created.kvs.map((kv) => kv.keyText), [q + "b"]);
    const old = await etcd.get(q, { prefix: true, maxModRevision: r2.revision });
    assert.deepEqual(old.kvs.map((kv) => kv.keyText), [q + "b"]);
    const firstOnly = await etcd.get(q, { prefix: true, maxCreateRevision: r1.revision });
    assert.deepEqual(firstOnly.kvs.map((kv) => kv.keyText), [q + "a"]);
    const recent = await etcd.get(q, { prefix: true, minModRevision: r2.revision + 1n });
    assert.deepEqual(recent.kvs.map((kv) => kv.keyText), [q + "a"]);
  });

  test("prefix ending in 0xff bytes selects exactly the prefix", async () => {
    const base = enc(uniquePrefix("ff"));
    const pre = new Uint8Array([...base, 0xff]);
    const inside = new Uint8Array([...pre, 0x01]);
    const inside2 = new Uint8Array([...pre, 0xff, 0xff]);
    const outside = new Uint8Array([...base.slice(0, -1), base[base.length - 1]! + 1]);
    await etcd.put(inside, "in1");
    await etcd.put(inside2, "in2");
    await etcd.put(outside, "out");
    const r = await etcd.get(pre, { prefix: true });
    assert.deepEqual(r.kvs.map((kv) => kv.text).sort(), ["in1", "in2"]);
    await etcd.delete(outside);
  });

  test("an empty prefix means all keys", async () => {
    const all = await etcd.get("", { prefix: true, countOnly: true });
    assert.ok(all.count >= 5n);
    const from = await etcd.get("", { fromKey: true, countOnly: true });
    assert.equal(from.count, all.count);
  });
});

describe("delete", () => {
  test("single key, prefix with prevKv, and range", async () => {
    const p = uniquePrefix("del");
    for (const k of ["a", "b", "c", "x/1", "x/2"]) await etcd.put(p + k, k);
    const one = await etcd.delete(p + "a");
    assert.equal(one.deleted, 1n);
    const pre = await etcd.delete(p + "x/", { prefix: true, prevKv: true });
    assert.equal(pre.deleted, 2n);
    assert.deepEqual(pre.prevKvs.map((kv) => kv.text).sort(), ["x/1", "x/2"]);
    const range = await etcd.delete(p + "b", { rangeEnd: p + "c" });
    assert.equal(range.deleted, 1n);
    assert.deepEqual((await etcd.get(p, { prefix: true })).kvs.map((kv) => kv.text), ["c"]);
    assert.equal((await etcd.delete(p + "none")).deleted, 0n);
  });
});

describe("paginate", () => {
  test("walks every key once, at one revision, in pages, without asking etcd to sort", async () => {
    const p = uniquePrefix("page");
    const sent: RangeRequest[] = [];
    const record: Interceptor = (next) => (req) => {
      if (req.method.name === "Range") sent.push(req.message as RangeRequest);
      return next(req);
    };
    const paging = client(member.endpoint, { interceptors: [record] });
    const n = 1234;
    const ops = [];
    for (let i = 0; i < n; i++) ops.push(Op.put(p + String(i).padStart(5, "0"), String(i)));
    for (let i = 0; i < n; i += 100) await etcd.txn().then(...ops.slice(i, i + 100)).commit();
    const seen: string[] = [];
    let added = false;
    for await (const kv of paging.paginate(p, { prefix: true, pageSize: 100 })) {
      seen.push(kv.text);
      if (!added) {
        // Written after the walk began: the pinned revision must hide it.
        await etcd.put(p + "00000-late", "late");
        added = true;
      }
    }
    assert.equal(seen.length, n);
    assert.deepEqual(seen, Array.from({ length: n }, (_, i) => String(i)));
    // A sort would make etcd read and sort the whole rest of the range for every page.
    assert.equal(sent.length, 13);
    assert.ok(sent.every((r) => r.sortOrder === RangeRequest_SortOrder.NONE));
    await paging.close();
  });
});

describe("transactions", () => {
  test("compare-and-swap on mod revision", async () => {
    const k = uniquePrefix("cas") + "config";
    await etcd.put(k, "v1");
    const seen = (await etcd.get(k)).first!;
    const ok = await etcd.txn().if(Compare.modRevision(k, "=", seen.modRevision)).then(Op.put(k, "v2")).commit();
    assert.equal(ok.succeeded, true);
    const stale = await etcd
      .txn()
      .if(Compare.modRevision(k, "=", seen.modRevision))
      .then(Op.put(k, "v3"))
      .else(Op.get(k))
      .commit();
    assert.equal(stale.succeeded, false);
    const [current] = stale.results;
    assert.equal(current?.kind, "get");
    assert.equal(current?.kind === "get" ? current.text : undefined, "v2");
    assert.equal((await etcd.get(k)).text, "v2");
  });

  test("every compare target and operator", async () => {
    const p = uniquePrefix("cmp");
    const r = await etcd.put(p + "k", "m");
    const lease = await etcd.raw.lease.leaseGrant({ TTL: 60n });
    await etcd.put(p + "l", "x", { lease: lease.ID });
    const cases: Array<[Compare, boolean]> = [
      [Compare.value(p + "k", "=", "m"), true],
      [Compare.value(p + "k", "!=", "m"), false],
      [Compare.value(p + "k", "<", "n"), true],
      [Compare.value(p + "k", ">", "n"), false],
      [Compare.version(p + "k", "=", 1), true],
      [Compare.version(p + "k", ">", 1n), false],
      [Compare.createRevision(p + "k", "=", r.revision), true],
      [Compare.createRevision(p + "absent", "=", 0), true],
      [Compare.modRevision(p + "k", "<", r.revision + 1n), true],
      [Compare.lease(p + "l", "=", lease.ID), true],
      [Compare.lease(p + "k", "=", 0), true],
      [Compare.value(p, "=", "m").withPrefix(), false],
      [Compare.version(p, ">", 0).withPrefix(), true],
      [Compare.version(p + "k", ">", 0).withRange(p + "l"), true],
      [Compare.version(p + "k", "=", 1).withFromKey(), false],
    ];
    for (const [cmp, want] of cases) {
      const res = await etcd.txn().if(cmp).commit();
      assert.equal(res.succeeded, want, JSON.stringify(cmp.raw, (_, v) => (typeof v === "bigint" ? String(v) : v)));
    }
    await etcd.raw.lease.leaseRevoke({ ID: lease.ID });
  });

  test("per-op typed results, delete and nested txn", async () => {
    const p = uniquePrefix("ops");
    await etcd.put(p + "gone", "x");
    const res = await etcd
      .txn()
      .if(Compare.version(p + "gone", ">", 0))
      .then(
        Op.put(p + "a", "1", { prevKv: true }),
        Op.get(p + "gone"),
        Op.delete(p + "gone", { prevKv: true }),
        Op.txn([Compare.version(p + "a", "=", 0)], [Op.put(p + "never", "x")], [Op.put(p + "nested", "yes")]),
      )
      .commit();
    assert.equal(res.succeeded, true);
    const [put, get, del, nested] = res.results;
    assert.equal(put?.kind, "put");
    assert.equal(get?.kind === "get" ? get.text : "", "x");
    assert.equal(del?.kind === "delete" ? del.deleted : -1n, 1n);
    // etcd evaluates every compare, nested ones included, against the state before the txn:
    // "a" was absent then, so the nested txn takes its success branch.
    assert.equal(nested?.kind === "txn" ? nested.succeeded : false, true);
    assert.equal((await etcd.get(p + "never")).text, "x");
    assert.equal((await etcd.get(p + "nested")).kvs.length, 0);
  });

  test("a txn is not a promise: awaiting the builder fails clearly", async () => {
    const t = etcd.txn().if(Compare.version("x", "=", 0));
    await assert.rejects(async () => await (t as unknown as Promise<unknown>), /commit/);
  });

  test("too many ops is refused before sending, server limit also maps", async () => {
    const p = uniquePrefix("many");
    const ops = Array.from({ length: 129 }, (_, i) => Op.put(p + i, "v"));
    await assert.rejects(etcd.txn().then(...ops).commit(), TooManyOpsError);
    assert.equal((await etcd.get(p, { prefix: true, countOnly: true })).count, 0n, "nothing half-applied");
    const lax = client(member.endpoint, { maxTxnOps: 1000 });
    try {
      await assert.rejects(lax.txn().then(...ops).commit(), (e: unknown) => e instanceof TooManyOpsError && /etcdserver: too many operations/.test(e.message));
    } finally {
      lax.close();
    }
  });

  test("duplicate keys in one txn are refused by the server with a typed error", async () => {
    const k = uniquePrefix("dup") + "k";
    await assert.rejects(etcd.txn().then(Op.put(k, "1"), Op.put(k, "2")).commit(), DuplicateKeyError);
  });
});

describe("bad input", () => {
  test("empty keys are refused before sending", async () => {
    await assert.rejects(etcd.get(""), InvalidKeyError);
    await assert.rejects(etcd.put("", "v"), InvalidKeyError);
    await assert.rejects(etcd.delete(""), InvalidKeyError);
    assert.throws(() => Op.put("", "v"), InvalidKeyError);
  });

  test("keys of the wrong type are refused", async () => {
    await assert.rejects(etcd.get(123 as unknown as string), InvalidKeyError);
    await assert.rejects(etcd.put("k", { a: 1 } as unknown as string), InvalidKeyError);
  });

  test("a value over the request limit fails before sending, naming both sizes", async () => {
    const k = uniquePrefix("big") + "k";
    const big = new Uint8Array(2 * 1024 * 1024);
    await assert.rejects(etcd.put(k, big), (e: unknown) => {
      assert.ok(e instanceof RequestTooLargeError, String(e));
      assert.match(e.message, /2097\d{3}/);
      assert.match(e.message, /1572864/);
      return true;
    });
    assert.equal((await etcd.get(k)).kvs.length, 0);
  });

  test("the server's own request limit maps to a typed error", async () => {
    const k = uniquePrefix("big2") + "k";
    const lax = client(member.endpoint, { maxRequestBytes: 8 * 1024 * 1024 });
    try {
      await assert.rejects(lax.put(k, new Uint8Array(1600 * 1024)), (e: unknown) => {
        assert.ok(e instanceof RequestTooLargeError, String(e));
        assert.match(e.rawMessage, /request is too large|larger than max/);
        return true;
      });
    } finally {
      lax.close();
    }
  });

  test("compacted and future revisions are typed errors", async () => {
    const k = uniquePrefix("compact") + "k";
    const r1 = await etcd.put(k, "1");
    const r2 = await etcd.put(k, "2");
    const compacted = await etcd.compact(Number(r2.revision));
    assert.ok(compacted instanceof CompactResult);
    assert.ok(compacted.revision >= r2.revision, `${compacted.revision}`);
    await assert.rejects(etcd.get(k, { revision: r1.revision }), CompactedError);
    await assert.rejects(etcd.get(k, { revision: r2.revision + 1000n }), FutureRevisionError);
    await assert.rejects(etcd.compact(0n), InvalidOptionError);
    await assert.rejects(etcd.compact(1.5), InvalidOptionError);
  });

  test("ignoreValue with a value is a client error; server-side value errors map too", async () => {
    await assert.rejects(etcd.put("k", "v", { ignoreValue: true }), InvalidOptionError);
    const raw = etcd.raw.kv.put({ key: enc("k"), value: enc("v"), ignoreValue: true });
    await assert.rejects(raw, ValueProvidedError);
  });
});

describe("deadlines and cancellation", () => {
  test("an aborted signal rejects at once", async () => {
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await assert.rejects(etcd.get("k", { signal: ac.signal }), AbortedError);
  });

  test("close() fails later calls with ClientClosedError", async () => {
    const c = client(member.endpoint);
    await c.put(uniquePrefix("close") + "k", "v");
    await c.close();
    await assert.rejects(c.get("k"), ClientClosedError);
  });
});
