/**
 * Leases: grant one that the client keeps alive, attach a key to it, list the
 * cluster's leases, read a lease's time to live, and revoke it (its keys go
 * with it).
 *
 * Run: `ETCD_ENDPOINTS=127.0.0.1:2379 node build/examples/lease.js` after `npx tsc -p tsconfig.json`
 * (in your own project, import from "etcd-connect").
 */
import { Etcd } from "../src/index.js";

const endpoints = (process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379").split(",");
const etcd = new Etcd({ endpoints });
try {
  // Granted with a 5 s TTL and refreshed every third of it until revoked, stopped or closed.
  const lease = await etcd.lease.create(5);
  lease.on("lost", (err) => console.error(`lease lost: ${err.reason}`));
  console.log(`granted lease ${lease.id.toString(16)} (TTL ${lease.ttl} s), state ${lease.state}`);
  await etcd.put("examples/lease/worker", "alive", { lease: lease.id });

  // Every lease the cluster has.
  const ids = await etcd.lease.leases();
  console.log(`leases in the cluster: ${ids.map((id) => id.toString(16)).join(", ")}; ours listed: ${ids.includes(lease.id)}`);

  // Past the TTL the key is still there: the keep-alive refreshed the lease.
  await new Promise((r) => setTimeout(r, 6000));
  const ttl = await etcd.lease.timeToLive(lease.id, { keys: true });
  const worker = await etcd.get("examples/lease/worker");
  console.log(`after 6 s: ${ttl.ttl} s of ${ttl.grantedTtl} left, keys ${ttl.keys.map((k) => new TextDecoder().decode(k)).join(", ")}; worker = ${worker.text}`);
  if (worker.text !== "alive") throw new Error("the keep-alive did not keep the lease");

  // A lease kept alive by hand, one refresh at a time.
  const plain = await etcd.lease.grant(30);
  const once = await etcd.lease.keepAliveOnce(plain.id);
  console.log(`lease ${plain.id.toString(16)} refreshed once: TTL ${once.ttl} s`);
  await etcd.lease.revoke(plain.id);

  // Revoking deletes every key attached to the lease.
  await etcd.lease.revoke(lease.id);
  const gone = await etcd.get("examples/lease/worker");
  console.log(`revoked lease ${lease.id.toString(16)}: state ${lease.state}, worker key ${gone.count === 0n ? "deleted" : "still there"}`);
} finally {
  await etcd.close();
}
