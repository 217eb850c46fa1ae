// Shared by the integration tests: a client for the transport under test.
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
