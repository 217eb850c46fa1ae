// The dial, stage by stage: name lookup, TCP connect, TLS handshake and the
// HTTP/2 handshake each fail with their own reason and within their own
// timeout inside the overall dial timeout, and an abort ends any stage at
// once, leaving no socket behind. Loopback only: name lookups go through an
// injected resolver, never a real DNS server.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { connect as netConnect, type Socket } from "node:net";
import { Connection } from "../src/transport/connection.js";
import { dial, type LookupFunction } from "../src/transport/dial.js";
import { parseEndpoint } from "../src/cluster/endpoint.js";
import { EndpointUnavailableError } from "../src/errors.js";
import { freePort } from "./harness/index.js";
import { startFakeServer, type FakeServer } from "./fake-server.js";

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// The dial's own timers do not keep a process alive (its sockets and system lookups do); a resolver
// that never answers holds nothing, so the test holds the process open itself.
const hold = setInterval(() => undefined, 1000);
cleanups.push(() => clearInterval(hold));

const notFound: LookupFunction = () => Promise.reject(Object.assign(new Error("getaddrinfo ENOTFOUND etcd.example"), { code: "ENOTFOUND" }));
const never: LookupFunction = () => new Promise(() => undefined);
const loopback = (port: number): LookupFunction => () => Promise.resolve([{ address: "127.0.0.1", family: 4 }]).then((a) => (void port, a));

async function failure(p: Promise<unknown>): Promise<{ err: EndpointUnavailableError; ms: number }> {
  const t0 = performance.now();
  const err = await p.then(
    () => assert.fail("the dial should have failed"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof EndpointUnavailableError, String(err));
  return { err, ms: performance.now() - t0 };
}

/**
 * A listener whose accept queue is full and never drained (its process is
 * blocked without spinning): further TCP connects hang, as to a host that
 * drops SYNs.
 */
async function unansweringListener(): Promise<number> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["-e", "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>process.stdout.write(s.address().port+'\\n',()=>Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0)))"],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  cleanups.push(() => child.kill("SIGKILL"));
  const port = await new Promise<number>((resolve) => child.stdout!.once("data", (d) => resolve(Number(String(d).trim()))));
  // Fill the queue: connect until one connect does not complete.
  for (let i = 0; i < 16; i++) {
    const s: Socket = netConnect(port, "127.0.0.1");
    s.on("error", () => undefined);
    cleanups.push(() => s.destroy());
    const connected = await new Promise<boolean>((resolve) => {
      s.once("connect", () => resolve(true));
      setTimeout(() => resolve(false), 300);
    });
    if (!connected) return port;
  }
  throw new Error("could not fill the accept queue");
}

async function silentServer(): Promise<FakeServer> {
  const s = await startFakeServer({ silent: true });
  cleanups.push(() => s.close());
  return s;
}

describe("dial stages", () => {
  test("a name that does not exist: name-not-found at once", async () => {
    const { err, ms } = await failure(dial({ host: "etcd.example", port: 2379, address: "etcd.example:2379", timeoutMs: 5000, lookup: notFound }));
    assert.equal(err.reason, "name-not-found");
    assert.ok(ms < 200, `${ms} ms`);
  });

  test("a lookup that hangs: dns-timeout after lookupTimeoutMs, or after the overall timeout if that is shorter", async () => {
    const a = await failure(dial({ host: "etcd.example", port: 2379, address: "etcd.example:2379", timeoutMs: 5000, lookupTimeoutMs: 150, lookup: never }));
    assert.equal(a.err.reason, "dns-timeout");
    assert.ok(a.ms >= 140 && a.ms < 1000, `${a.ms} ms`);
    const b = await failure(dial({ host: "etcd.example", port: 2379, address: "etcd.example:2379", timeoutMs: 150, lookup: never }));
    assert.equal(b.err.reason, "dns-timeout");
    assert.ok(b.ms < 1000, `${b.ms} ms`);
  });

  test("nothing listening: refused at once", async () => {
    const port = await freePort();
    const { err, ms } = await failure(dial({ host: "127.0.0.1", port, address: `127.0.0.1:${port}`, timeoutMs: 5000 }));
    assert.equal(err.reason, "refused");
    assert.ok(ms < 500, `${ms} ms`);
  });

  test("a TCP connect that hangs: connect-timeout after connectTimeoutMs", async () => {
    const port = await unansweringListener();
    const { err, ms } = await failure(dial({ host: "localhost", port, address: `localhost:${port}`, timeoutMs: 5000, connectTimeoutMs: 200, lookup: loopback(port) }));
    assert.equal(err.reason, "connect-timeout");
    assert.ok(ms >= 190 && ms < 1500, `${ms} ms`);
  });

  test("a TLS handshake the server never answers: tls-timeout after tlsTimeoutMs", async () => {
    const server = await silentServer();
    const { err, ms } = await failure(
      dial({ host: "127.0.0.1", port: server.port, address: server.endpoint, tls: {}, timeoutMs: 5000, tlsTimeoutMs: 200 }),
    );
    assert.equal(err.reason, "tls-timeout");
    assert.ok(ms >= 190 && ms < 1500, `${ms} ms`);
    await server.waitNoSockets(1000);
  });

  test("an HTTP/2 handshake that never comes: dial-timeout within dialTimeoutMs", async () => {
    const server = await silentServer();
    const c = new Connection(parseEndpoint(server.endpoint), { dialTimeoutMs: 300, keepAliveIntervalMs: 0, keepAliveTimeoutMs: 1000 });
    const { err, ms } = await failure(Promise.resolve(c.acquire()));
    assert.equal(err.reason, "dial-timeout");
    assert.ok(ms < 1500, `${ms} ms`);
    await server.waitNoSockets(1000);
    await c.close();
  });

  test("an abort ends a dial in any stage at once, and closes what it opened", async () => {
    const stop = (ms: number): AbortSignal => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error("stop")), ms);
      return ac.signal;
    };
    const aborted = async (p: Promise<unknown>): Promise<void> => {
      const t0 = performance.now();
      await assert.rejects(p, /stop/);
      assert.ok(performance.now() - t0 < 1000);
    };
    // Lookup stage.
    await aborted(dial({ host: "etcd.example", port: 1, address: "etcd.example:1", timeoutMs: 10_000, signal: stop(100), lookup: never }));
    // TCP stage.
    const port = await unansweringListener();
    await aborted(dial({ host: "127.0.0.1", port, address: `127.0.0.1:${port}`, timeoutMs: 10_000, signal: stop(100) }));
    // TLS stage: the server sees its connection closed.
    const server = await silentServer();
    await aborted(dial({ host: "127.0.0.1", port: server.port, address: server.endpoint, tls: {}, timeoutMs: 10_000, signal: stop(100) }));
    await server.waitNoSockets(1000);
    // Already aborted: nothing is opened.
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await aborted(dial({ host: "127.0.0.1", port: server.port, address: server.endpoint, timeoutMs: 10_000, signal: ac.signal }));
  });
});
