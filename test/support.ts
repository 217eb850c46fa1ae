// Shared by the integration tests: a client for the transport under test, and
// the file-level hooks that start the real members those tests run against.
import { after, before } from "node:test";
import { startCluster, startEtcd, type EtcdCluster, type EtcdMember } from "./harness/index.js";
import { Etcd, type EtcdOptions } from "../src/index.js";

/** The transport this run tests (`ETCD_TRANSPORT`, set by scripts/test.mjs). */
export const transportUnderTest: "http2" | "connect-node" = process.env.ETCD_TRANSPORT === "connect-node" ? "connect-node" : "http2";

/** A client for `endpoints` using the transport under test. */
export function client(endpoints: string | string[], options: Partial<EtcdOptions> = {}): Etcd {
  return new Etcd({ transport: transportUnderTest, ...options, endpoints });
}

/** A unique key prefix per test, so tests sharing a member never see each other's keys. */
let counter = 0;
export function uniquePrefix(name: string): string {
  return `t/${name}/${process.pid}-${++counter}/`;
}

/**
 * One etcd member for a whole test file. Before the tests it starts the member
 * and calls `onStart` with it and `newClient`, which makes a client of it on the
 * transport under test; the file keeps them in its own variables. After the
 * tests it closes those clients, in the order made, then stops the member, so
 * nothing is left to hold the process open. Call it at the top level of the file
 * (or in a describe, for that suite only).
 */
export function useMember(onStart: (member: EtcdMember, newClient: () => Etcd) => void): void {
  let member: EtcdMember | undefined;
  const clients: Etcd[] = [];
  before(async () => {
    const m = await startEtcd();
    member = m;
    onStart(m, () => {
      const c = client(m.endpoint);
      clients.push(c);
      return c;
    });
  });
  after(async () => {
    for (const c of clients) void c.close();
    await member?.stop();
  });
}

/** Like useMember for an `n`-member cluster, without clients: started before the tests of the file (or describe), stopped after. */
export function useCluster(n: number, onStart: (cluster: EtcdCluster) => void): void {
  let cluster: EtcdCluster | undefined;
  before(async () => {
    cluster = await startCluster(n);
    onStart(cluster);
  });
  after(async () => {
    await cluster?.stop();
  });
}
