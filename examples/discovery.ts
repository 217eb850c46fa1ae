/**
 * Service discovery: list the registered services under a prefix, then watch
 * from the list's revision + 1 so no change between the two is missed, and
 * keep a live table of them. Services register with a lease, so a crashed one
 * disappears when its lease runs out. (`etcd.mirror(prefix)` does all of this
 * for you, relisting after compaction too: see examples/demo.ts.)
 *
 * Run: `ETCD_ENDPOINTS=127.0.0.1:2379 node build/examples/discovery.js` after `npx tsc -p tsconfig.json`
 * (in your own project, import from "etcd-connect").
 */
import { Etcd } from "../src/index.js";

const endpoints = (process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379").split(",");
const PREFIX = "examples/discovery/heartbeat/";
const etcd = new Etcd({ endpoints });
// Keys look like heartbeat/<type>/<ip>:<port>; the table maps ip:port to type.
const table = new Map<string, string>();
const parse = (key: string) => {
  const [type, addr] = key.slice(PREFIX.length).split("/");
  return { type: type!, addr: addr! };
};
const show = (why: string) => console.log(`${why.padEnd(28)} ${[...table].map(([a, t]) => `${t}@${a}`).sort().join(", ") || "(none)"}`);

try {
  const lease = await etcd.lease.create(10);
  await etcd.put(`${PREFIX}api/10.0.0.1:8080`, "", { lease: lease.id });
  await etcd.put(`${PREFIX}api/10.0.0.2:8080`, "", { lease: lease.id });

  // 1. What is registered now, and at which revision.
  const list = await etcd.get(PREFIX, { prefix: true, keysOnly: true });
  for (const kv of list.kvs) {
    const { type, addr } = parse(kv.keyText);
    table.set(addr, type);
  }
  show(`listed at revision ${list.revision}:`);

  // 2. Every change after that revision, in order, across reconnects.
  const watcher = etcd.watch(PREFIX, { prefix: true, startRevision: list.revision + 1n });
  await watcher.ready();

  // Meanwhile: one service joins, one leaves.
  const changes = (async () => {
    await etcd.put(`${PREFIX}worker/10.0.0.3:9000`, "", { lease: lease.id });
    await etcd.delete(`${PREFIX}api/10.0.0.1:8080`);
  })();

  let seen = 0;
  for await (const batch of watcher) {
    for (const e of batch.events) {
      const { type, addr } = parse(e.keyText);
      if (e.type === "put") table.set(addr, type);
      else table.delete(addr);
      show(`${e.type} ${type}@${addr} (rev ${batch.revision}):`);
      seen++;
    }
    if (seen >= 2) break; // leaving the loop cancels the watch on the server
  }
  await changes;
  if (table.size !== 2 || table.has("10.0.0.1:8080")) throw new Error("the table missed a change");

  await lease.revoke(); // unregisters every service of this lease
} finally {
  await etcd.close();
}
