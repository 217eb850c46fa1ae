// Leases on a real 3-member cluster while members are killed, stopped and
// blackholed: the keep-alive stream moves and leases live on while the
// cluster has quorum; with no member reachable, a lease is reported lost
// when its TTL runs out, not later. Every wait is bounded.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startProxy, type EtcdCluster, type EtcdMember, type TcpProxy } from "./harness/index.js";
import { client, useCluster } from "./support.js";
import { Etcd, EtcdError, type KeptLease, type LeaseLostError } from "../src/index.js";

let cluster: EtcdCluster;

useCluster(3, (c) => {
  cluster = c;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The leader, asked of every member. */
async function leader(): Promise<EtcdMember> {
  const probe = new Etcd({ endpoints: cluster.endpoints });
  try {
    const infos = await probe.status({ timeoutMs: 2000 });
    const l = infos.find((i) => i.isLeader === true);
    assert.ok(l, "a leader is known");
    return cluster.members.find((m) => l.url.endsWith(m.endpoint))!;
  } finally {
    probe.close();
  }
}

/** A client with `first` pinned first, keeping `n` leases of `ttl` seconds alive. */
async function keep(first: EtcdMember, n: number, ttl: number): Promise<{ etcd: Etcd; leases: KeptLease[]; lost: LeaseLostError[] }> {
  const endpoints = [first.endpoint, ...cluster.endpoints.filter((e) => e !== first.endpoint)];
  const etcd = client(endpoints, { dialTimeoutMs: 1000 });
  const leases = await Promise.all(Array.from({ length: n }, () => etcd.lease.create(ttl)));
  const lost: LeaseLostError[] = [];
  for (const l of leases) l.on("lost", (e) => lost.push(e));
  return { etcd, leases, lost };
}

/** Every lease still alive, by the client's account and by the cluster's (asked through the members not `down`). */
async function assertAlive(leases: KeptLease[], lost: LeaseLostError[], down: EtcdMember): Promise<void> {
  assert.deepEqual(
    lost.map((e) => e.message),
    [],
    "no lease lost",
  );
  assert.ok(leases.every((l) => l.state === "alive"));
  const probe = client(cluster.endpoints.filter((e) => e !== down.endpoint));
  try {
    for (const l of leases) assert.ok((await probe.lease.timeToLive(l.id, { timeoutMs: 5000 })).ttl > 0, `lease ${l.id} alive on the server`);
  } finally {
    probe.close();
  }
}

describe("the keep-alive stream", () => {
  test("settles on the leader, wherever the client is pinned (followers forward every renewal)", async () => {
    const lead = await leader();
    const follower = cluster.members.find((m) => m !== lead)!;
    const { etcd } = await keep(follower, 5, 5);
    try {
      await waitFor("the stream on the leader", () => etcd.lease.keepAliveEndpoint === lead.endpoint, 5000);
      assert.equal(etcd.info().find((i) => i.pinned)?.url, follower.clientUrl, "unary calls stay where they were pinned");
    } finally {
      etcd.close();
    }
  });

  for (const fault of ["SIGKILL", "SIGSTOP"] as const) {
    test(`${fault} of the leader, which carries the stream: the stream moves, no lease is lost, then it settles on the new leader`, async () => {
      const victim = await leader();
      const { etcd, leases, lost } = await keep(victim, 20, 5);
      try {
        await waitFor("the stream on the leader", () => etcd.lease.keepAliveEndpoint === victim.endpoint, 5000);
        await sleep(500);
        if (fault === "SIGKILL") await victim.kill();
        else await victim.pause();
        const faultAt = Date.now();
        await waitFor("the stream to move", () => etcd.lease.keepAliveEndpoint !== undefined && etcd.lease.keepAliveEndpoint !== victim.endpoint, 5000);
        const movedAfter = Date.now() - faultAt;
        // Twice the TTL, so every lease needed refreshes through the new stream.
        await sleep(10_000);
        await assertAlive(leases, lost, victim);
        assert.ok(movedAfter < 5000, `moved after ${movedAfter} ms`);
        const now = await leader();
        assert.notEqual(now, victim);
        await waitFor("the stream on the new leader", () => etcd.lease.keepAliveEndpoint === now.endpoint, 10_000);
      } finally {
        etcd.close();
        await cluster.heal();
      }
    });
  }

  test("SIGSTOP of a follower costs nothing", async () => {
    const lead = await leader();
    const follower = cluster.members.find((m) => m !== lead)!;
    const { etcd, leases, lost } = await keep(follower, 20, 5);
    try {
      await waitFor("the stream on the leader", () => etcd.lease.keepAliveEndpoint === lead.endpoint, 5000);
      await follower.pause();
      await sleep(7000);
      await assertAlive(leases, lost, follower);
      assert.equal(etcd.lease.keepAliveEndpoint, lead.endpoint);
    } finally {
      etcd.close();
      await cluster.heal();
    }
  });
});

describe("no member reachable", () => {
  let proxies: TcpProxy[] = [];
  before(async () => {
    proxies = await Promise.all(cluster.members.map((m) => startProxy("127.0.0.1", m.clientPort)));
  });
  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
  });

  test("every member blackholed: the lease is lost with keepalive-failed when its TTL runs out, not later; then the client recovers", async () => {
    const etcd = client(
      proxies.map((p) => p.endpoint),
      { dialTimeoutMs: 1000 },
    );
    try {
      const ttl = 4;
      const lease = await etcd.lease.create(ttl);
      await new Promise<void>((r) => lease.once("keepalive", () => r()));
      await sleep(100);
      for (const p of proxies) p.blackhole();
      const holedAt = Date.now();
      // Anything already in the client's socket is read by now; no refresh gets through after this.
      await sleep(50);
      const expected = lease.expiresAt.getTime();
      assert.ok(expected - holedAt <= ttl * 1000 && expected - holedAt > ttl * 1000 - 1000, `expected loss ${expected - holedAt} ms after the blackhole`);
      const err = await Promise.race([lease.lost, sleep(3 * ttl * 1000).then(() => undefined)]);
      const lostAt = Date.now();
      assert.ok(err, "reported lost");
      assert.equal(err.reason, "keepalive-failed");
      assert.equal(lease.state, "lost");
      // When its TTL runs out: never before the client's (early) estimate, and at most one 100 ms schedule slot plus timer slack after.
      assert.ok(lostAt >= expected - 5, `reported ${expected - lostAt} ms early`);
      assert.ok(lostAt <= expected + 500, `reported ${lostAt - expected} ms late`);
      // Keep-alive started failing with the first refresh due after the blackhole.
      const since = err.since.getTime();
      assert.ok(since >= holedAt - 150 && since <= holedAt + (ttl * 1000) / 3 + 150, `since ${since - holedAt} ms after the blackhole`);
      assert.ok(err.cause instanceof EtcdError, "the last stream failure is the cause");

      for (const p of proxies) p.pass();
      const again = await etcd.lease.create(ttl, { timeoutMs: 15_000 });
      await new Promise<void>((r) => again.once("keepalive", () => r()));
      assert.equal(again.state, "alive");
      await again.revoke();
    } finally {
      for (const p of proxies) p.pass();
      etcd.close();
    }
  });
});
