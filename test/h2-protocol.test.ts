// HTTP/2 protocol cases through the whole client on the built-in transport
// (its own HTTP/2 engine), against fake node:http2 members that change their
// mind mid-flight: GOAWAY with calls on both sides of the last stream ID,
// SETTINGS_MAX_CONCURRENT_STREAMS lowered with calls in flight, and a stream
// window raised under a request waiting for it; stream IDs running out; a
// TLS server that does not choose ALPN h2.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { KV } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { createServer as createTlsServer } from "node:tls";
import { EndpointUnavailableError, Etcd, EtcdError, NoEndpointAvailableError } from "../src/index.js";
import { makeCerts } from "./harness/index.js";
import { createClient } from "@connectrpc/connect";
import { parseEndpoint } from "../src/cluster/endpoint.js";
import { Connection } from "../src/transport/connection.js";
import { createHttp2Transport } from "../src/transport/http2-transport.js";
import type { H2SessionStats } from "../src/transport/h2/session.js";
import { startFakeServer, type FakeCall, type FakeServer } from "./fake-server.js";
import { transportUnderTest } from "./support.js";

const PUT = `/${KV.typeName}/${KV.method.put.name}`;
const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function server(options: Parameters<typeof startFakeServer>[0]): Promise<FakeServer> {
  const s = await startFakeServer(options);
  servers.push(s);
  return s;
}

/** The engine's numbers for the client's (only) endpoint; undefined while no session is open. */
function stats(etcd: Etcd): H2SessionStats | undefined {
  const slot = (etcd as unknown as { pool: { slots: Array<{ connection: { session?: { stats: H2SessionStats } } }> } }).pool.slots[0]!;
  return slot.connection.session?.stats;
}

/** Polls `check` every 5 ms until it holds, for at most `ms`. */
async function until(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const answer = (c: FakeCall): void => c.reply(KV.method.put.output, {});

describe("HTTP/2 protocol through the client", { skip: transportUnderTest === "connect-node" ? "the built-in transport's HTTP/2 engine" : false }, () => {
  test("GOAWAY mid-call: the call below the last stream ID finishes there; the write above it was never processed and is sent again on a new connection", async () => {
    const held: FakeCall[] = [];
    const sessions: unknown[] = [];
    const s = await server({
      onCall: (c) => {
        sessions.push(c.stream.session);
        // The first two calls wait for the test; any later one (the resend) is answered.
        if (held.length < 2) held.push(c);
        else answer(c);
      },
    });
    const etcd = new Etcd({ endpoints: s.endpoint, transport: "http2", requestTimeoutMs: 5000 });
    try {
      const first = etcd.put("a", "1");
      await until("the first call", () => held.length === 1);
      const second = etcd.put("b", "2");
      await until("the second call", () => held.length === 2);
      const [a, b] = held as [FakeCall, FakeCall];
      assert.ok(a.stream.id! < b.stream.id!);
      s.goaway(0, a.stream.id);
      await new Promise((r) => setTimeout(r, 50));
      answer(a);
      await first;
      await second;
      const puts = s.callsTo(PUT);
      assert.equal(puts.length, 3, "the write above the last stream ID was sent once more");
      assert.equal(s.accepted, 2, "on a second connection");
      assert.notEqual(sessions[2], sessions[0]);
      assert.equal(new TextDecoder().decode(puts[2]!.messages[0]!.subarray(2, 3)), "b");
    } finally {
      await etcd.close();
    }
  });

  test("SETTINGS_MAX_CONCURRENT_STREAMS lowered mid-flight: calls beyond it queue in the client and all succeed", async () => {
    let open = 0;
    let most = 0;
    const s = await server({
      onCall: (c) => {
        open++;
        most = Math.max(most, open);
        setTimeout(() => {
          open--;
          answer(c);
        }, 20);
      },
    });
    const etcd = new Etcd({ endpoints: s.endpoint, transport: "http2", requestTimeoutMs: 5000 });
    try {
      await etcd.put("warm", "up");
      s.settings({ maxConcurrentStreams: 2 });
      await until("the client to see the new limit", () => stats(etcd)?.peerMaxConcurrentStreams === 2);
      most = 0;
      let queued = 0;
      const calls = Array.from({ length: 20 }, (_, i) => etcd.put(`k${i}`, "v"));
      await new Promise<void>((resolve) => setImmediate(resolve));
      queued = stats(etcd)!.queuedStreams;
      await Promise.all(calls);
      assert.ok(queued >= 15, `the client queued the calls beyond the limit (${queued} queued)`);
      assert.ok(most <= 2, `the server saw ${most} calls at once`);
      assert.equal(s.callsTo(PUT).length, 21);
    } finally {
      await etcd.close();
    }
  });

  test("a stream window raised mid-flight (SETTINGS_INITIAL_WINDOW_SIZE) releases the request waiting for it", async () => {
    // The server starts with no window at all: the request's HEADERS go out, its DATA waits.
    const s = await server({ settings: { initialWindowSize: 0 }, onCall: async (c) => {
      await c.received(1);
      answer(c);
    } });
    const etcd = new Etcd({ endpoints: s.endpoint, transport: "http2", requestTimeoutMs: 5000 });
    try {
      const put = etcd.put("k", "x".repeat(256));
      await until("the call", () => s.calls.length === 1);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(s.calls[0]!.messages.length, 0, "no request data beyond the window");
      assert.equal(stats(etcd)!.blockedStreams, 1);
      s.settings({ initialWindowSize: 65535 });
      await put;
      assert.equal(s.calls[0]!.messages.length, 1);
    } finally {
      await etcd.close();
    }
  });

  test("a TLS server that does not negotiate ALPN h2 fails the dial clearly (reason protocol), without waiting for the dial timeout", async () => {
    const certs = makeCerts();
    // Completes TLS without ALPN, then says nothing (as an HTTP/1 server would, waiting for a request).
    const tls = createTlsServer({ key: readFileSync(certs.serverKeyFile), cert: readFileSync(certs.serverCertFile) }, (socket) => socket.on("error", () => undefined));
    await new Promise<void>((r) => tls.listen(0, "127.0.0.1", () => r()));
    const port = (tls.address() as { port: number }).port;
    const etcd = new Etcd({ endpoints: `https://127.0.0.1:${port}`, transport: "http2", tls: { ca: certs.ca }, dialTimeoutMs: 3000, requestTimeoutMs: 5000 });
    const t0 = Date.now();
    try {
      const e: unknown = await etcd.get("k").then(
        () => assert.fail("the read should have failed"),
        (err: unknown) => err,
      );
      assert.ok(e instanceof EtcdError, String(e));
      const inner = e instanceof NoEndpointAvailableError ? e.errors[e.errors.length - 1] : e;
      assert.ok(inner instanceof EndpointUnavailableError, String(inner));
      assert.equal(inner.reason, "protocol");
      assert.match(inner.message, /ALPN/);
      assert.ok(Date.now() - t0 < 2000, `failed after ${Date.now() - t0} ms`);
    } finally {
      await etcd.close();
      tls.close();
    }
  });

  test("stream IDs running out: a new connection is opened before they do; no call is refused, lost or sent twice", async () => {
    const s = await server({ onCall: answer });
    // 21 stream IDs per connection (1..41); the replacement is opened when fewer than 2 x 5 remain.
    const connection = new Connection(parseEndpoint(s.endpoint), {
      dialTimeoutMs: 2000,
      keepAliveIntervalMs: 0,
      keepAliveTimeoutMs: 1000,
      maxStreamId: 41,
      streamIdReserve: 5,
    });
    const kv = createClient(KV, createHttp2Transport(connection));
    try {
      // Bursts of 5 at once, the most the reserve is sized for.
      for (let round = 0; round < 10; round++) {
        await Promise.all(Array.from({ length: 5 }, (_, i) => kv.put({ key: new TextEncoder().encode(`k${round}.${i}`) }, { timeoutMs: 2000 })));
      }
      assert.equal(s.callsTo(PUT).length, 50, "every call was sent once");
      assert.ok(s.accepted >= 2, `${s.accepted} connections`);
    } finally {
      await connection.close();
    }
  });
});
