// Leases against a real etcd member: the API, keep-alive over one stream,
// loss with its reason, stop, close, and typed errors for bad input.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { startEtcd, type EtcdMember } from "./harness/index.js";
import { client, transportUnderTest, uniquePrefix, useMember } from "./support.js";
import { Etcd, InvalidOptionError, LeaseExistsError, LeaseNotFoundError, LeaseTtlTooLargeError, type KeptLease } from "../src/index.js";

let member: EtcdMember;
let etcd: Etcd;
/** A second client, standing for "someone else". */
let other: Etcd;

useMember((m, newClient) => {
  member = m;
  etcd = newClient();
  other = newClient();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("lease API", () => {
  test("grant, timeToLive with the keys attached, leases, keepAliveOnce, revoke", async () => {
    const p = uniquePrefix("api");
    const { id, ttl } = await etcd.lease.grant(30);
    assert.equal(ttl, 30);
    assert.ok(id > 0n && id < 1n << 63n, "a positive 63-bit ID the client chose");
    await etcd.put(p + "a", "1", { lease: id });
    await etcd.put(p + "b", "2", { lease: id });
    const t = await etcd.lease.timeToLive(id, { keys: true });
    assert.equal(t.id, id);
    assert.equal(t.grantedTtl, 30);
    assert.ok(t.ttl > 25 && t.ttl <= 30, `ttl ${t.ttl}`);
    assert.deepEqual(t.keys.map(text).sort(), [p + "a", p + "b"]);
    assert.deepEqual((await etcd.lease.timeToLive(id)).keys, [], "keys only when asked");
    assert.ok((await etcd.lease.leases()).includes(id));
    const once = await etcd.lease.keepAliveOnce(id);
    assert.deepEqual(once, { id, ttl: 30 });
    await etcd.lease.revoke(id);
    assert.equal((await etcd.get(p, { prefix: true })).kvs.length, 0, "revoking deletes the lease's keys");
    await assert.rejects(etcd.lease.timeToLive(id), LeaseNotFoundError);
    assert.ok(!(await etcd.lease.leases()).includes(id));
  });

  test("a grant with an ID of our own; the same ID again is LeaseExistsError", async () => {
    const id = 0x1234_5678_9abc_def0n + BigInt(process.pid);
    const g = await etcd.lease.grant(10, { id });
    assert.equal(g.id, id);
    await assert.rejects(etcd.lease.grant(10, { id }), LeaseExistsError);
    await etcd.lease.revoke(id);
  });

  test("bad input is refused with a typed error before anything is sent, or by the server with its typed error", async () => {
    for (const ttl of [-1, 0, 1.5, NaN, Infinity, "5" as unknown as number]) {
      await assert.rejects(etcd.lease.grant(ttl), InvalidOptionError, `ttl ${String(ttl)}`);
      await assert.rejects(etcd.lease.create(ttl), InvalidOptionError, `ttl ${String(ttl)}`);
    }
    await assert.rejects(etcd.lease.grant(1e12), LeaseTtlTooLargeError, "above the server's 9e9 s");
    for (const id of [0n, -1n, 1n << 63n, 5 as unknown as bigint, "5" as unknown as bigint]) {
      await assert.rejects(etcd.lease.grant(5, { id }), InvalidOptionError, `id ${String(id)}`);
      await assert.rejects(etcd.lease.revoke(id), InvalidOptionError, `id ${String(id)}`);
      await assert.rejects(etcd.lease.timeToLive(id), InvalidOptionError, `id ${String(id)}`);
      await assert.rejects(etcd.lease.keepAliveOnce(id), InvalidOptionError, `id ${String(id)}`);
      await assert.rejects(etcd.lease.keepAlive(id), InvalidOptionError, `id ${String(id)}`);
    }
    const unknown = (1n << 62n) + 12345n;
    await assert.rejects(etcd.lease.revoke(unknown), LeaseNotFoundError);
    await assert.rejects(etcd.lease.timeToLive(unknown), LeaseNotFoundError);
    await assert.rejects(etcd.lease.keepAliveOnce(unknown), LeaseNotFoundError);
    await assert.rejects(etcd.lease.keepAlive(unknown), LeaseNotFoundError);
  });
});

describe("keep-alive", () => {
  test("a kept lease outlives its TTL many times over, refreshed at a third of it", async () => {
    const lease = await etcd.lease.create(2);
    const refreshes: number[] = [];
    lease.on("keepalive", (ttl) => {
      assert.equal(ttl, 2);
      refreshes.push(Date.now());
    });
    await sleep(6000);
    assert.equal(lease.state, "alive");
    // One refresh per 667 ms (up to 100 ms early, plus the round trip); a busy machine may delay a few.
    assert.ok(refreshes.length >= 6 && refreshes.length <= 11, `${refreshes.length} refreshes in 6 s`);
    const gaps = refreshes
      .slice(1)
      .map((t, i) => t - refreshes[i]!)
      .sort((a, b) => a - b);
    const median = gaps[gaps.length >> 1]!;
    assert.ok(median >= 550 && median <= 800, `median gap ${median} ms (TTL/3 = 667 ms)`);
    assert.ok(gaps[gaps.length - 1]! < 1500, `longest gap ${gaps[gaps.length - 1]} ms`);
    const left = (await etcd.lease.timeToLive(lease.id)).ttl;
    assert.ok(left >= 1, `server says ${left} s left`);
    assert.ok(lease.remainingMs > 500 && lease.remainingMs <= 2000, `client expects ${lease.remainingMs} ms left`);
    assert.ok(Math.abs(lease.expiresAt.getTime() - Date.now() - lease.remainingMs) < 50);
    await lease.revoke();
  });

  test("many leases share one stream", async () => {
    const c = client(member.endpoint);
    try {
      const leases = await Promise.all(Array.from({ length: 200 }, () => c.lease.create(3)));
      await sleep(1500);
      assert.equal(c.lease.keptCount, 200);
      assert.equal(c.lease.keepAliveEndpoint, member.endpoint);
      if (transportUnderTest === "http2") {
        // Nothing else is in flight: the one open stream is the keep-alive stream.
        assert.equal(c.info()[0]!.openStreams, 1);
      }
      assert.ok(leases.every((l) => l.state === "alive"));
      const ids = new Set(await c.lease.leases());
      assert.ok(leases.every((l) => ids.has(l.id)));
    } finally {
      c.close();
    }
  });

  test("keepAlive() takes over an existing lease; a second call gives the same handle", async () => {
    const { id } = await other.lease.grant(2);
    const lease = await etcd.lease.keepAlive(id);
    assert.equal(lease.id, id);
    assert.equal(lease.ttl, 2);
    assert.equal(await etcd.lease.keepAlive(id), lease);
    await sleep(4000);
    assert.equal(lease.state, "alive");
    assert.ok((await other.lease.timeToLive(id)).ttl >= 1);
    await lease.revoke();
  });

  test("keepAlive() of a lease that expired fails with LeaseNotFoundError", async () => {
    const { id } = await other.lease.grant(2);
    await waitFor("the lease to expire", () => other.lease.timeToLive(id).then(() => false, () => true), 6000);
    await assert.rejects(etcd.lease.keepAlive(id), LeaseNotFoundError);
    await assert.rejects(etcd.lease.keepAliveOnce(id), LeaseNotFoundError);
  });
});

describe("loss is reported with its reason", () => {
  test("revoked through this client: lost with reason revoked, awaitable, as an event and as the state", async () => {
    const p = uniquePrefix("revoked");
    const lease = await etcd.lease.create(5);
    await etcd.put(p + "k", "v", { lease: lease.id });
    let event: unknown;
    lease.on("lost", (e) => (event = e));
    await lease.revoke();
    assert.equal(lease.state, "lost");
    const err = await lease.lost;
    assert.equal(err.reason, "revoked");
    assert.equal(err.leaseId, lease.id);
    assert.equal(event, err);
    assert.equal(lease.lostError, err);
    assert.equal((await etcd.get(p + "k")).kvs.length, 0);
  });

  test("revoked through etcd.lease.revoke(id) while kept: lost with reason revoked", async () => {
    const lease = await etcd.lease.create(5);
    await etcd.lease.revoke(lease.id);
    assert.equal((await lease.lost).reason, "revoked");
  });

  test("revoked by someone else: lost with reason not-found at its next refresh", async () => {
    const lease = await etcd.lease.create(3);
    await sleep(200);
    const revokedAt = Date.now();
    await other.lease.revoke(lease.id);
    const err = await lease.lost;
    const after = Date.now() - revokedAt;
    assert.equal(err.reason, "not-found");
    assert.ok(after <= 2500, `reported ${after} ms after the revoke (a refresh every 1 s, TTL 3 s)`);
  });

  test("stop() lets the lease lapse on the server; nothing is reported lost", async () => {
    const lease = await etcd.lease.create(2);
    let events = 0;
    let settled = false;
    void lease.lost.then(() => (settled = true));
    await sleep(800);
    lease.on("keepalive", () => events++);
    lease.stop();
    assert.equal(lease.state, "stopped");
    await waitFor("the lease to lapse", () => etcd.lease.timeToLive(lease.id).then(() => false, (e) => e instanceof LeaseNotFoundError), 5000);
    assert.equal(events, 0, "no refresh after stop()");
    assert.equal(lease.state, "stopped");
    assert.equal(settled, false);
  });
});

describe("close()", () => {
  test("with 100 kept leases, close() leaves no timer, stream or socket: the process exits by itself", async () => {
    const script = `
      import { Etcd } from ${JSON.stringify(new URL("../src/index.js", import.meta.url).href)};
      const etcd = new Etcd({ endpoints: ${JSON.stringify(member.endpoint)}, transport: ${JSON.stringify(transportUnderTest)} });
      const leases = await Promise.all(Array.from({ length: 100 }, () => etcd.lease.create(3)));
      let refreshed = 0;
      for (const l of leases) l.once("keepalive", () => refreshed++);
      const until = Date.now() + 5000;
      while (refreshed < 100 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      // A one-off refresh in flight at close() fails with ClientClosedError.
      const pending = etcd.lease.keepAliveOnce(leases[0].id).then(() => "resolved", (e) => e.name);
      etcd.close();
      const inFlight = await pending;
      console.log(JSON.stringify({ refreshed, inFlight, states: [...new Set(leases.map((l) => l.state))], kept: etcd.lease.keptCount, at: Date.now() }));
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"], cwd: fileURLToPath(new URL(".", import.meta.url)) });
    let out = "";
    let errOut = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (errOut += d.toString()));
    const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    const exitedAt = Date.now();
    clearTimeout(killer);
    assert.equal(code, 0, `child failed: ${errOut}`);
    const report = JSON.parse(out.trim()) as { refreshed: number; inFlight: string; states: string[]; kept: number; at: number };
    assert.equal(report.refreshed, 100, "every lease was refreshed before close()");
    assert.equal(report.inFlight, "ClientClosedError");
    assert.deepEqual(report.states, ["stopped"]);
    assert.equal(report.kept, 0);
    assert.ok(exitedAt - report.at < 2000, `exited ${exitedAt - report.at} ms after close()`);
  });

  test("after close(), lease calls fail with ClientClosedError", async () => {
    const c = client(member.endpoint);
    const lease: KeptLease = await c.lease.create(5);
    c.close();
    assert.equal(lease.state, "stopped");
    await assert.rejects(c.lease.grant(5), { name: "ClientClosedError" });
    await assert.rejects(c.lease.keepAliveOnce(lease.id), { name: "ClientClosedError" });
    await assert.rejects(c.lease.keepAlive(lease.id), { name: "ClientClosedError" });
    await etcd.lease.revoke(lease.id);
  });
});

describe("with auth", () => {
  let secured: EtcdMember;
  before(async () => {
    secured = await startEtcd({ authTokenTtl: 1 });
    const admin = client(secured.endpoint);
    try {
      await admin.raw.auth.userAdd({ name: "root", password: "pw-root" });
      await admin.raw.auth.userGrantRole({ user: "root", role: "root" });
      await admin.raw.auth.authEnable({});
    } finally {
      admin.close();
    }
  });
  after(async () => {
    await secured?.stop();
  });

  test("with auth on, kept leases outlive the 1 s token many times, across stream reopens", async () => {
    const c = client(secured.endpoint, { auth: { username: "root", password: "pw-root" } });
    try {
      const lease = await c.lease.create(2);
      await sleep(2500);
      // Tokens have expired by now: a new stream must authenticate again.
      const before = c.lease.keepAliveEndpoint;
      const again = await c.lease.create(2);
      await sleep(2500);
      assert.equal(lease.state, "alive");
      assert.equal(again.state, "alive");
      assert.equal(before, secured.endpoint);
      assert.ok((await c.lease.timeToLive(lease.id)).ttl >= 1);
      lease.stop();
      again.stop();
      // The last lease stopped: the stream closes. The next one opens a new stream, the old token long expired.
      await waitFor("the stream to close", () => c.lease.keepAliveEndpoint === undefined, 2000);
      await sleep(1500);
      const third = await c.lease.create(2);
      await new Promise<void>((r) => third.once("keepalive", () => r()));
      await third.revoke();
    } finally {
      c.close();
    }
  });
});
