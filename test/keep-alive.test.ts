// Keep-alive PINGs against a real etcd: at the default settings a stream held
// open for over a minute is never cut by the server's too_many_pings policy;
// and a stall of the client's own event loop longer than keepAliveTimeoutMs
// does not condemn a healthy connection (the wait is counted from when the
// PING actually went out, and an answer already received is read first).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { H2Session } from "../src/transport/h2/session.js";
import { Worker } from "node:worker_threads";
import { startEtcd, startProxy, type EtcdMember } from "./harness/index.js";
import { startFakeServer } from "./fake-server.js";
import { MIN_PING_INTERVAL_MS } from "../src/transport/keep-alive.js";
import { client, transportUnderTest, uniquePrefix } from "./support.js";
import { OutcomeUnknownError, type Etcd, type EtcdError } from "../src/index.js";

let member: EtcdMember;
before(async () => {
  member = await startEtcd();
});
after(async () => {
  await member?.stop();
});

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Opens a watch on `key`; resolves once it is created, with a reader for its next event and a stop function. */
async function watch(etcd: Etcd, key: string) {
  const ac = new AbortController();
  async function* requests() {
    yield { requestUnion: { case: "createRequest" as const, value: { key: enc.encode(key) } } };
    await new Promise((r) => ac.signal.addEventListener("abort", r));
  }
  const it = etcd.raw.watch.watch(requests(), { signal: ac.signal })[Symbol.asyncIterator]();
  const first = await it.next();
  assert.equal(first.value?.created, true);
  return {
    async nextValue(): Promise<string> {
      for (;;) {
        const r = await it.next();
        assert.equal(r.done, false, "the watch stream ended");
        const ev = r.value!.events[0];
        if (ev !== undefined) return dec.decode(ev.kv?.value);
      }
    },
    stop: () => ac.abort(),
  };
}

/**
 * A TCP proxy to `port` on its own thread (so a stall of ours does not stop
 * it) that delays everything the server sends by `delayMs`: a PING's answer
 * then arrives well after the PING was written.
 */
async function delayingProxy(port: number, delayMs: number): Promise<{ endpoint: string; stop: () => Promise<number> }> {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const net = require("node:net");
    const server = net.createServer((client) => {
      const up = net.connect(workerData.port, "127.0.0.1");
      client.on("data", (d) => up.write(d));
      up.on("data", (d) => setTimeout(() => client.destroyed || client.write(d), workerData.delayMs));
      const end = () => { client.destroy(); up.destroy(); };
      client.on("error", end); up.on("error", end); client.on("close", end); up.on("close", end);
    });
    server.listen(0, "127.0.0.1", () => parentPort.postMessage(server.address().port));
  `;
  const worker = new Worker(code, { eval: true, workerData: { port, delayMs } });
  const proxyPort = await new Promise<number>((resolve) => worker.once("message", resolve));
  return { endpoint: `127.0.0.1:${proxyPort}`, stop: () => worker.terminate() };
}

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // The client's own event loop is stalled.
  }
}

describe("keep-alive", () => {
  test("a stream held open for over a minute at the default settings is not cut by too_many_pings", async () => {
    const etcd = client(member.endpoint);
    const failures: EtcdError[] = [];
    const states: string[] = [];
    etcd.events.on("endpointFailed", (_, e) => failures.push(e));
    etcd.events.on("connection", (_, state, e) => states.push(`${state}${e ? `: ${e.message}` : ""}`));
    const k = uniquePrefix("long-stream") + "k";
    try {
      const w = await watch(etcd, k);
      // Several ping intervals with nothing else on the connection: the server sees only our pings.
      await new Promise((r) => setTimeout(r, 65_000));
      await etcd.put(k, "still here");
      assert.equal(await w.nextValue(), "still here");
      assert.deepEqual(failures.map(String), []);
      if (transportUnderTest === "http2") assert.deepEqual(states, ["connecting", "ready"]);
      w.stop();
    } finally {
      await etcd.close();
    }
  });

  test("a member that hangs while its session drains after GOAWAY is found within a ping cycle", { skip: transportUnderTest === "connect-node" ? "the built-in transport's keep-alive" : false }, async () => {
    const server = await startFakeServer();
    const proxy = await startProxy("127.0.0.1", server.port);
    const etcd = client(proxy.endpoint, { keepAliveTimeoutMs: 1000 });
    try {
      const t0 = Date.now();
      // A write: it is not retried elsewhere, so its end shows when the draining session was given up.
      const held = etcd.put("k", "v", { timeoutMs: 60_000 }).then(
        () => "answered",
        (e: unknown) => e,
      );
      await new Promise((r) => setTimeout(r, 300));
      // The member starts a graceful shutdown (the call may finish), then hangs.
      server.goaway();
      await new Promise((r) => setTimeout(r, 100));
      proxy.blackhole();
      const outcome = await held;
      const took = Date.now() - t0;
      assert.ok(outcome instanceof OutcomeUnknownError, String(outcome));
      assert.ok(took < MIN_PING_INTERVAL_MS + 1000 + 2000, `the hung draining session was found after ${took} ms`);
    } finally {
      await etcd.close();
      await proxy.close();
      await server.close();
    }
  });

  for (const when of ["before the PING is written", "after the PING is written, before its answer is read"] as const) {
    test(`an event-loop stall longer than keepAliveTimeoutMs ${when} does not condemn a healthy connection`, { skip: transportUnderTest === "connect-node" ? "the built-in transport's keep-alive" : false }, async () => {
      // Answers arrive 100 ms after the PING is written, so they are never already waiting when the stall ends.
      const proxy = await delayingProxy(member.clientPort, 100);
      const etcd = client(proxy.endpoint, { keepAliveTimeoutMs: 300 });
      const failures: EtcdError[] = [];
      etcd.events.on("endpointFailed", (_, e) => failures.push(e));
      let pinged = 0;
      // Patch the session as soon as it is ready: the first PING goes out with the first call.
      etcd.events.on("connection", (_, state) => {
        if (state !== "ready") return;
        const connection = (etcd as unknown as { pool: { slots: Array<{ connection: { session: H2Session } }> } }).pool.slots[0]!.connection;
        const session = connection.session;
        const ping = session.ping.bind(session);
        session.ping = (signal?: AbortSignal) => {
          const sent = ping(signal);
          pinged++;
          // Queued but not yet written: the write happens when the loop next turns. Written: by the next immediate.
          if (when === "before the PING is written") process.nextTick(() => busyWait(1000));
          else setImmediate(() => busyWait(1000));
          return sent;
        };
      });
      const k = uniquePrefix("stall") + "k";
      try {
        const w = await watch(etcd, k);
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(pinged, 1, "one PING went out, with the stall");
        await etcd.put(k, "alive");
        assert.equal(await w.nextValue(), "alive");
        assert.deepEqual(failures.map(String), [], "the connection was condemned");
        w.stop();
      } finally {
        await etcd.close();
        await proxy.stop();
      }
    });
  }
});
