/**
 * Leader election: do leader-only work, and stop as soon as leadership is lost.
 *
 * Three candidates (each with its own client, as three processes would have)
 * campaign for one election. The leader does its work in ticks, each tick a
 * write guarded by `election.isLeader()`, so a tick can never land after it
 * lost leadership. The first leader "crashes" (its lease is revoked from
 * outside, as when its TTL runs out): it notices, stops, and the next in line
 * takes over; the others resign after a few ticks. An observer prints every
 * change of leader. Runs against ETCD_ENDPOINTS (default 127.0.0.1:2379) and
 * exits by itself.
 *
 * Run: `ETCD_ENDPOINTS=127.0.0.1:2379 node build/examples/election.js` after `npx tsc -p tsconfig.json`
 * (in your own project, import from "etcd-connect").
 */
import { Etcd, Op, type Election } from "../src/index.js";

const endpoints = (process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379").split(",");
const name = `examples/election/${process.pid}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Leader-only work: one guarded write per tick, until leadership is lost or `ticks` are done. */
async function lead(who: string, etcd: Etcd, election: Election, ticks: number): Promise<"lost" | "done"> {
  for (let i = 1; i <= ticks; i++) {
    if (election.signal.aborted) return "lost";
    const r = await etcd.txn().if(election.isLeader()).then(Op.put(`${name}-work`, `${who} tick ${i}`)).commit();
    if (!r.succeeded) return "lost"; // the key that made us leader is gone: someone else may lead now
    console.log(`  ${who}: tick ${i}`);
    await sleep(300);
  }
  return "done";
}

async function candidate(who: string, crash: boolean): Promise<void> {
  const etcd = new Etcd({ endpoints });
  try {
    const session = await etcd.session({ ttl: 3 });
    session.lost.then((e) => console.log(`  ${who}: session lost (${e.reason}) -> stop leader work`));
    const election = session.election(name);
    await election.campaign(who, { timeoutMs: 30_000 });
    console.log(`${who}: elected`);
    if (crash) {
      // Simulate a crash seen from outside: another client revokes our lease.
      const admin = new Etcd({ endpoints });
      setTimeout(() => void admin.lease.revoke(session.id).finally(() => admin.close()), 700);
    }
    const outcome = await lead(who, etcd, election, crash ? 100 : 3);
    if (outcome === "lost") console.log(`${who}: lost leadership, stopped`);
    else {
      await election.resign();
      console.log(`${who}: resigned`);
    }
    await session.close();
  } finally {
    await etcd.close();
  }
}

const observer = new Etcd({ endpoints });
const stop = new AbortController();
const watching = (async () => {
  const session = await observer.session({ ttl: 5 });
  for await (const leader of session.election(name).observe({ signal: stop.signal })) console.log(`[observer] leader is now ${leader.text}`);
  await session.close();
})();

try {
  await sleep(100);
  const a = candidate("node-a", true);
  await sleep(100); // queue in a known order
  const b = candidate("node-b", false);
  await sleep(100);
  const c = candidate("node-c", false);
  await Promise.all([a, b, c]);
} finally {
  stop.abort();
  await watching.catch(() => undefined);
  await observer.close();
}
