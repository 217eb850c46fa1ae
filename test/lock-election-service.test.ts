// etcd's v3lock and v3election services through the typed wrappers, against a
// real etcd, with leases granted through the raw lease client: lock contention
// without overlap, release by unlock and by the end of the lease, withdrawal
// on timeout; campaign, leader, proclaim, observe, resign; namespaces; typed
// errors; observe ends on abort and on close.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { EtcdMember } from "./harness/index.js";
import { client, uniquePrefix, useMember } from "./support.js";
import {
  AbortedError,
  DeadlineExceededError,
  OutcomeUnknownError,
  ElectionNotLeaderError,
  ElectionService,
  Etcd,
  InvalidKeyError,
  InvalidOptionError,
  LeaseNotFoundError,
  LockService,
  type KeyValue,
} from "../src/index.js";

let member: EtcdMember;
let etcd: Etcd;

useMember((m, newClient) => {
  member = m;
  etcd = newClient();
});

async function grant(c: Etcd = etcd, ttl = 30n): Promise<bigint> {
  return (await c.raw.lease.leaseGrant({ TTL: ttl })).ID;
}
const text = (b: Uint8Array) => Buffer.from(b).toString();
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves true when `p` settles within `ms`, false otherwise. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (t = setTimeout(() => r(false), ms)));
  const r = await Promise.race([p.then(() => true, () => true), timeout]);
  clearTimeout(t);
  return r;
}

/** The next item of an observation, or a failure after `ms`. */
async function next(it: AsyncIterator<KeyValue>, ms = 10_000): Promise<KeyValue> {
  let t: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    it.next(),
    new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`no observation within ${ms} ms`)), ms))),
  ]);
  clearTimeout(t);
  if (r.done) throw new Error("observation ended");
  return r.value;
}

describe("v3lock", () => {
  test("contention on several clients: holders never overlap, the counter is exact", async () => {
    const p = uniquePrefix("lock-contention");
    const name = p + "lock";
    const counter = p + "counter";
    await etcd.put(counter, "0");
    const clients = [0, 1, 2].map(() => client(member.endpoint));
    const sections: Array<{ who: number; enter: bigint; exit: bigint }> = [];
    let inside = 0;
    let maxInside = 0;
    const rounds = 5;
    try {
      const worker = async (c: Etcd, who: number) => {
        const locks = new LockService(c);
        const lease = await grant(c); // one lease per holder: the lock key is name/<lease>
        for (let i = 0; i < rounds; i++) {
          const { key } = await locks.lock(name, lease, { timeoutMs: 60_000 });
          inside++;
          maxInside = Math.max(maxInside, inside);
          const n = Number((await c.get(counter)).text);
          const enter = (await c.put(p + "log", `${who} enters`)).revision;
          await delay(2);
          const exit = (await c.put(counter, String(n + 1))).revision;
          sections.push({ who, enter, exit });
          inside--;
          await locks.unlock(key);
        }
        await c.raw.lease.leaseRevoke({ ID: lease });
      };
      await Promise.all(clients.flatMap((c, ci) => [0, 1].map((w) => worker(c, ci * 2 + w))));
      assert.equal(maxInside, 1);
      assert.equal((await etcd.get(counter)).text, String(clients.length * 2 * rounds));
      // Recorded by revision: each section's writes come strictly after the previous section's.
      sections.sort((a, b) => (a.enter < b.enter ? -1 : 1));
      for (let i = 1; i < sections.length; i++) assert.ok(sections[i]!.enter > sections[i - 1]!.exit, `sections ${i - 1} and ${i} overlap`);
      // Nothing left behind: every lock key was deleted.
      assert.equal((await etcd.get(name + "/", { prefix: true })).kvs.length, 0);
    } finally {
      for (const c of clients) c.close();
    }
  });

  test("the lock key is name/<lease hex>, on the lease; unlock lets the next waiter in", async () => {
    const locks = new LockService(etcd);
    const name = uniquePrefix("lock-handoff") + "l";
    const [a, b] = [await grant(), await grant()];
    const held = await locks.lock(name, a);
    assert.equal(text(held.key), `${name}/${a.toString(16)}`);
    assert.equal((await etcd.get(held.key)).first?.lease, a);
    const waiting = locks.lock(name, b, { timeoutMs: 20_000 });
    assert.equal(await settlesWithin(waiting, 300), false);
    await locks.unlock(held.key);
    const second = await waiting;
    assert.equal(text(second.key), `${name}/${b.toString(16)}`);
    await locks.unlock(second.key);
    await locks.unlock(second.key); // a key already gone is no error
  });

  test("the end of the holder's lease releases the lock", async () => {
    const locks = new LockService(etcd);
    const name = uniquePrefix("lock-lease") + "l";
    const [a, b] = [await grant(), await grant()];
    await locks.lock(name, a);
    const waiting = locks.lock(name, b, { timeoutMs: 20_000 });
    assert.equal(await settlesWithin(waiting, 300), false);
    await etcd.raw.lease.leaseRevoke({ ID: a });
    const got = await waiting;
    assert.equal(text(got.key), `${name}/${b.toString(16)}`);
    await locks.unlock(got.key);
  });

  test("a waiter that gives up (abort or deadline) fails typed; an aborted waiter's key is withdrawn", async () => {
    const locks = new LockService(etcd);
    const name = uniquePrefix("lock-withdraw") + "l";
    const [a, b, c] = [await grant(), await grant(), await grant()];
    const held = await locks.lock(name, a);
    const waiterKeys = async () => (await etcd.get(name + "/", { prefix: true })).kvs.map((kv) => kv.keyText);
    const until = async (cond: (keys: string[]) => boolean) => {
      let keys: string[] = [];
      for (let i = 0; i < 250; i++) {
        keys = await waiterKeys();
        if (cond(keys)) return keys;
        await delay(20);
      }
      return keys;
    };
    const ac = new AbortController();
    const waiting = locks.lock(name, b, { signal: ac.signal, timeoutMs: 20_000 });
    const bKey = `${name}/${b.toString(16)}`;
    // Abort once the server is waiting with the waiter's key in place (an abort racing the key's creation could leave it).
    assert.deepEqual(await until((k) => k.includes(bKey)), [text(held.key), bKey]);
    ac.abort();
    await assert.rejects(waiting, AbortedError);
    // The server gives up waiting and deletes the waiter's key.
    assert.deepEqual(await until((k) => !k.includes(bKey)), [text(held.key)]);
    // Lock is a write: once sent, a deadline leaves its outcome unknown (the waiter's key may exist).
    await assert.rejects(locks.lock(name, c, { timeoutMs: 300 }), (e) => e instanceof OutcomeUnknownError && e.cause instanceof DeadlineExceededError);
    await locks.unlock(held.key);
  });

  test("bad input and server errors are typed", async () => {
    const locks = new LockService(etcd);
    await assert.rejects(locks.lock("x", 0n), InvalidOptionError);
    await assert.rejects(locks.lock("", await grant()), InvalidKeyError);
    await assert.rejects(locks.unlock(""), InvalidKeyError);
    await assert.rejects(locks.lock(uniquePrefix("lock-nolease") + "l", 0x7fff_0000_1234n, { timeoutMs: 10_000 }), LeaseNotFoundError);
  });

  test("one lease is one holder: a second lock() with the same lease holds at once (document, do not share leases)", async () => {
    const locks = new LockService(etcd);
    const name = uniquePrefix("lock-same-lease") + "l";
    const a = await grant();
    const first = await locks.lock(name, a);
    const second = await locks.lock(name, a, { timeoutMs: 2000 });
    assert.deepEqual(second.key, first.key);
    await locks.unlock(first.key);
  });

  test("in a namespace: the lock lives under the prefix, its key comes back without it", async () => {
    const base = uniquePrefix("lock-ns");
    const ns = etcd.namespace(base);
    const locks = new LockService(ns);
    const lease = await grant();
    const { key } = await locks.lock("jobs", lease);
    assert.equal(text(key), `jobs/${lease.toString(16)}`);
    assert.equal((await etcd.get(base + text(key))).kvs.length, 1);
    assert.equal((await ns.get(key)).kvs.length, 1);
    await locks.unlock(key);
    assert.equal((await etcd.get(base + text(key))).kvs.length, 0);
  });
});

describe("v3election", () => {
  test("campaign, leader, observe, proclaim, resign, and the next candidate takes over", async () => {
    const elections = new ElectionService(etcd);
    const name = uniquePrefix("election") + "e";
    const [a, b] = [await grant(), await grant()];
    assert.equal(await elections.leader(name), undefined);

    const ac = new AbortController();
    const observed = elections.observe(name, { signal: ac.signal });
    const it = observed[Symbol.asyncIterator]();
    const firstSeen = next(it);

    const won = await elections.campaign(name, a, "node-a");
    assert.equal(text(won.leader.name), name);
    assert.equal(text(won.leader.key), `${name}/${a.toString(16)}`);
    assert.equal(won.leader.lease, a);
    assert.equal((await etcd.get(won.leader.key)).first?.createRevision, won.leader.rev);
    assert.equal((await firstSeen).text, "node-a");
    assert.equal((await elections.leader(name))?.text, "node-a");

    const bCampaign = elections.campaign(name, b, "node-b", { timeoutMs: 20_000 });
    assert.equal(await settlesWithin(bCampaign, 300), false);

    await elections.proclaim(won.leader, "node-a v2");
    assert.equal((await next(it)).text, "node-a v2");
    assert.equal((await elections.leader(name))?.text, "node-a v2");

    await elections.resign(won.leader);
    const bWon = await bCampaign;
    assert.equal(text(bWon.leader.key), `${name}/${b.toString(16)}`);
    const seen = await next(it);
    assert.equal(seen.text, "node-b");
    assert.equal(seen.keyText, `${name}/${b.toString(16)}`);
    assert.equal((await elections.leader(name))?.text, "node-b");

    // The old leader key no longer leads.
    await assert.rejects(elections.proclaim(won.leader, "stale"), ElectionNotLeaderError);
    await elections.resign(won.leader); // resigning a lost leadership is no error
    assert.equal((await elections.leader(name))?.text, "node-b");

    // Ending the observation: the loop ends without an error.
    ac.abort();
    assert.deepEqual(await it.next(), { done: true, value: undefined });
    await elections.resign(bWon.leader);
    assert.equal(await elections.leader(name), undefined);
  });

  test("the end of the leader's lease elects the next candidate", async () => {
    const elections = new ElectionService(etcd);
    const name = uniquePrefix("election-lease") + "e";
    const [a, b] = [await grant(), await grant()];
    await elections.campaign(name, a, "a");
    const bCampaign = elections.campaign(name, b, "b", { timeoutMs: 20_000 });
    assert.equal(await settlesWithin(bCampaign, 300), false);
    await etcd.raw.lease.leaseRevoke({ ID: a });
    const bWon = await bCampaign;
    assert.equal((await elections.leader(name))?.text, "b");
    await elections.resign(bWon.leader);
  });

  test("observe ends without an error when the client closes, and when the loop is left", async () => {
    const c = client(member.endpoint);
    const elections = new ElectionService(c);
    const name = uniquePrefix("election-close") + "e";
    await elections.campaign(name, await grant(), "v");
    const seen: string[] = [];
    const loop = (async () => {
      for await (const kv of elections.observe(name)) {
        seen.push(kv.text);
        c.close();
      }
    })();
    await loop;
    assert.deepEqual(seen, ["v"]);

    // Breaking out of the loop cancels the stream; a later observe on the same client still works.
    const d = new ElectionService(etcd);
    for await (const kv of d.observe(name)) {
      assert.equal(kv.text, "v");
      break;
    }
    for await (const kv of d.observe(name)) {
      assert.equal(kv.text, "v");
      break;
    }
    // The built-in transport counts open streams: leaving the loop closed them.
    if (etcd.info()[0]!.openStreams !== undefined) {
      for (let i = 0; i < 50 && etcd.info()[0]!.openStreams !== 0; i++) await delay(20);
      assert.equal(etcd.info()[0]!.openStreams, 0);
    }
    // An already aborted signal: no stream at all.
    const none: KeyValue[] = [];
    for await (const kv of d.observe(name, { signal: AbortSignal.abort() })) none.push(kv);
    assert.deepEqual(none, []);
  });

  test("bad input and server errors are typed", async () => {
    const elections = new ElectionService(etcd);
    const name = uniquePrefix("election-bad") + "e";
    await assert.rejects(elections.campaign(name, 0n, "v"), InvalidOptionError);
    await assert.rejects(elections.campaign("", await grant(), "v"), InvalidKeyError);
    await assert.rejects(elections.campaign(name, 0x7fff_0000_4321n, "v", { timeoutMs: 10_000 }), LeaseNotFoundError);
    const fake = { name: Buffer.from(name), key: Buffer.from(`${name}/1`), rev: 1n, lease: await grant() };
    await assert.rejects(elections.proclaim(fake, "v"), ElectionNotLeaderError);
  });

  test("in a namespace: names and keys are un-prefixed in results, prefixed in the store", async () => {
    const base = uniquePrefix("election-ns");
    const ns = etcd.namespace(base);
    const elections = new ElectionService(ns);
    const lease = await grant();
    const ac = new AbortController();
    const it = elections.observe("svc", { signal: ac.signal })[Symbol.asyncIterator]();
    const seenFirst = next(it);
    const { leader } = await elections.campaign("svc", lease, "one");
    assert.equal(text(leader.name), "svc");
    assert.equal(text(leader.key), `svc/${lease.toString(16)}`);
    assert.equal((await etcd.get(base + text(leader.key))).text, "one");
    assert.equal((await seenFirst).keyText, text(leader.key));
    assert.equal((await elections.leader("svc"))?.keyText, text(leader.key));
    await elections.proclaim(leader, "two");
    assert.equal((await next(it)).text, "two");
    // The root keyspace has no election "svc".
    assert.equal(await new ElectionService(etcd).leader("svc"), undefined);
    await elections.resign(leader);
    assert.equal(await elections.leader("svc"), undefined);
    ac.abort();
  });
});
