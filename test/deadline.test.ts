// A call's signal and deadline hold from the moment the call is made: while
// the connection is being dialled, across retries, and for any timeout value
// (0, Infinity, past setTimeout's 2^31 ms limit). Checked with fake servers
// whose handshake is slow or never comes, and with pure units.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RangeResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { AbortedError, DeadlineExceededError, InvalidOptionError } from "../src/index.js";
import { CallBudget, MAX_TIMER_MS, checkDuration, startTimer, stopTimer } from "../src/deadline.js";
import { startFakeServer, type FakeServer } from "./fake-server.js";
import { client, transportUnderTest } from "./support.js";

// connect-node's session manager counts a connection ready once TCP is up, before the server's
// HTTP/2 SETTINGS: a call it has queued goes out when the handshake completes, even if the caller
// gave up (the caller still hears at once). Only the built-in transport can promise "nothing sent".
const builtIn = transportUnderTest === "http2";

const RANGE = "/etcdserverpb.KV/Range";
const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});
async function fake(options: Parameters<typeof startFakeServer>[0]): Promise<FakeServer> {
  const s = await startFakeServer(options);
  servers.push(s);
  return s;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("timers and budgets", () => {
  test("a timer of Infinity never fires; one past 2^31 - 1 ms does not fire at once", async () => {
    let fired = 0;
    assert.equal(startTimer(Infinity, () => fired++), undefined);
    const long = startTimer(2 ** 31, () => fired++);
    const longer = startTimer(MAX_TIMER_MS + 1, () => fired++);
    await sleep(50);
    stopTimer(long);
    stopTimer(longer);
    assert.equal(fired, 0);
  });

  test("durations: Infinity allowed where it means no limit; negative, NaN and non-numbers refused", () => {
    assert.equal(checkDuration(Infinity, "x"), Infinity);
    assert.equal(checkDuration(0, "x"), 0);
    for (const bad of [-1, NaN, "100", null]) {
      assert.throws(() => checkDuration(bad, "timeoutMs"), (e: unknown) => e instanceof InvalidOptionError && /timeoutMs/.test(e.message), String(bad));
    }
    assert.throws(() => checkDuration(0, "x", { positive: true }), InvalidOptionError);
    assert.throws(() => checkDuration(Infinity, "x", { infinite: false }), InvalidOptionError);
  });

  test("a budget of 0 has already expired; an Infinity budget never does", async () => {
    const zero = new CallBudget(0, undefined);
    assert.ok(zero.stopReason() instanceof DeadlineExceededError);
    const none = new CallBudget(Infinity, undefined);
    assert.equal(none.stopReason(), undefined);
    assert.equal(none.transportTimeout(), undefined);
    assert.equal(await none.race(Promise.resolve(7)), 7);
  });

  test("race and sleep give way to the signal and the deadline, whichever comes first", async () => {
    const ac = new AbortController();
    const b = new CallBudget(10_000, ac.signal);
    const t0 = performance.now();
    setTimeout(() => ac.abort(new Error("stop")), 30);
    await assert.rejects(b.sleep(5000), AbortedError);
    assert.ok(performance.now() - t0 < 1000);
    const short = new CallBudget(50, undefined);
    await assert.rejects(short.race(new Promise(() => undefined)), DeadlineExceededError);
  });
});

describe("deadlines and aborts while the connection is being opened", () => {
  test("a signal that fires during a slow handshake ends the call then, and nothing is sent", async () => {
    const server = await fake({ handshakeDelayMs: 1000, onCall: (c) => c.reply(RangeResponseSchema, {}) });
    const etcd = client(server.endpoint);
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error("user gave up")), 100);
      const t0 = Date.now();
      await assert.rejects(etcd.get("k", { signal: ac.signal }), AbortedError);
      const took = Date.now() - t0;
      assert.ok(took < 900, `aborted after ${took} ms (the handshake takes 1000 ms)`);
      // Past the handshake: the request must never reach the server.
      await sleep(1300);
      if (builtIn) assert.equal(server.callsTo(RANGE).length, 0, "the aborted call was sent anyway");
    } finally {
      await etcd.close();
    }
  });

  test("a deadline that passes during a slow handshake ends the call then, and nothing is sent", async () => {
    const server = await fake({ handshakeDelayMs: 1000, onCall: (c) => c.reply(RangeResponseSchema, {}) });
    const etcd = client(server.endpoint);
    try {
      const t0 = Date.now();
      await assert.rejects(etcd.get("k", { timeoutMs: 200 }), DeadlineExceededError);
      const took = Date.now() - t0;
      assert.ok(took < 900, `deadline fired after ${took} ms (the handshake takes 1000 ms)`);
      await sleep(1300);
      if (builtIn) assert.equal(server.callsTo(RANGE).length, 0, "the timed-out call was sent anyway");
    } finally {
      await etcd.close();
    }
  });

  test("a member that accepts TCP and never answers: AbortSignal.timeout(200) ends the call at 200 ms, not at the dial timeout", async () => {
    const server = await fake({ silent: true });
    const etcd = client(server.endpoint, { dialTimeoutMs: 5000 });
    try {
      const t0 = Date.now();
      await assert.rejects(etcd.get("k", { signal: AbortSignal.timeout(200) }), AbortedError);
      const took = Date.now() - t0;
      assert.ok(took < 1000, `aborted after ${took} ms`);
    } finally {
      await etcd.close();
    }
  });

  test("an abort right after the call is made, on a fresh client, rejects the call", async () => {
    const server = await fake({ onCall: (c) => c.reply(RangeResponseSchema, {}) });
    const etcd = client(server.endpoint);
    try {
      const ac = new AbortController();
      const call = etcd.get("k", { signal: ac.signal });
      setImmediate(() => ac.abort());
      await assert.rejects(call, AbortedError);
    } finally {
      await etcd.close();
    }
  });

  test("timeoutMs 0 fails at once without sending; negative and NaN are refused", async () => {
    const server = await fake({ onCall: (c) => c.reply(RangeResponseSchema, {}) });
    const etcd = client(server.endpoint);
    try {
      await assert.rejects(etcd.get("k", { timeoutMs: 0 }), DeadlineExceededError);
      await assert.rejects(etcd.get("k", { timeoutMs: -1 }), InvalidOptionError);
      await assert.rejects(etcd.get("k", { timeoutMs: NaN }), InvalidOptionError);
      assert.equal(server.callsTo(RANGE).length, 0);
    } finally {
      await etcd.close();
    }
  });

  test("timeoutMs Infinity means no deadline, and 2^31 ms does not expire at once", async () => {
    const server = await fake({
      onCall: async (c) => {
        await sleep(100);
        c.reply(RangeResponseSchema, {});
      },
    });
    const etcd = client(server.endpoint);
    try {
      await etcd.get("k", { timeoutMs: Infinity });
      await etcd.get("k", { timeoutMs: 2 ** 31 });
      const [none, long] = server.callsTo(RANGE);
      assert.equal(none?.headers["grpc-timeout"], undefined, "no deadline, no grpc-timeout header");
      // connect's own timer cannot hold it, so connect-node gets it as a signal, without the header.
      if (builtIn) assert.ok(long?.headers["grpc-timeout"] !== undefined, "a long deadline is still sent to the server");
    } finally {
      await etcd.close();
    }
  });

  test("requestTimeoutMs: Infinity is a client without a default deadline; 0 and negative are refused", async () => {
    const server = await fake({ onCall: (c) => c.reply(RangeResponseSchema, {}) });
    const etcd = client(server.endpoint, { requestTimeoutMs: Infinity });
    try {
      await etcd.get("k");
      assert.equal(server.callsTo(RANGE)[0]?.headers["grpc-timeout"], undefined);
    } finally {
      await etcd.close();
    }
    assert.throws(() => client(server.endpoint, { requestTimeoutMs: 0 }), InvalidOptionError);
    assert.throws(() => client(server.endpoint, { requestTimeoutMs: -5 }), InvalidOptionError);
  });
});
