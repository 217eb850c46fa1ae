// A broken or hostile gRPC server, through the whole client (endpoint pool,
// retry policy, error mapping) on the transport under test. Fake node:http2
// members send what etcd never would: a frame announcing 4 GiB, bytes that are
// not protobuf, a response without trailers, a megabyte grpc-message, half a
// frame and then silence, a GOAWAY mid-call. Each call must end in a typed
// error within its deadline, without allocating what the server announced;
// a write whose answer was lost or unreadable is OutcomeUnknownError and is
// never sent to the next member. (A plain RST after the request was read is
// checked RPC by RPC in write-safety.test.ts; here every hostile answer meets
// every write kind of the high-level API, the lease layer's own retries included.)
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { KV, Lease } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import {
  DeadlineExceededError,
  type Etcd,
  EtcdError,
  NoEndpointAvailableError,
  Op,
  OutcomeUnknownError,
  ResponseTooLargeError,
} from "../src/index.js";
import { startFakeServer, type FakeCall, type FakeServer } from "./fake-server.js";
import { client, transportUnderTest } from "./support.js";

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function fake(onCall: (c: FakeCall) => void | Promise<void>): Promise<FakeServer> {
  const s = await startFakeServer({ onCall });
  servers.push(s);
  return s;
}

/** What a misbehaving member does once it has read the request. */
type Misbehaviour = (c: FakeCall, server: FakeServer) => void;

/** Response headers of a gRPC answer; `trailers` false: the response will end without any. */
function respond(c: FakeCall, trailers: http2.OutgoingHttpHeaders | false): void {
  c.stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: trailers !== false });
  if (trailers !== false) c.stream.once("wantTrailers", () => c.stream.sendTrailers(trailers));
}

/** A gRPC frame prefix announcing `length` bytes, followed by `body`. */
function frame(length: number, body: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(5 + body.byteLength);
  b.writeUInt32BE(length, 1);
  b.set(body, 5);
  return b;
}

const HOSTILE: Record<string, Misbehaviour> = {
  // The receive limit is checked on the 5-byte prefix: nothing close to 4 GiB is ever allocated.
  "a frame header announcing a 4 GiB message": (c) => {
    respond(c, { "grpc-status": "0" });
    c.stream.write(frame(0xffffffff));
  },
  // Field 15 with wire type 7, which does not exist.
  "a message that is not protobuf": (c) => {
    respond(c, { "grpc-status": "0" });
    c.stream.end(frame(4, new Uint8Array([0x7f, 0xff, 0xff, 0xff])));
  },
  "a response that ends without trailers": (c) => {
    respond(c, false);
    c.stream.end(frame(0));
  },
  "half a frame, then silence": (c) => {
    respond(c, { "grpc-status": "0" });
    c.stream.write(frame(100, new Uint8Array(10)).subarray(0, 15));
  },
  "a GOAWAY covering the call, then the connection drops": (c, server) => {
    server.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR);
    setTimeout(() => c.stream.session?.destroy(), 20);
  },
};

/** Runs `call`, expecting it to fail within `withinMs`; returns the error. */
async function failure(call: Promise<unknown>, withinMs: number, what = "the call"): Promise<EtcdError> {
  const t0 = performance.now();
  const err = await call.then(
    (v) => assert.fail(`${what}: expected a failure, got ${JSON.stringify(v, (_, x: unknown) => (typeof x === "bigint" ? String(x) : x))}`),
    (e: unknown) => e,
  );
  const ms = performance.now() - t0;
  assert.ok(ms < withinMs, `failed after ${Math.round(ms)} ms, allowed ${withinMs} ms: ${String(err)}`);
  assert.ok(err instanceof EtcdError, `untyped: ${String(err)}`);
  return err;
}

const TIMEOUT_MS = 1000;
// A failure at the deadline still ends within this (timer and scheduling slack on a loaded machine).
const WITHIN_MS = TIMEOUT_MS + 1000;

describe(`a hostile server, reads (${transportUnderTest} transport)`, () => {
  test("a frame header announcing 4 GiB: ResponseTooLargeError at once, no allocation of the announced size", async () => {
    const s = await fake((c) => HOSTILE["a frame header announcing a 4 GiB message"]!(c, s));
    const etcd = client(s.endpoint, { requestTimeoutMs: TIMEOUT_MS });
    try {
      const before = process.memoryUsage().arrayBuffers;
      const err = await failure(etcd.get("k"), 1000);
      assert.ok(err instanceof ResponseTooLargeError, String(err));
      const grew = process.memoryUsage().arrayBuffers - before;
      assert.ok(grew < 64 << 20, `array buffers grew by ${grew} bytes`);
      assert.equal(s.calls.length, 1, "not retried: another try would be as large");
    } finally {
      await etcd.close();
    }
  });

  test("maxResponseBytes: a larger message is refused on its prefix, before its bytes are collected", async () => {
    // Announces 64 MiB and sends 1 MiB of it: the client must not wait for (or buffer) the rest.
    const s = await fake((c) => {
      respond(c, { "grpc-status": "0" });
      c.stream.write(frame(64 << 20, new Uint8Array(1 << 20)));
    });
    const etcd = client(s.endpoint, { requestTimeoutMs: TIMEOUT_MS, maxResponseBytes: 64 * 1024 });
    try {
      const err = await failure(etcd.get("k"), 1000);
      assert.ok(err instanceof ResponseTooLargeError, String(err));
    } finally {
      await etcd.close();
    }
  });

  test("a message that is not protobuf: a typed error (Internal) naming the parse failure, at once", async () => {
    const s = await fake((c) => HOSTILE["a message that is not protobuf"]!(c, s));
    const etcd = client(s.endpoint, { requestTimeoutMs: TIMEOUT_MS });
    try {
      const err = await failure(etcd.get("k"), 1000);
      assert.equal(err.code, 13 /* Internal */, String(err));
      assert.match(err.message, /illegal tag/);
      assert.equal(s.calls.length, 1, "not retried: the member answered");
    } finally {
      await etcd.close();
    }
  });

  test("a response without trailers: a typed error within the deadline", async () => {
    const s = await fake((c) => HOSTILE["a response that ends without trailers"]!(c, s));
    const etcd = client(s.endpoint, { requestTimeoutMs: TIMEOUT_MS });
    try {
      await failure(etcd.get("k"), WITHIN_MS);
    } finally {
      await etcd.close();
    }
  });

  test("a grpc-message of 4 MiB: a typed error whose message stays bounded", async () => {
    const huge = "etcdserver: " + "x".repeat(4 << 20);
    const s = await fake((c) => {
      respond(c, { "grpc-status": "9", "grpc-message": huge });
      c.stream.end();
    });
    const etcd = client(s.endpoint, { requestTimeoutMs: TIMEOUT_MS });
    try {
      const err = await failure(etcd.get("k"), WITHIN_MS);
      assert.ok(err.message.length < 64 * 1024, `message of ${err.message.length} characters`);
    } finally {
      await etcd.close();
    }
  });

  test("half a frame and then silence: DeadlineExceededError at the call's deadline", async () => {
    const s = await fake((c) => HOSTILE["half a frame, then silence"]!(c, s));
    const etcd = client(s.endpoint, { requestTimeoutMs: 10_000 });
    try {
      const t0 = performance.now();
      const err = await failure(etcd.get("k", { timeoutMs: 600 }), 600 + 1000);
      assert.ok(err instanceof DeadlineExceededError, String(err));
      assert.ok(performance.now() - t0 >= 550, "not before the deadline");
    } finally {
      await etcd.close();
    }
  });

  test("a GOAWAY mid-call and the connection dropped: the read goes to the next member and succeeds", async () => {
    const a = await fake((c) => HOSTILE["a GOAWAY covering the call, then the connection drops"]!(c, a));
    const b = await fake((c) => c.reply(KV.method.range.output, { count: 3n }));
    const etcd = client([a.endpoint, b.endpoint], { requestTimeoutMs: TIMEOUT_MS });
    try {
      assert.equal((await etcd.get("k")).count, 3n);
      assert.equal(a.calls.length, 1);
    } finally {
      await etcd.close();
    }
  });

  test("a GOAWAY mid-call on the only member: a typed error within the deadline", async () => {
    const a = await fake((c) => HOSTILE["a GOAWAY covering the call, then the connection drops"]!(c, a));
    const etcd = client(a.endpoint, { requestTimeoutMs: TIMEOUT_MS });
    try {
      const err = await failure(etcd.get("k"), WITHIN_MS);
      assert.ok(err instanceof DeadlineExceededError || err instanceof NoEndpointAvailableError, String(err));
    } finally {
      await etcd.close();
    }
  });

  test("a GOAWAY covering the call, then its answer: the call succeeds, the next one goes on a new connection", async () => {
    const a = await fake((c) => {
      c.stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, c.stream.id);
      setTimeout(() => c.reply(KV.method.range.output, { count: 5n }), 50);
    });
    const etcd = client(a.endpoint, { requestTimeoutMs: TIMEOUT_MS });
    try {
      assert.equal((await etcd.get("k")).count, 5n);
      assert.equal((await etcd.get("k")).count, 5n);
      assert.equal(a.accepted, 2);
    } finally {
      await etcd.close();
    }
  });
});

// Every write kind of the high-level API, and the method path it is sent on.
const WRITES: Array<[string, string, (etcd: Etcd) => Promise<unknown>]> = [
  ["put", "/etcdserverpb.KV/Put", (e) => e.put("k", "v")],
  ["delete", "/etcdserverpb.KV/DeleteRange", (e) => e.delete("k")],
  ["txn", "/etcdserverpb.KV/Txn", (e) => e.txn().then(Op.put("k", "v")).commit()],
  ["compact", "/etcdserverpb.KV/Compact", (e) => e.compact(5n)],
  ["lease grant", "/etcdserverpb.Lease/LeaseGrant", (e) => e.lease.grant(10)],
  ["lease revoke", "/etcdserverpb.Lease/LeaseRevoke", (e) => e.lease.revoke(7n)],
];

// The lease layer resends these itself, made idempotent (see src/lease/grant-revoke.ts): a grant
// carries its lease ID, so a resend can never create a second lease; revoking twice removes one lease.
const IDEMPOTENT_RESEND = new Set(["lease grant", "lease revoke"]);

// What the second member answers for each write: a success, so any resend would show as success.
const OK_REPLY: Record<string, Parameters<FakeCall["reply"]>[0]> = {
  "/etcdserverpb.KV/Put": KV.method.put.output,
  "/etcdserverpb.KV/DeleteRange": KV.method.deleteRange.output,
  "/etcdserverpb.KV/Txn": KV.method.txn.output,
  "/etcdserverpb.KV/Compact": KV.method.compact.output,
  "/etcdserverpb.Lease/LeaseRevoke": Lease.method.leaseRevoke.output,
};

describe(`a hostile server, writes (${transportUnderTest} transport)`, () => {
  const cases: Record<string, Misbehaviour> = {
    "a stream reset after the request was read": (c) => c.reset(http2.constants.NGHTTP2_INTERNAL_ERROR),
    ...HOSTILE,
  };
  for (const [what, misbehave] of Object.entries(cases)) {
    test(`${what}: every write kind is OutcomeUnknownError within its deadline and never sent again`, async () => {
      const a = await fake(async (c) => {
        await c.received(1);
        misbehave(c, a);
      });
      const b = await fake((c) => {
        if (c.path === "/etcdserverpb.Lease/LeaseGrant") c.reply(Lease.method.leaseGrant.output, { ID: 9n, TTL: 10n });
        else c.reply(OK_REPLY[c.path]!, {});
      });
      for (const [kind, path, write] of WRITES) {
        // A fresh client each time: each write must meet the faulty member first.
        const etcd = client([a.endpoint, b.endpoint], { requestTimeoutMs: TIMEOUT_MS });
        try {
          if (IDEMPOTENT_RESEND.has(kind)) {
            const t0 = performance.now();
            await write(etcd).catch((e: unknown) => assert.ok(e instanceof OutcomeUnknownError, `${kind}: ${String(e)}`));
            assert.ok(performance.now() - t0 < WITHIN_MS, `${kind} took ${Math.round(performance.now() - t0)} ms`);
            const [first] = a.callsTo(path);
            assert.ok(first !== undefined, `${kind} reached the faulty member`);
            const lease = (c: FakeCall): bigint => fromBinary(Lease.method.leaseGrant.input, c.messages[0]!).ID;
            for (const again of b.callsTo(path)) assert.equal(lease(again), lease(first), `${kind} resent for another lease ID`);
            b.calls.length = 0;
          } else {
            const err = await failure(write(etcd), WITHIN_MS, kind);
            assert.ok(err instanceof OutcomeUnknownError, `${kind}: ${String(err)}`);
            assert.equal(a.callsTo(path).length, 1, `${kind} reached the faulty member once`);
            assert.equal(b.callsTo(path).length, 0, `${kind} was sent again`);
          }
        } finally {
          await etcd.close();
        }
        a.calls.length = 0;
      }
    });
  }
});
