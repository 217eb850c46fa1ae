// The client-side mutex against real etcd: mutual exclusion across clients
// (one member, and a 3-member cluster with clients on different members),
// the key layout shared with v3lock, FIFO hand-over, tryLock, fencing of a
// holder whose session lapsed, a waiter whose session is lost, aborts and
// deadlines, withLock.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Interceptor } from "@connectrpc/connect";
import { startProxy, type EtcdCluster, type EtcdMember } from "./harness/index.js";
import { client, uniquePrefix, useCluster, useMember } from "./support.js";
import { delay, settlesWithin } from "./waiting.js";
import {
  AbortedError,
  DeadlineExceededError,
  Etcd,
  LeaseLostError,
  LockedError,
  LockService,
  Op,
  SessionClosedError,
  type Session,
} from "../src/index.js";

let member: EtcdMember;
let etcd: Etcd;

useMember((m, newClient) => {
  member = m;
  etcd = newClient();
});

/**
 * N workers on several clients increment one counter under one lock; each
 * records its critical section by the revisions of its writes. The counter
 * must be exact and the sections, ordered by revision, must not overlap.
 */
async function contention(clients: Etcd[], workersPerClient: number, rounds: number): Promise<void> {
  const p = uniquePrefix("mutex-contention");
  const counter = p + "counter";
  await clients[0]!.put(counter, "0");
  const sections: Array<{ enter: bigint; exit: bigint }> = [];
  let inside = 0;
  let maxInside = 0;
  const worker = async (c: Etcd) => {
    const session = await c.session({ ttl: 10 });
    const mutex = session.mutex(p + "lock");
    for (let i = 0; i < rounds; i++) {
      await mutex.lock({ timeoutMs: 30_000 });
      inside++;
      maxInside = Math.max(maxInside, inside);
      const n = Number((await c.get(counter)).text);
      const enter = (await c.put(p + "log", "enter")).revision;
      await delay(1);
      // Fenced: the increment lands only while the lock is held.
      const r = await c.txn().if(mutex.isOwner()).then(Op.put(counter, String(n + 1))).commit();
      assert.ok(r.succeeded, "a holder's fenced write was refused");
      sections.push({ enter, exit: r.revision });
      inside--;
      await mutex.unlock();
    }
    await session.close();
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: workersPerClient }, () => worker(c))));
  assert.equal(maxInside, 1);
  assert.equal((await clients[0]!.get(counter)).text, String(clients.length * workersPerClient * rounds));
  sections.sort((a, b) => (a.enter < b.enter ? -1 : 1));
  for (let i = 1; i < sections.length; i++) assert.ok(sections[i]!.enter > sections[i - 1]!.exit, `sections ${i - 1} and ${i} overlap`);
  assert.equal((await clients[0]!.get(p + "lock/", { prefix: true })).kvs.length, 0, "a lock key was left behind");
}

describe("mutual exclusion", () => {
  test("6 workers on 3 clients: the counter is exact, sections never overlap", async () => {
    const clients = [0, 1, 2].map(() => client(member.endpoint));
    try {
      await contention(clients, 2, 5);
    } finally {
      for (const c of clients) c.close();
    }
  });

  describe("on a 3-member cluster, one client per member", () => {
    let cluster: EtcdCluster;
    useCluster(3, (c) => {
      cluster = c;
    });
    test("the counter is exact, sections never overlap", async () => {
      const clients = cluster.members.map((m) => client(m.endpoint));
      try {
        await contention(clients, 2, 4);
      } finally {
        for (const c of clients) c.close();
      }
    });
  });
});

describe("the lock's keys and hand-over", () => {
  test("the key is name/<lease hex> on the session's lease; v3lock waits for it", async () => {
    const name = uniquePrefix("mutex-key") + "l";
    const session = await etcd.session({ ttl: 10 });
    const mutex = session.mutex(name);
    await mutex.lock();
    assert.equal(Buffer.from(mutex.key).toString(), `${name}/${session.id.toString(16)}`);
    const kv = (await etcd.get(mutex.key)).first!;
    assert.equal(kv.lease, session.id);
    assert.equal(mutex.fencingToken, kv.createRevision);
    assert.ok(mutex.header !== undefined && mutex.header.revision >= kv.createRevision);
    // The server-side lock uses the same keys: it waits for this holder.
    const lease = (await etcd.lease.grant(10)).id;
    const served = new LockService(etcd).lock(name, lease, { timeoutMs: 10_000 });
    assert.equal(await settlesWithin(served, 300), false);
    await mutex.unlock();
    await served;
    await etcd.lease.revoke(lease);
    await session.close();
  });

  test("waiters get the lock in the order they queued, one at a time", async () => {
    const name = uniquePrefix("mutex-fifo") + "l";
    const sessions = await Promise.all([0, 1, 2].map(() => etcd.session({ ttl: 10 })));
    const [a, b, c] = sessions.map((s) => s.mutex(name)) as [ReturnType<Session["mutex"]>, ReturnType<Session["mutex"]>, ReturnType<Session["mutex"]>];
    await a.lock();
    const order: string[] = [];
    const bLocked = b.lock().then(() => order.push("b"));
    await delay(100);
    const cLocked = c.lock().then(() => order.push("c"));
    assert.equal(await settlesWithin(bLocked, 200), false);
    await a.unlock();
    await bLocked;
    assert.equal(await settlesWithin(cLocked, 300), false, "c got the lock while b held it");
    await b.unlock();
    await cLocked;
    assert.deepEqual(order, ["b", "c"]);
    await c.unlock();
    for (const s of sessions) await s.close();
  });

  test("lock() again by the holding session returns at once; isOwner() never holds before lock()", async () => {
    const name = uniquePrefix("mutex-again") + "l";
    const session = await etcd.session({ ttl: 10 });
    const m = session.mutex(name);
    const guard = await etcd.txn().if(m.isOwner()).commit();
    assert.equal(guard.succeeded, false);
    await m.lock();
    const again = session.mutex(name);
    await again.lock({ timeoutMs: 2000 });
    assert.equal(again.fencingToken, m.fencingToken);
    await session.close();
  });

  test("tryLock: LockedError while held (its place withdrawn), success when free", async () => {
    const name = uniquePrefix("mutex-try") + "l";
    const [s1, s2] = [await etcd.session({ ttl: 10 }), await etcd.session({ ttl: 10 })];
    const m1 = s1.mutex(name);
    const m2 = s2.mutex(name);
    await m1.tryLock();
    await assert.rejects(m2.tryLock(), (e: unknown) => e instanceof LockedError && Buffer.from(e.holderKey).equals(m1.key));
    assert.equal((await etcd.get(m2.key)).first, undefined, "the failed tryLock left its key");
    await m1.unlock();
    await m2.tryLock();
    assert.ok((await etcd.txn().if(m2.isOwner()).commit()).succeeded);
    await s1.close();
    await s2.close();
  });
});

describe("fencing and loss", () => {
  test("a holder whose session lapsed is refused by isOwner; the next holder proceeds", async () => {
    const p = uniquePrefix("mutex-fence");
    const name = p + "l";
    const holder = await etcd.session({ ttl: 2 });
    const next = await etcd.session({ ttl: 10 });
    const old = holder.mutex(name);
    await old.lock();
    const waiting = next.mutex(name);
    const acquired = waiting.lock({ timeoutMs: 15_000 });
    // The holder's keep-alive stops (a paused or partitioned process): its lease runs out on the server.
    holder.orphan();
    await acquired;
    const stale = await etcd.txn().if(old.isOwner()).then(Op.put(p + "data", "from the old holder")).commit();
    assert.equal(stale.succeeded, false, "the lapsed holder's write went through");
    const fresh = await etcd.txn().if(waiting.isOwner()).then(Op.put(p + "data", "from the new holder")).commit();
    assert.equal(fresh.succeeded, true);
    assert.ok(waiting.fencingToken > old.fencingToken);
    assert.equal((await etcd.get(p + "data")).text, "from the new holder");
    await next.close();
  });

  test("the holder is told when its session is lost (revoked elsewhere)", async () => {
    const name = uniquePrefix("mutex-told") + "l";
    const session = await etcd.session({ ttl: 10 });
    const m = session.mutex(name);
    await m.lock();
    await etcd.lease.revoke(session.id).catch(() => undefined);
    // The revocation went through this client's lease API: the session hears of it at once.
    const err = await session.lost;
    assert.ok(err instanceof LeaseLostError);
    assert.ok(m.signal.aborted);
    assert.equal(session.state, "lost");
    assert.equal((await etcd.txn().if(m.isOwner()).commit()).succeeded, false);
  });

  test("a waiter whose session is lost rejects with LeaseLostError", async () => {
    const name = uniquePrefix("mutex-lost-waiter") + "l";
    const holder = await etcd.session({ ttl: 10 });
    await holder.mutex(name).lock();
    // The waiter on its own client; its lease is revoked by another: its keep-alive finds it gone.
    const other = client(member.endpoint);
    try {
      const session = await other.session({ ttl: 3 });
      const waiting = session.mutex(name).lock({ timeoutMs: 20_000 });
      assert.equal(await settlesWithin(waiting, 200), false);
      await etcd.raw.lease.leaseRevoke({ ID: session.id });
      await assert.rejects(waiting, (e: unknown) => e instanceof LeaseLostError);
      assert.equal((await etcd.get(name + "/", { prefix: true })).kvs.length, 1, "only the holder's key is left");
    } finally {
      other.close();
      await holder.close();
    }
  });

  test("abort and deadline while waiting: typed errors, place withdrawn; a closed session refuses", async () => {
    const name = uniquePrefix("mutex-abort") + "l";
    const holder = await etcd.session({ ttl: 10 });
    await holder.mutex(name).lock();
    const s = await etcd.session({ ttl: 10 });
    const ac = new AbortController();
    const waiting = s.mutex(name).lock({ signal: ac.signal });
    await delay(100);
    ac.abort();
    await assert.rejects(waiting, AbortedError);
    await assert.rejects(s.mutex(name).lock({ timeoutMs: 200 }), DeadlineExceededError);
    assert.equal((await etcd.get(name + "/", { prefix: true })).kvs.length, 1, "a waiter's key was left");
    const closing = assert.rejects(s.mutex(name).lock(), SessionClosedError);
    await delay(100);
    await s.close();
    await closing;
    await assert.rejects(s.mutex(name).lock(), SessionClosedError);
    await holder.close();
  });

  test("withLock releases the lock when fn throws, and returns fn's value", async () => {
    const name = uniquePrefix("mutex-with") + "l";
    await assert.rejects(
      etcd.withLock(name, () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal((await etcd.get(name + "/", { prefix: true })).kvs.length, 0);
    const session = await etcd.session({ ttl: 10 });
    const v = await session.withLock(name, async (m) => (await etcd.txn().if(m.isOwner()).commit()).succeeded);
    assert.equal(v, true);
    assert.equal((await etcd.get(name + "/", { prefix: true })).kvs.length, 0);
    await session.close();
  });
});

describe("the v3lock service with a session", () => {
  test("fenced like the mutex; a waiter whose session is lost rejects with LeaseLostError", async () => {
    const p = uniquePrefix("v3lock-session");
    const locks = new LockService(etcd);
    const holder = await etcd.session({ ttl: 10 });
    const held = await locks.lock(p + "l", holder);
    assert.equal((await etcd.get(held.key)).first?.createRevision, held.createRevision);
    assert.ok((await etcd.txn().if(held.isOwner()).then(Op.put(p + "x", "1")).commit()).succeeded);
    const other = client(member.endpoint);
    try {
      const s = await other.session({ ttl: 3 });
      const waiting = new LockService(other).lock(p + "l", s, { timeoutMs: 20_000 });
      assert.equal(await settlesWithin(waiting, 200), false);
      await etcd.raw.lease.leaseRevoke({ ID: s.id });
      await assert.rejects(waiting, (e: unknown) => e instanceof LeaseLostError);
    } finally {
      other.close();
    }
    await holder.close();
    assert.equal((await etcd.txn().if(held.isOwner()).commit()).succeeded, false, "a released lock still passed isOwner");
  });
});

describe("a lost answer", () => {
  test("lock() whose join was sent but never answered joins again, safely: one key, held, fenced", async () => {
    const name = uniquePrefix("mutex-lost-answer") + "l";
    const proxy = await startProxy("127.0.0.1", member.clientPort);
    let cutNext = false;
    let txns = 0;
    const cutAfterSend: Interceptor = (next) => async (req) => {
      if (req.method.name === "Txn") txns++;
      if (cutNext && req.method.name === "Txn") {
        cutNext = false;
        // The member is stopped: the join is sent and not answered; then the connection breaks and the member comes back.
        setTimeout(() => {
          proxy.cutAll();
          member.resume();
        }, 500);
      }
      return next(req);
    };
    const c = client(proxy.endpoint, { interceptors: [cutAfterSend] });
    try {
      const session = await c.session({ ttl: 10 });
      const m = session.mutex(name);
      await member.pause();
      cutNext = true;
      await m.lock({ timeoutMs: 15_000 });
      assert.ok(txns >= 2, `the join was not sent again (${txns} Txn calls)`);
      const keys = (await etcd.get(name + "/", { prefix: true })).kvs;
      assert.equal(keys.length, 1);
      assert.equal(keys[0]!.createRevision, m.fencingToken);
      assert.ok((await etcd.txn().if(m.isOwner()).commit()).succeeded);
      await session.close();
    } finally {
      member.resume();
      c.close();
      await proxy.close();
    }
  });
});
