// A 3-member (or n-member) etcd cluster on loopback ports.
import { join } from "node:path";
import { EtcdMember, makeDataRoot, type MemberOptions } from "./etcd.js";
import { freePorts } from "./ports.js";

export interface EtcdCluster {
  members: EtcdMember[];
  /** `host:port` of each member, in member order. */
  endpoints: string[];
  clientUrls: string[];
  /** Stops every member. */
  stop(): Promise<void>;
  /** Restarts any member that is not running and waits for all to be healthy. */
  heal(): Promise<void>;
}

/**
 * Starts `n` members with one shared initial cluster and waits until all are
 * healthy. A start that fails (a member exits: a port taken by another process
 * between choosing it and binding it) is tried again on new ports, twice at most.
 */
export async function startCluster(n = 3, options: MemberOptions = {}): Promise<EtcdCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(n, options);
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

async function startClusterOnce(n: number, options: MemberOptions): Promise<EtcdCluster> {
  const root = makeDataRoot();
  const all = await freePorts(2 * n);
  const ports: Array<[number, number]> = Array.from({ length: n }, (_, i) => [all[2 * i]!, all[2 * i + 1]!]);
  const initial = ports.map(([, peer], i) => `m${i + 1}=http://127.0.0.1:${peer}`).join(",");
  const token = `test-${process.pid}-${Date.now()}`;
  const members = ports.map(
    ([client, peer], i) =>
      new EtcdMember(`m${i + 1}`, client, peer, join(root, `m${i + 1}`), ["--initial-cluster", initial, "--initial-cluster-token", token, "--initial-cluster-state", "new"], options),
  );
  for (const m of members) m.start();
  const stop = async () => {
    await Promise.all(members.map((m) => m.stop()));
  };
  try {
    await Promise.all(members.map((m) => m.waitReady()));
  } catch (e) {
    await Promise.all(members.map((m) => m.kill()));
    throw e;
  }
  return {
    members,
    endpoints: members.map((m) => m.endpoint),
    clientUrls: members.map((m) => m.clientUrl),
    stop,
    async heal() {
      for (const m of members) {
        m.resume();
        if (!m.running) m.start();
      }
      await Promise.all(members.map((m) => m.waitReady()));
    },
  };
}
