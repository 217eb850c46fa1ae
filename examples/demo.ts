/**
 * The demo (`npm run demo`): a local 3-member etcd cluster that this script
 * starts itself (the Debian etcd 3.4 binary, or ETCD_BIN), and a small
 * service fleet on it, narrated as it goes:
 *
 * 1. the status view and the member list of the fresh cluster;
 * 2. three services register under `services/` with leases kept alive, and a
 *    discovery mirror of `services/` follows them;
 * 3. they campaign for leadership through etcd's election service; one leads;
 * 4. while orders are written and a watcher counts every event, the member
 *    the client is talking to is killed (SIGKILL): calls, the watch stream,
 *    the keep-alive stream and the campaigns move to the other members;
 * 5. the watcher has every order the store has, each once and in order;
 * 6. the leader's service shuts down: the mirror drops it and leadership
 *    passes on; a snapshot is taken with progress; the status view after;
 * 7. everything shuts down and the process exits by itself.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ElectionService, Etcd, OutcomeUnknownError, formatEndpointTable, type KeptLease, type LeaderKey } from "../src/index.js";
import { startCluster } from "../test/harness/index.js";

const started = Date.now();
const say = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The demo must end by itself; if something hangs, say so and fail rather than wait forever.
const guard = setTimeout(() => {
  console.error("demo did not finish within 90 s");
  process.exit(1);
}, 90_000);
guard.unref();

say("starting a 3-member etcd cluster on loopback ports...");
const cluster = await startCluster(3);
say(`cluster up: etcd ${cluster.members[0]!.version}, members ${cluster.members.map((m) => `${m.name}=${m.endpoint}`).join(", ")}`);

// The member killed below is a follower, so the failover is the client's alone
// (killing the raft leader would add the cluster's own election pause). The
// client talks to its first endpoint: put a follower first.
const probe = new Etcd({ endpoints: cluster.endpoints });
const leaderUrl = (await probe.status()).find((i) => i.isLeader)?.url;
await probe.close();
const endpoints = [...cluster.members].sort((a, b) => Number(a.clientUrl === leaderUrl) - Number(b.clientUrl === leaderUrl)).map((m) => m.endpoint);
const etcd = new Etcd({ endpoints, keepAliveTimeoutMs: 1000 });
etcd.events.on("endpointFailed", (ep, err) => say(`client: endpoint ${ep} failed (${err.rawMessage}); moving on`));
etcd.events.on("pinned", (ep) => say(`client: calls now go to ${ep}`));
const snapshotDir = mkdtempSync(join(tmpdir(), "etcd-connect-demo-"));
const stopAll = new AbortController();
const leases: KeptLease[] = [];

try {
  // 1. The cluster as the client sees it.
  say("status view of the fresh cluster:");
  console.log(formatEndpointTable(await etcd.status()));
  const { members } = await etcd.cluster.list();
  say(`member list: ${members.map((m) => `${m.name} (${m.id.toString(16)})`).join(", ")}`);

  // 2. Discovery: a mirror of services/ follows registrations as they happen.
  const mirror = etcd.mirror("services/");
  mirror.on("put", (key, kv, prev) => say(`  mirror: ${prev ? "updated" : "+"} ${key} -> ${kv.text}   (${mirror.map.size} services)`));
  mirror.on("delete", (key) => say(`  mirror: - ${key}   (${mirror.map.size} services)`));
  await mirror.ready;
  say(`discovery mirror of services/ ready at revision ${mirror.revision}`);

  const names = ["api-1", "api-2", "api-3"];
  for (const [i, name] of names.entries()) {
    const lease = await etcd.lease.create(5); // refreshed every ~1.7 s until revoked or closed
    lease.on("lost", (err) => say(`  lease of ${name} lost: ${err.reason}`));
    leases.push(lease);
    await etcd.put(`services/${name}`, `10.0.0.${i + 1}:8080`, { lease: lease.id });
  }
  say(`3 services registered, each with a 5 s lease kept alive over one shared stream`);

  // 3. Leader election through etcd's v3election service. Campaigns wait
  // until they lead; a campaign cut off by a failover campaigns again with
  // the same lease, which the server maps to the same candidacy.
  const elections = new ElectionService(etcd);
  const leaders = new Map<string, LeaderKey>();
  const campaign = async (name: string, lease: KeptLease) => {
    for (let attempt = 0; attempt < 10 && !stopAll.signal.aborted; attempt++) {
      try {
        const { leader } = await elections.campaign("election/orders", lease.id, name, { signal: stopAll.signal, timeoutMs: 60_000 });
        leaders.set(name, leader);
        return;
      } catch (e) {
        if (stopAll.signal.aborted) return;
        const why = e instanceof OutcomeUnknownError ? "cut off by the failover" : `failed (${(e as Error).message})`;
        say(`  ${name}: campaign ${why}; campaigning again with the same lease`);
        await sleep(100);
      }
    }
  };
  const campaigns = names.map((n, i) => campaign(n, leases[i]!));
  // Who leads, as every observer sees it; observe again when a failover breaks the stream.
  const observing = (async () => {
    let last = "";
    for (let i = 0; i < 10 && !stopAll.signal.aborted; i++) {
      try {
        for await (const kv of elections.observe("election/orders", { signal: stopAll.signal })) {
          if (kv.text !== last) say(`  election: ${kv.text} leads`);
          last = kv.text;
        }
      } catch {
        await sleep(100);
      }
    }
  })();
  while (leaders.size === 0) await sleep(20);
  const firstLeader = [...leaders.keys()][0]!;
  say(`${firstLeader} won the election; the others wait as candidates`);

  // 4. Orders are written while a watcher counts every event; mid-way the
  // member the client talks to is killed.
  const seen = new Map<string, bigint>(); // key -> revision of its put event
  let duplicates = 0;
  let outOfOrder = 0;
  let lastRevision = 0n;
  const watcher = etcd.watch("orders/", { prefix: true });
  const watching = (async () => {
    for await (const batch of watcher) {
      if (batch.revision <= lastRevision) outOfOrder++;
      lastRevision = batch.revision;
      for (const e of batch.events) {
        if (seen.has(e.keyText)) duplicates++;
        seen.set(e.keyText, batch.revision);
      }
    }
  })();
  await watcher.ready();
  say("watcher on orders/ is live; writing 150 orders, one every 15 ms");

  const pinnedUrl = etcd.info().find((i) => i.pinned)!.url;
  const victim = cluster.members.find((m) => m.clientUrl === pinnedUrl)!;
  let acknowledged = 0;
  let unknown = 0;
  for (let n = 1; n <= 150; n++) {
    if (n === 60) {
      say(`killing ${victim.name} (${victim.endpoint}), the follower the client is talking to, with SIGKILL`);
      await victim.kill();
    }
    try {
      await etcd.put(`orders/${String(n).padStart(4, "0")}`, `order ${n}`);
      acknowledged++;
    } catch (e) {
      // A write cut off in flight may or may not have been applied: it is not
      // resent (that could apply it twice); the store says what happened.
      if (!(e instanceof OutcomeUnknownError)) throw e;
      unknown++;
      say(`  order ${n}: outcome unknown (connection lost after sending); not resent`);
    }
    await sleep(15);
  }
  say(`orders written: ${acknowledged} acknowledged, ${unknown} with unknown outcome`);

  // 5. Every order in the store reached the watcher: once each, in revision order.
  const stored = await etcd.get("orders/", { prefix: true, keysOnly: true });
  const deadline = Date.now() + 10_000;
  const lastOrder = stored.kvs.reduce((max, kv) => (kv.modRevision > max ? kv.modRevision : max), 0n);
  while (lastRevision < lastOrder && Date.now() < deadline) await sleep(20);
  const missing = stored.kvs.filter((kv) => !seen.has(kv.keyText)).length;
  say(
    `watcher: ${seen.size} events for ${stored.count} orders in the store; missing ${missing}, duplicated ${duplicates}, out of order ${outOfOrder}` +
      (missing + duplicates + outOfOrder === 0 ? "  -> none lost across the failover" : "  -> EVENTS LOST"),
  );
  if (missing + duplicates + outOfOrder > 0 || seen.size !== stored.kvs.length) throw new Error("the watcher lost or repeated events");
  const streams = etcd.watches.info().streams;
  say(`watch stream opened ${streams.map((s) => s.opens).join("+")} times (once, then again on another member after the kill)`);
  say(`leases after the failover: ${leases.map((l) => l.state).join(", ")} (keep-alive stream on ${etcd.lease.keepAliveEndpoint ?? "?"})`);

  // 6. The leader's service shuts down: its lease goes, and with it its
  // registration and its leadership.
  const leaderIndex = names.indexOf(firstLeader);
  say(`${firstLeader} shuts down: revoking its lease`);
  await leases[leaderIndex]!.revoke();
  const handOver = Date.now() + 10_000;
  while (leaders.size < 2 && Date.now() < handOver) await sleep(20);
  const next = [...leaders.keys()].find((n) => n !== firstLeader);
  say(next ? `${next} took over the leadership` : "nobody took over (unexpected)");
  await sleep(100); // let the mirror's and the observer's lines arrive
  say(`mirror now lists: ${[...mirror.map.keys()].sort().join(", ")}`);

  // A snapshot of the backend, streamed to a file with progress and verified.
  let lastProgress = 0;
  const snap = await etcd.maintenance.snapshot(join(snapshotDir, "backup.db"), {
    onProgress: ({ bytes }) => {
      if (bytes - lastProgress >= 32 * 1024) say(`  snapshot: ${(bytes / 1024).toFixed(0)} KiB received`);
      lastProgress = bytes;
    },
  });
  say(`snapshot from ${snap.endpoint}: ${snap.databaseBytes} bytes, SHA-256 verified (${snap.sha256.slice(0, 16)}...)`);

  say(`status view after the failover (${victim.name} is down):`);
  console.log(formatEndpointTable(await etcd.status({ timeoutMs: 2000 })));

  // 7. Shut down: candidates withdraw, streams end, leases stop, sockets close.
  stopAll.abort();
  mirror.close();
  watcher.close();
  await Promise.all([...campaigns, observing, watching]);
} finally {
  stopAll.abort();
  await etcd.close();
  say("client closed; stopping the cluster");
  // One member at a time: members stopped together wait on each other for seconds.
  for (const m of cluster.members) await m.stop();
  rmSync(snapshotDir, { recursive: true, force: true });
}
say("cluster stopped; done");
