// A stream the server refused (REFUSED_STREAM: it did no work) is opened on
// the next member with exactly the messages the first attempt had already
// taken from the caller's input, then goes on with the same iterator; the
// input is ended (return()) when the stream ends. Checked with fake members.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { WatchRequestSchema, WatchResponseSchema, type WatchRequest } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { Etcd } from "../src/index.js";
import { startFakeServer, type FakeCall, type FakeServer } from "./fake-server.js";
import { transportUnderTest } from "./support.js";

const WATCH = "/etcdserverpb.Watch/Watch";
const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const enc = new TextEncoder();
const create = (key: string) => ({ requestUnion: { case: "createRequest" as const, value: { key: enc.encode(key) } } });
const keysOf = (c: FakeCall) =>
  c.messages.map((m) => {
    const r: WatchRequest = fromBinary(WatchRequestSchema, m);
    return r.requestUnion.case === "createRequest" ? new TextDecoder().decode(r.requestUnion.value.key) : "?";
  });

/**
 * A caller's input: two requests, a third once `open` is called, a fourth
 * after `more`; records whether it was ended. (An async generator can only be
 * ended at a `yield`: a `return()` while it awaits waits for its next yield.)
 */
function input() {
  let open!: () => void;
  let more!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const gate2 = new Promise<void>((r) => (more = r));
  const state = { ended: false, open, more };
  async function* gen() {
    try {
      yield create("a");
      yield create("b");
      await gate;
      yield create("c");
      await gate2;
      yield create("d");
      await new Promise(() => undefined);
    } finally {
      state.ended = true;
    }
  }
  return { state, iterable: gen() };
}

/** Two members: the first refuses every stream after reading two requests; the second serves it. */
async function members(serve: (c: FakeCall) => Promise<void>): Promise<[FakeServer, FakeServer]> {
  const refusing = await startFakeServer({
    onCall: async (c) => {
      await c.received(2);
      c.reset(http2.constants.NGHTTP2_REFUSED_STREAM);
    },
  });
  const serving = await startFakeServer({ onCall: serve });
  servers.push(refusing, serving);
  return [refusing, serving];
}

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("stream retries", () => {
  test("a refused stream is opened elsewhere with the whole input: replayed, then continued; ended with the stream", async () => {
    const [a, b] = await members(async (c) => {
      c.accept();
      await c.received(3);
      c.reply(WatchResponseSchema, { created: true, watchId: 1n });
    });
    const etcd = new Etcd({ endpoints: [a.endpoint, b.endpoint], transport: transportUnderTest });
    const { state, iterable } = input();
    try {
      const responses = etcd.raw.watch.watch(iterable);
      const it = responses[Symbol.asyncIterator]();
      const first = it.next();
      await waitFor("the second member to get the replayed requests", () => b.callsTo(WATCH)[0]?.messages.length === 2);
      assert.deepEqual(keysOf(a.callsTo(WATCH)[0]!), ["a", "b"]);
      assert.deepEqual(keysOf(b.callsTo(WATCH)[0]!), ["a", "b"], "the retry carries exactly what the first attempt took");
      state.open();
      const r = await first;
      assert.equal(r.done, false);
      assert.equal(r.value?.created, true);
      assert.deepEqual(keysOf(b.callsTo(WATCH)[0]!), ["a", "b", "c"], "then it goes on with the same input");
      assert.equal(a.callsTo(WATCH).length, 1);
      assert.equal((await it.next()).done, true);
      state.more();
      await waitFor("the input to be ended", () => state.ended);
    } finally {
      await etcd.close();
    }
  });

  test("the built-in transport ends the input when the stream ends, even if nobody reads the responses", { skip: transportUnderTest === "connect-node" ? "connect-node's request pump does not end its input" : false }, async () => {
    const [a, b] = await members(async (c) => {
      c.accept();
      await c.received(2);
      c.reply(WatchResponseSchema, { created: true, watchId: 1n });
    });
    const etcd = new Etcd({ endpoints: [a.endpoint, b.endpoint], transport: "http2" });
    const { state, iterable } = input();
    try {
      const it = etcd.raw.watch.watch(iterable)[Symbol.asyncIterator]();
      assert.equal((await it.next()).value?.created, true);
      // The server has ended the stream; the input is waiting at its gate. Once it yields again it must be ended.
      await new Promise((r) => setTimeout(r, 100));
      state.open();
      state.more();
      await waitFor("the input to be ended", () => state.ended);
    } finally {
      await etcd.close();
    }
  });
});
