// close() ends everything the client created: calls in flight and waiting for
// a dial reject with ClientClosedError, open streams end with it, dials in
// flight are abandoned, every socket is closed (draining and retired ones too)
// before the promise resolves, and the process can exit by itself.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { MemberListResponseSchema, RangeResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { ClientClosedError } from "../src/index.js";
import { startFakeServer, type FakeServer } from "./fake-server.js";
import { client, transportUnderTest } from "./support.js";

const RANGE = "/etcdserverpb.KV/Range";
const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});
async function fake(options: Parameters<typeof startFakeServer>[0] = {}): Promise<FakeServer> {
  const s = await startFakeServer(options);
  servers.push(s);
  return s;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The promise's outcome, or "pending" if it has not settled within `ms`. */
async function settleWithin<T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { err: unknown } | "pending"> {
  const timeout = sleep(ms).then(() => "pending" as const);
  return Promise.race([p.then((ok) => ({ ok }), (err: unknown) => ({ err })), timeout]);
}

describe("close()", () => {
  test("while a dial is in flight: the waiting call rejects with ClientClosedError and the socket is closed when close() resolves", async () => {
    const server = await fake({ handshakeDelayMs: 1000, onCall: (c) => c.reply(RangeResponseSchema, {}) });
    const etcd = client(server.endpoint);
    const call = etcd.get("k");
    await sleep(100);
    assert.equal(server.openSockets, 1, "the dial reached the server");
    const settled = settleWithin(call, 1000);
    await etcd.close();
    const outcome = await settled;
    assert.ok(outcome !== "pending" && "err" in outcome && outcome.err instanceof ClientClosedError, `call: ${JSON.stringify(outcome)}`);
    // The server notices the close once its (delayed) HTTP/2 side reads the socket.
    await server.waitNoSockets(2000);
    // connect-node writes a request as soon as TCP is up, before the server's SETTINGS (see deadline.test.ts).
    if (transportUnderTest === "http2") assert.equal(server.callsTo(RANGE).length, 0, "the request went out after close()");
  });

  test("the process exits by itself after close(), even with a dial in flight", async () => {
    // The handshake would finish long after the guard: only an abandoned dial lets the child exit in time.
    const server = await fake({ handshakeDelayMs: 20_000 });
    const index = fileURLToPath(new URL("../src/index.js", import.meta.url));
    const script = `
      const { Etcd } = await import(${JSON.stringify(index)});
      const etcd = new Etcd({ endpoints: ${JSON.stringify(server.endpoint)}, dialTimeoutMs: 60000, transport: ${JSON.stringify(process.env.ETCD_TRANSPORT ?? "http2")} });
      etcd.get("k").catch(() => {});
      setTimeout(() => etcd.close(), 100);
    `;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: "ignore" });
    const t0 = Date.now();
    const code = await new Promise<number | null | "hung">((resolve) => {
      const guard = setTimeout(() => {
        child.kill("SIGKILL");
        resolve("hung");
      }, 8000);
      child.once("exit", (c) => {
        clearTimeout(guard);
        resolve(c);
      });
    });
    assert.notEqual(code, "hung", `the process did not exit within 8 s (${Date.now() - t0} ms)`);
    assert.equal(code, 0);
  });

  test("a call in flight and an open stream end with ClientClosedError", async () => {
    const server = await fake({
      onCall: (c) => {
        if (c.path === "/etcdserverpb.Watch/Watch") c.accept();
        // Unary calls are held: never answered.
      },
    });
    const etcd = client(server.endpoint);
    const held = etcd.get("k", { timeoutMs: 30_000 });
    const stream = etcd.raw.watch.watch(
      (async function* () {
        yield { requestUnion: { case: "createRequest" as const, value: { key: new TextEncoder().encode("k") } } };
        await sleep(60_000);
      })(),
    );
    const it = stream[Symbol.asyncIterator]();
    const next = it.next();
    await sleep(200);
    assert.equal(server.calls.length, 2);
    const closed = etcd.close();
    const [a, b] = await Promise.all([settleWithin(held, 1000), settleWithin(next, 1000)]);
    assert.ok(a !== "pending" && "err" in a && a.err instanceof ClientClosedError, `unary: ${String(a !== "pending" && "err" in a ? a.err : a)}`);
    assert.ok(b !== "pending" && "err" in b && b.err instanceof ClientClosedError, `stream: ${String(b !== "pending" && "err" in b ? b.err : b)}`);
    await closed;
    // The server hears the close a moment later.
    await server.waitNoSockets(500);
  });

  test("a session draining after GOAWAY is destroyed by close(): its call ends, its socket closes", async () => {
    const server = await fake();
    const etcd = client(server.endpoint);
    const held = etcd.get("k", { timeoutMs: 30_000 });
    await sleep(200);
    assert.equal(server.calls.length, 1);
    // The server lets the call in flight finish: the client's session drains.
    server.goaway();
    await sleep(100);
    const closing = etcd.close();
    const outcome = await settleWithin(held, 1000);
    assert.ok(outcome !== "pending" && "err" in outcome && outcome.err instanceof ClientClosedError, `call: ${String(outcome !== "pending" && "err" in outcome ? outcome.err : outcome)}`);
    assert.equal(await settleWithin(closing, 1000).then((r) => (r === "pending" ? r : "settled")), "settled");
    await server.waitNoSockets(500);
  });

  test("endpoints dropped by auto-sync are closed by close(), not later", async () => {
    const second = await fake({ onCall: (c) => c.reply(RangeResponseSchema, {}) });
    const first = await fake({
      onCall: (c) => {
        if (c.path === "/etcdserverpb.Cluster/MemberList") {
          c.reply(MemberListResponseSchema, { members: [{ ID: 2n, name: "m2", clientURLs: [`http://${second.endpoint}`] }] });
        }
      },
    });
    const etcd = client(first.endpoint);
    try {
      assert.deepEqual(await etcd.sync(), [`http://${second.endpoint}`]);
      assert.equal(first.openSockets, 1, "the dropped endpoint's connection is still open (calls in flight may finish)");
    } finally {
      await etcd.close();
    }
    // Closed now, not 30 s later (the server hears it a moment after close() resolves).
    await first.waitNoSockets(500);
  });

  test("close hooks run before the connections close and are awaited; close() is idempotent; await using awaits it", async () => {
    const server = await fake({ onCall: (c) => c.reply(RangeResponseSchema, {}) });
    const order: string[] = [];
    {
      await using etcd = client(server.endpoint);
      await etcd.get("k");
      etcd.addCloseHook(async () => {
        // The transport still works inside a hook (a lease layer revokes here).
        await etcd.get("in-hook");
        order.push("hook");
      });
      const a = etcd.close();
      assert.equal(etcd.close(), a);
      await a;
      order.push("closed");
      await assert.rejects(etcd.get("k"), ClientClosedError);
    }
    assert.deepEqual(order, ["hook", "closed"]);
    await server.waitNoSockets(500);
    assert.equal(server.callsTo(RANGE).length, 2);
  });
});
