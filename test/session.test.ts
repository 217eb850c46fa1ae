// Sessions against real etcd: the lease behind them (default and chosen
// TTL, kept alive past its TTL), close() revokes, orphan() lets it lapse,
// loss is reported with its reason, a session resumes an existing lease,
// and the client's close ends its sessions.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { EtcdMember } from "./harness/index.js";
import { client, uniquePrefix, useMember } from "./support.js";
import { delay } from "./waiting.js";
import { DEFAULT_SESSION_TTL, Etcd, LeaseLostError, LeaseNotFoundError, SessionClosedError } from "../src/index.js";

let member: EtcdMember;
let etcd: Etcd;

useMember((m, newClient) => {
  member = m;
  etcd = newClient();
});

async function pending(p: Promise<unknown>, ms = 50): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const r = await Promise.race([p.then(() => false), new Promise<boolean>((res) => (t = setTimeout(() => res(true), ms)))]);
  clearTimeout(t);
  return r;
}

test("the lease: 60 s by default, or the TTL asked for", async () => {
  assert.equal(DEFAULT_SESSION_TTL, 60);
  const s = await etcd.session();
  assert.equal((await etcd.lease.timeToLive(s.id)).grantedTtl, 60);
  assert.equal(s.idHex, s.id.toString(16));
  const t = await etcd.session({ ttl: 5 });
  assert.equal((await etcd.lease.timeToLive(t.id)).grantedTtl, 5);
  await s.close();
  await t.close();
});

test("kept alive past its TTL while open", async () => {
  const s = await etcd.session({ ttl: 2 });
  await delay(3500);
  assert.equal(s.state, "alive");
  assert.ok((await etcd.lease.timeToLive(s.id)).ttl > 0);
  await s.close();
});

test("close() revokes: keys on the lease go at once; signal aborts with SessionClosedError; lost stays pending", async () => {
  const key = uniquePrefix("session-close") + "k";
  const s = await etcd.session({ ttl: 30 });
  await etcd.put(key, "v", { lease: s.id });
  await s.close();
  assert.equal((await etcd.get(key)).first, undefined);
  assert.equal(s.state, "closed");
  assert.ok(s.signal.aborted && s.signal.reason instanceof SessionClosedError);
  assert.ok(await pending(s.lost));
  await assert.rejects(etcd.lease.timeToLive(s.id), LeaseNotFoundError);
  await s.close(); // idempotent
});

test("orphan() stops the keep-alive without revoking: the lease lapses after its TTL", async () => {
  const key = uniquePrefix("session-orphan") + "k";
  const s = await etcd.session({ ttl: 2 });
  await etcd.put(key, "v", { lease: s.id });
  s.orphan();
  assert.equal(s.state, "closed");
  assert.ok(s.signal.aborted);
  assert.equal((await etcd.get(key)).text, "v", "orphan() revoked the lease");
  let gone = false;
  for (let i = 0; i < 60 && !gone; i++) {
    await delay(100);
    gone = (await etcd.get(key)).first === undefined;
  }
  assert.ok(gone, "the orphaned lease did not lapse");
});

test("a lease revoked elsewhere: lost resolves with LeaseLostError (not-found), signal aborts with it", async () => {
  const s = await etcd.session({ ttl: 3 });
  const other = client(member.endpoint);
  try {
    await other.lease.revoke(s.id);
  } finally {
    other.close();
  }
  const err = await s.lost;
  assert.ok(err instanceof LeaseLostError);
  assert.equal(err.reason, "not-found");
  assert.equal(err.leaseId, s.id);
  assert.equal(s.state, "lost");
  assert.equal(s.signal.reason, err);
  await s.close(); // nothing to revoke: no error
});

test("a new session resumes an existing lease and finds its lock again", async () => {
  const name = uniquePrefix("session-resume") + "l";
  const first = await etcd.session({ ttl: 5 });
  const m = first.mutex(name);
  await m.lock();
  first.orphan();
  const resumed = await etcd.session({ lease: first.id });
  assert.equal(resumed.id, first.id);
  const again = resumed.mutex(name);
  await again.lock({ timeoutMs: 2000 });
  assert.equal(again.fencingToken, m.fencingToken);
  await resumed.close();
  assert.equal((await etcd.get(name + "/", { prefix: true })).kvs.length, 0);
});

test("the client's close() ends its sessions", async () => {
  const c = client(member.endpoint);
  const s = await c.session({ ttl: 5 });
  await c.close();
  assert.ok(s.signal.aborted && s.signal.reason instanceof SessionClosedError);
  await assert.rejects(s.mutex("x").lock(), SessionClosedError);
});

test("many sessions on one client: no listener pile-up on the client, all ended by its close()", async () => {
  const c = client(member.endpoint);
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on("warning", onWarning);
  try {
    const sessions = await Promise.all(Array.from({ length: 15 }, () => c.session({ ttl: 5 })));
    await c.close();
    await new Promise((r) => setImmediate(r));
    assert.ok(sessions.every((s) => s.signal.reason instanceof SessionClosedError));
    assert.deepEqual(warnings.map((w) => w.name), []);
  } finally {
    process.off("warning", onWarning);
  }
});
