// When nothing is reachable the caller hears so fast and clearly: every
// endpoint that refused, does not resolve, or fails TLS is listed once with
// its reason, within about a second, not at the deadline. Waiting for ready
// stays available as an option. Endpoint backoff grows with connection
// attempts, not with the number of calls that saw one fail.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "@connectrpc/connect";
import { KV, RangeResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { DeadlineExceededError, EndpointUnavailableError, NoEndpointAvailableError } from "../src/index.js";
import { ClusterTransport } from "../src/cluster/cluster-transport.js";
import { EndpointPool, type EndpointSlot } from "../src/cluster/endpoint-pool.js";
import { parseEndpoint } from "../src/cluster/endpoint.js";
import { Connection } from "../src/transport/connection.js";
import { createHttp2Transport } from "../src/transport/http2-transport.js";
import { freePort } from "./harness/index.js";
import { startFakeServer, type FakeServer } from "./fake-server.js";
import { client } from "./support.js";

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function refusedEndpoints(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`127.0.0.1:${await freePort()}`);
  return out;
}

async function failure(p: Promise<unknown>): Promise<{ err: NoEndpointAvailableError; ms: number }> {
  const t0 = performance.now();
  const err = await p.then(
    () => assert.fail("the call should have failed"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof NoEndpointAvailableError, String(err));
  return { err, ms: performance.now() - t0 };
}

describe("fail fast", () => {
  test("every endpoint refuses: NoEndpointAvailableError within a second, each endpoint once with its reason", async () => {
    const endpoints = await refusedEndpoints(3);
    const etcd = client(endpoints);
    try {
      const { err, ms } = await failure(etcd.get("k"));
      assert.ok(ms < 1000, `failed after ${ms} ms`);
      assert.deepEqual(err.errors.map((e) => e.endpoint).sort(), [...endpoints].sort());
      for (const e of err.errors) assert.ok(e instanceof EndpointUnavailableError && e.reason === "refused", String(e));
      for (const ep of endpoints) assert.equal(err.message.split(ep).length - 1, 1, `${ep} named once in: ${err.message}`);
    } finally {
      await etcd.close();
    }
  });

  test("one endpoint that refuses: the message names it once", async () => {
    const [ep] = await refusedEndpoints(1);
    const etcd = client(ep!);
    try {
      const { err } = await failure(etcd.get("k"));
      assert.match(err.rawMessage, new RegExp(`^no endpoint available: ${ep!.replace(/\./g, "\\.")}: connection refused`));
      assert.equal(err.message.split(ep!).length - 1, 1, err.message);
    } finally {
      await etcd.close();
    }
  });

  test("a name that does not resolve fails as fast, even with a short dial timeout", async () => {
    // The client's own parts, with a resolver that says "no such host" (no DNS server is asked).
    const lookup = () => Promise.reject(Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" }));
    const slots: EndpointSlot[] = ["etcd-a.example:2379", "etcd-b.example:2379"].map((a) => {
      const endpoint = parseEndpoint(a);
      const connection = new Connection(endpoint, { dialTimeoutMs: 500, keepAliveIntervalMs: 0, keepAliveTimeoutMs: 1000, lookup });
      return { endpoint, connection, transport: createHttp2Transport(connection), closeTransport: () => connection.close(), failures: 0, retryAt: 0, lastError: undefined, lastFailureAt: undefined };
    });
    const cluster = new ClusterTransport(new EndpointPool(slots, { initialMs: 100, maxMs: 5000 }), { requestTimeoutMs: 15000, retryWrites: false, requireLeader: false, waitForReady: false });
    const { err, ms } = await failure(createClient(KV, cluster).range({ key: new Uint8Array([1]) }));
    assert.ok(ms < 1000, `failed after ${ms} ms`);
    assert.deepEqual(err.errors.map((e) => (e as EndpointUnavailableError).reason), ["name-not-found", "name-not-found"]);
    cluster.close();
    await Promise.all(slots.map((s) => s.closeTransport?.()));
  });

  test("waitForReady: the call waits for an endpoint to come up, within its deadline", async () => {
    const [ep] = await refusedEndpoints(1);
    const port = Number(ep!.split(":")[1]);
    const etcd = client(ep!, { waitForReady: true, backoff: { initialMs: 50, maxMs: 200 } });
    try {
      await assert.rejects(etcd.get("k", { timeoutMs: 800 }), DeadlineExceededError);
      const call = etcd.get("k", { timeoutMs: 5000 });
      setTimeout(() => {
        void startFakeServer({ port, onCall: (c) => c.reply(RangeResponseSchema, { count: 7n }) }).then((s) => servers.push(s));
      }, 500);
      assert.equal((await call).count, 7n);
    } finally {
      await etcd.close();
    }
  });

  test("100 calls failing on one refused connection attempt count as one endpoint failure", async () => {
    const [ep] = await refusedEndpoints(1);
    const etcd = client(ep!, { backoff: { initialMs: 1000, maxMs: 60_000 } });
    try {
      const results = await Promise.allSettled(Array.from({ length: 100 }, () => etcd.get("k")));
      assert.ok(results.every((r) => r.status === "rejected"));
      const [info] = etcd.info();
      assert.ok(info!.failures <= 2, `failures ${info!.failures}: the backoff counted calls, not connection attempts`);
      assert.ok((info!.retryInSeconds ?? 0) <= 1, `backing off ${info!.retryInSeconds} s`);
    } finally {
      await etcd.close();
    }
  });
});
