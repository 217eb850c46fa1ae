// Namespaces beyond KV, against real etcd: watches (events and prevKv come
// back un-prefixed, only the namespace's keys), nested namespaces, mirrors,
// mutexes and elections of a namespace see only its keys.
import { test } from "node:test";
import assert from "node:assert/strict";
import { uniquePrefix, useMember } from "./support.js";
import { delay } from "./waiting.js";
import { nextEvents } from "./watch-support.js";
import { Etcd, Op } from "../src/index.js";

let etcd: Etcd;

useMember((_member, newClient) => {
  etcd = newClient();
});

test("watch: only the namespace's keys, events and prevKv un-prefixed", async () => {
  const root = uniquePrefix("ns-watch");
  const ns = etcd.namespace(root + "app/");
  const w = ns.watch("", { prefix: true, prevKv: true });
  await w.ready();
  await etcd.put(root + "other/a", "outside");
  await etcd.put(root + "app-x", "next to the prefix");
  await ns.put("a", "1");
  await ns.put("a", "2");
  await ns.delete("a");
  const b1 = await nextEvents(w);
  assert.deepEqual(b1.events.map((e) => [e.type, e.keyText, e.text]), [["put", "a", "1"]]);
  const b2 = await nextEvents(w);
  assert.equal(b2.events[0]!.prevKv?.keyText, "a");
  assert.equal(b2.events[0]!.prevKv?.text, "1");
  const b3 = await nextEvents(w);
  assert.deepEqual(b3.events.map((e) => [e.type, e.keyText]), [["delete", "a"]]);
  assert.equal(b3.events[0]!.prevKv?.keyText, "a");
  await w.close();
});

test("watch a single key and a range inside nested namespaces", async () => {
  const root = uniquePrefix("ns-nested");
  const inner = etcd.namespace(root).namespace("x/");
  const one = inner.watch("k");
  const range = inner.watch("a", { rangeEnd: "c" });
  await Promise.all([one.ready(), range.ready()]);
  await etcd.put(root + "k", "not inner");
  await etcd.put(root + "x/c", "past the range end");
  await etcd.put(root + "x/b", "in range");
  await etcd.put(root + "x/k", "inner k");
  assert.deepEqual((await nextEvents(one)).events.map((e) => e.keyText), ["k"]);
  assert.deepEqual((await nextEvents(range)).events.map((e) => [e.keyText, e.text]), [["b", "in range"]]);
  await one.close();
  await range.close();
});

test("mirror: the map holds the namespace's keys, un-prefixed", async () => {
  const root = uniquePrefix("ns-mirror");
  const ns = etcd.namespace(root + "app/");
  await ns.put("svc/a", "1");
  await etcd.put(root + "svc/b", "outside");
  const m = ns.mirror("svc/");
  await m.ready;
  assert.deepEqual([...m.map.keys()], ["svc/a"]);
  const seen = new Promise<string>((resolve) => m.once("put", (k) => resolve(k)));
  await ns.put("svc/c", "3");
  assert.equal(await seen, "svc/c");
  assert.deepEqual([...m.map.keys()].sort(), ["svc/a", "svc/c"]);
  m.close();
});

test("mutex: keys live in the namespace; the same name in two namespaces does not exclude", async () => {
  const root = uniquePrefix("ns-mutex");
  const a = etcd.namespace(root + "a/");
  const b = etcd.namespace(root + "b/");
  const [sa1, sa2, sb] = [await a.session({ ttl: 10 }), await a.session({ ttl: 10 }), await b.session({ ttl: 10 })];
  const ma = sa1.mutex("lock");
  await ma.lock();
  assert.equal((await etcd.get(root + "a/lock/" + sa1.idHex)).first?.lease, sa1.id);
  assert.equal(Buffer.from(ma.key).toString(), "lock/" + sa1.idHex);
  await sb.mutex("lock").lock({ timeoutMs: 2000 }); // another namespace: free
  const waiting = sa2.mutex("lock").lock({ timeoutMs: 10_000 });
  let done = false;
  void waiting.then(() => (done = true));
  await delay(300);
  assert.equal(done, false, "the same namespace did not exclude");
  // Fencing inside the namespace.
  assert.ok((await a.txn().if(ma.isOwner()).then(Op.put("data", "x")).commit()).succeeded);
  await ma.unlock();
  await waiting;
  for (const s of [sa1, sa2, sb]) await s.close();
});

test("election: leader, observe and keys inside the namespace", async () => {
  const root = uniquePrefix("ns-election");
  const ns = etcd.namespace(root + "app/");
  const s1 = await ns.session({ ttl: 10 });
  const e1 = s1.election("e");
  await etcd.put(root + "e/outsider", "not a candidate"); // outside the namespace
  const ac = new AbortController();
  const seen: string[] = [];
  const obs = (async () => {
    for await (const kv of e1.observe({ signal: ac.signal })) seen.push(`${kv.keyText}=${kv.text}`);
  })();
  await e1.campaign("v1");
  const leader = await e1.leader();
  assert.equal(leader?.keyText, "e/" + s1.idHex);
  assert.equal((await etcd.get(root + "app/e/" + s1.idHex)).text, "v1");
  await e1.proclaim("v2");
  for (let i = 0; i < 100 && seen.length < 2; i++) await delay(20);
  ac.abort();
  await obs;
  assert.deepEqual(seen, [`e/${s1.idHex}=v1`, `e/${s1.idHex}=v2`]);
  await s1.close();
});
