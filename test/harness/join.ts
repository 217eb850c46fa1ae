// An extra etcd process that joins a running cluster (`--initial-cluster-state existing`),
// as a voting member or a learner: the test adds it with MemberAdd first, then starts it.
import { join } from "node:path";
import { EtcdMember, makeDataRoot, type MemberOptions } from "./etcd.js";
import { freePorts } from "./ports.js";

/**
 * A member that is not started yet, ready to join `existing` under `name`.
 * Add `member.peerUrl` to the cluster (MemberAdd, as a learner or not), then
 * call `member.start()` and `member.waitReady()`.
 */
export async function joiningMember(existing: readonly EtcdMember[], name: string, options: MemberOptions = {}): Promise<EtcdMember> {
  const root = makeDataRoot();
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const initial = [...existing.map((m) => `${m.name}=${m.peerUrl}`), `${name}=${peerUrl}`].join(",");
  return new EtcdMember(name, clientPort, peerPort, join(root, name), ["--initial-cluster", initial, "--initial-cluster-state", "existing"], options);
}
