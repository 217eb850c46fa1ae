/**
 * The status view: what the client knows about each endpoint (local, no
 * network), what each member says about itself, and the member list.
 *
 * Run: `ETCD_ENDPOINTS=127.0.0.1:2379 node build/examples/status.js` after `npx tsc -p tsconfig.json`
 * (in your own project, import from "etcd-connect").
 */
import { Etcd, formatEndpointTable } from "../src/index.js";

const endpoints = (process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379").split(",");
const etcd = new Etcd({ endpoints });
try {
  // Before any call: nothing is connected yet (connections open lazily).
  console.log("info() before any call:");
  console.log(formatEndpointTable(etcd.info()));

  // status() asks every member: leader, version, raft term, DB size, round trip.
  console.log("\nstatus():");
  console.log(formatEndpointTable(await etcd.status()));

  // One member's own report, through the Maintenance API.
  const st = await etcd.maintenance.status({ endpoint: endpoints[0]! });
  console.log(
    `\n${st.endpoint}: etcd ${st.version}, member ${st.memberId.toString(16)}, leader ${st.leader.toString(16)}${st.isLeader ? " (itself)" : ""}, ` +
      `raft term ${st.raftTerm} index ${st.raftIndex}, revision ${st.revision}, db ${st.dbSize} bytes (${st.dbSizeInUse} in use)` +
      (st.errors.length > 0 ? `, errors: ${st.errors.join("; ")}` : ""),
  );

  // The members of the cluster.
  const { members } = await etcd.cluster.list();
  for (const m of members) console.log(`member ${m.id.toString(16)} ${m.name}: clients ${m.clientURLs.join(", ")}${m.isLearner ? " (learner)" : ""}`);
} finally {
  await etcd.close();
}
