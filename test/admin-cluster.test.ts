// Cluster membership and per-member maintenance on a real 3-member cluster:
// a fourth etcd process joins as a learner, is promoted and removed while a
// client keeps reading and writing; learners refuse what they cannot serve
// and the client moves on; auto-sync follows the member list; leadership
// moves on request. Every loop is bounded in count and time.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { joiningMember, type EtcdCluster, type EtcdMember } from "./harness/index.js";
import { client, uniquePrefix, useCluster } from "./support.js";
import {
  BadLeaderTransfereeError,
  EtcdError,
  InvalidOptionError,
  LearnerNotSupportedError,
  MemberNotFoundError,
  NotSupportedError,
  UnhealthyClusterError,
  compareVersions,
  type Etcd,
  type MemberAddResult,
} from "../src/index.js";

let cluster: EtcdCluster;
let version: string;

useCluster(3, (c) => {
  cluster = c;
  version = c.members[0]!.version;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * etcd refuses membership changes ("unhealthy cluster") until every member
 * has been connected for 5 s, and a promotion until the learner caught up:
 * retry those two refusals only, for at most `ms`.
 */
async function retryWhile<T>(retryable: (e: unknown) => boolean, fn: () => Promise<T>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!retryable(e) || Date.now() > end) throw e;
      await sleep(200);
    }
  }
}

const origins = (etcd: Etcd) => etcd.info().map((i) => i.url).sort();

describe("cluster membership", () => {
  test("a fourth member joins as a learner, is promoted and removed; the client serves throughout and auto-sync follows", async () => {
    const admin = client(cluster.endpoints);
    // The load client follows the member list by itself.
    const worker = client(cluster.endpoints, { autoSyncIntervalMs: 300, requestTimeoutMs: 8000 });
    const p = uniquePrefix("membership");
    let m4: EtcdMember | undefined;
    let added: MemberAddResult | undefined;
    let removed = false;
    let stop = false;
    const errors: unknown[] = [];
    let ok = 0;
    // Bounded: at most 20,000 operations, and it stops when the sequence is done.
    const load = (async () => {
      for (let i = 0; !stop && i < 20_000; i++) {
        try {
          await worker.put(`${p}${i % 50}`, String(i));
          await worker.get(`${p}${i % 50}`);
          ok++;
        } catch (e) {
          errors.push(e);
        }
      }
    })();
    try {
      const before = origins(worker);
      m4 = await joiningMember(cluster.members, "m4");
      added = await retryWhile(
        (e) => e instanceof UnhealthyClusterError,
        () => admin.cluster.addLearner([m4!.peerUrl]),
      );
      assert.equal(added.member.isLearner, true);
      assert.equal(added.member.started, false, "not started yet");
      assert.deepEqual(added.member.peerURLs, [m4.peerUrl]);
      assert.equal(added.members.length, 4);
      // An unstarted member has no client URL: sync leaves the list as it was.
      assert.deepEqual((await admin.sync()).sort(), before);

      m4.start();
      await m4.waitReady();
      const id = added.member.id;
      await waitFor("the learner to publish its name", async () => (await admin.cluster.list()).members.some((m) => m.id === id && m.started), 15_000);
      const listed = (await admin.cluster.list()).members.find((m) => m.id === id)!;
      assert.equal(listed.isLearner, true);
      assert.deepEqual(listed.clientURLs, [m4.clientUrl]);
      // A started learner is still not an endpoint: it cannot serve linearizable reads or writes.
      assert.deepEqual((await admin.sync()).sort(), before);

      // Per-member status reaches a member outside the client's endpoints.
      const st = await admin.maintenance.status({ endpoint: m4.clientUrl });
      assert.equal(st.isLearner, true);
      assert.equal(st.memberId, id);
      assert.equal(st.version, version);

      await learnerChecks(m4);

      const promoted = await retryWhile(
        (e) => e instanceof EtcdError && e.name === "LearnerNotReadyError",
        () => admin.cluster.promote(id),
      );
      assert.equal(promoted.find((m) => m.id === id)?.isLearner, false);
      // The member answering a (serializable) member list may apply the promotion a moment later.
      await waitFor("sync to include the promoted member", async () => (await admin.sync()).includes(m4!.clientUrl), 10_000);
      await waitFor("auto-sync to add the promoted member", () => origins(worker).includes(m4!.clientUrl), 10_000);

      const remaining = await admin.cluster.remove(id);
      removed = true;
      assert.equal(remaining.length, 3);
      assert.ok(!remaining.some((m) => m.id === id));
      await waitFor("sync to drop the removed member", async () => (await admin.sync()).sort().join() === before.join(), 10_000);
      await waitFor("auto-sync to drop the removed member", () => !origins(worker).includes(m4!.clientUrl), 10_000);
      await assert.rejects(admin.cluster.remove(id), MemberNotFoundError);

      // Keep the load going a little after the removal, then check it never failed.
      await sleep(500);
      stop = true;
      await load;
      assert.deepEqual(errors.map(String), [], "the client kept serving through add, promote and remove");
      assert.ok(ok > 20, `the load made progress (${ok} put+get pairs)`);
      const after = await worker.get(p, { prefix: true, countOnly: true });
      assert.equal(after.count, 50n);
    } finally {
      stop = true;
      await load;
      // Later tests expect three members, whatever happened here.
      if (added !== undefined && !removed) await admin.cluster.remove(added.member.id).catch(() => undefined);
      admin.close();
      worker.close();
      await m4?.stop();
    }
  });

  test("bad input is refused before anything is sent", async () => {
    const etcd = client(cluster.endpoints);
    try {
      await assert.rejects(etcd.cluster.add([]), InvalidOptionError);
      await assert.rejects(etcd.cluster.add(["127.0.0.1:2380"]), InvalidOptionError);
      await assert.rejects(etcd.cluster.addLearner(["ftp://127.0.0.1:2380"]), InvalidOptionError);
      await assert.rejects(etcd.cluster.remove(0n), InvalidOptionError);
      await assert.rejects(etcd.cluster.promote(5 as unknown as bigint), InvalidOptionError);
      await assert.rejects(etcd.maintenance.status({ endpoint: "ftp://x:1" }), InvalidOptionError);
      await assert.rejects(etcd.maintenance.moveLeader(-1n), InvalidOptionError);
    } finally {
      etcd.close();
    }
  });
});

/**
 * etcd 3.4 and 3.5 refuse a learner's linearizable reads and writes with
 * Unavailable "rpc not supported for learner": a client whose first endpoint
 * is the learner must go on to a voting member, and one with only the
 * learner must hear LearnerNotSupportedError, at once.
 */
async function learnerChecks(learner: EtcdMember): Promise<void> {
  const p = uniquePrefix("learner");
  const first = client([learner.endpoint, ...cluster.endpoints], { requestTimeoutMs: 5000 });
  try {
    await first.put(p + "k", "v"); // a write refused by the learner is resent: nothing was proposed
    const r = await first.get(p + "k");
    assert.equal(r.text, "v");
    assert.notEqual(r.header?.memberId, undefined);
    assert.notEqual(first.info().find((i) => i.pinned)?.url, learner.clientUrl, "the pin moved off the learner");
  } finally {
    first.close();
  }
  const only = client(learner.endpoint, { requestTimeoutMs: 10_000 });
  try {
    const t0 = Date.now();
    await assert.rejects(only.get(p + "k"), LearnerNotSupportedError);
    await assert.rejects(only.put(p + "k", "w"), LearnerNotSupportedError);
    assert.ok(Date.now() - t0 < 3000, `a learner-only client fails fast (${Date.now() - t0} ms), not at its deadline`);
    // What a learner does serve still works: serializable reads.
    assert.equal((await only.get(p + "k", { serializable: true })).text, "v");
  } finally {
    only.close();
  }
}

describe("maintenance on a cluster", () => {
  test("move leader: sent to the current leader, and the status view reports the new one", async () => {
    const probe = client(cluster.endpoints);
    const view = await probe.status().finally(() => probe.close());
    const leader = view.find((i) => i.isLeader === true);
    assert.ok(leader?.memberId !== undefined, "a leader is known");
    const followers = view.filter((i) => i.isLeader === false);
    const [pinned, target] = [followers[0]!, followers[1]!];
    // Pinned to a follower that is not the target: the request has to be routed to the leader to succeed.
    const etcd = client([pinned.url, target.url, leader.url]);
    try {
      assert.equal(etcd.info().find((i) => i.pinned)?.url, pinned.url);
      await etcd.maintenance.moveLeader(target.memberId!);
      const after = await etcd.status();
      const newLeader = after.find((i) => i.isLeader === true);
      assert.equal(newLeader?.memberId, target.memberId, "the target leads now");
      for (const ep of cluster.endpoints) {
        const st = await etcd.maintenance.status({ endpoint: ep });
        assert.equal(st.leader, target.memberId, `${ep} sees the new leader`);
      }
      // A member that does not exist cannot lead.
      await assert.rejects(etcd.maintenance.moveLeader(12345n), BadLeaderTransfereeError);
    } finally {
      etcd.close();
    }
  });

  test("status, hash and hashKV per member: members agree on the hash of the same revision", async () => {
    const etcd = client(cluster.endpoints);
    try {
      const p = uniquePrefix("hash");
      for (let i = 0; i < 20; i++) await etcd.put(`${p}${i}`, `v${i}`);
      const rev = (await etcd.get(p + "0")).revision;
      // Wait until every member has applied it, then compare their hashes at that revision.
      await waitFor("every member to apply the writes", async () => {
        const sts = await Promise.all(cluster.endpoints.map((endpoint) => etcd.maintenance.status({ endpoint })));
        return sts.every((s) => s.revision >= rev);
      }, 10_000);
      const hashes = await Promise.all(cluster.endpoints.map((endpoint) => etcd.maintenance.hashKV(rev, { endpoint })));
      assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, `members disagree: ${hashes.map((h) => h.hash).join(", ")}`);
      assert.equal(new Set(hashes.map((h) => h.memberId)).size, 3, "each member answered for itself");
      assert.deepEqual(hashes.map((h) => h.endpoint), cluster.endpoints);
      const st = await etcd.maintenance.status({ endpoint: cluster.endpoints[1] });
      assert.equal(st.endpoint, cluster.endpoints[1]);
      assert.ok(st.dbSize > 0n && st.dbSizeInUse > 0n && st.dbSizeInUse <= st.dbSize);
      assert.ok(st.raftIndex > 0n && st.raftTerm > 0n && st.raftAppliedIndex > 0n);
      assert.deepEqual(st.errors, []);
      const h = await etcd.maintenance.hash({ endpoint: cluster.endpoints[2] });
      assert.equal(h.endpoint, cluster.endpoints[2]);
      assert.equal(typeof h.hash, "number");
      // An endpoint given as a URL outside the list is reached too, and its connection closed afterwards.
      const single = client(cluster.endpoints[0]!);
      try {
        const other = await single.maintenance.status({ endpoint: cluster.clientUrls[2] });
        assert.equal(other.endpoint, cluster.endpoints[2]);
        assert.equal(single.info().length, 1, "the client's own endpoint list is unchanged");
      } finally {
        single.close();
      }
    } finally {
      etcd.close();
    }
  });

  test("linearizable member list: served on 3.5+, refused before sending on 3.4", async () => {
    const etcd = client(cluster.endpoints);
    try {
      if (compareVersions(version, "3.5") >= 0) {
        const list = await etcd.cluster.list({ linearizable: true });
        assert.equal(list.members.length, 3);
        assert.ok(list.members.every((m) => m.started && !m.isLearner));
      } else {
        const e = await etcd.cluster.list({ linearizable: true }).then(
          () => assert.fail("3.4 must refuse"),
          (err: unknown) => err,
        );
        assert.ok(e instanceof NotSupportedError, String(e));
        assert.equal(e.requiredVersion, "3.5");
        assert.equal(e.serverVersion, version);
        assert.match(e.message, new RegExp(`needs etcd 3\\.5 or later; this server is ${version.replace(/\./g, "\\.")}`));
      }
      // The plain list works everywhere, and names who answered.
      const plain = await etcd.cluster.list();
      assert.equal(plain.members.length, 3);
      assert.ok(plain.members.some((m) => m.id === plain.memberId));
    } finally {
      etcd.close();
    }
  });
});
