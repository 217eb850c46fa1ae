// The HTTP/2 engine against small node:http2 servers on 127.0.0.1 (and raw
// TCP servers where node:http2 cannot produce the frames a test needs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as http2 from "node:http2";
import type * as net from "node:net";
import { EndpointUnavailableError } from "../../src/errors.js";
import { ErrorCode } from "../../src/transport/h2/errors.js";
import { H2Session } from "../../src/transport/h2/session.js";
import { collector, connect, exchange, field, frame, requestHeaders, SERVER_PREFACE, sleep, startH2Server, startRawServer, until, type Collected } from "./support.js";
import { ClientFrames, settingsPayload } from "./raw-frames.js";

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

/** Fails instead of hanging when `p` does not settle in time. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

function grpcOk(stream: http2.ServerHttp2Stream, body: Buffer | string): void {
  stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(body);
}

test("unary round trip: headers, body, trailers, one close", async () => {
  const server = await startH2Server((stream, headers) => {
    const parts: Buffer[] = [];
    stream.on("data", (c: Buffer) => parts.push(c));
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "x-path": String(headers[":path"]) }));
      stream.end(Buffer.concat([Buffer.from("echo:"), ...parts]));
    });
  });
  const session = await connect(server.port);
  await session.ready;
  const { stream, done } = exchange(session, requestHeaders(server.authority, "/svc/Method"), { body: Buffer.from("hello") });
  const r = await done;
  assert.equal(r.reason, "done");
  assert.equal(stream.sent, true);
  assert.equal(field(r.headers, ":status"), "200");
  assert.equal(r.data.toString(), "echo:hello");
  assert.equal(field(r.trailers, "grpc-status"), "0");
  assert.equal(field(r.trailers, "x-path"), "/svc/Method");
  assert.deepEqual(r.events, ["headers", "data", "trailers", "close"]);
  await session.close();
  assert.equal(session.state, "closed");
  await server.close();
});

test("many requests in flight share few socket writes, and each gets its own answer", async () => {
  const server = await startH2Server((stream, headers) => grpcOk(stream, String(headers["x-n"])));
  const session = await connect(server.port);
  await session.ready;
  const headers = requestHeaders(server.authority, "/svc/M");
  const before = session.stats.writes;
  const calls = Array.from({ length: 100 }, (_, i) => exchange(session, headers, { body: Buffer.from("x"), extraHeaders: ["x-n", String(i)] }).done);
  const results = await Promise.all(calls);
  results.forEach((r, i) => assert.equal(r.data.toString(), String(i)));
  // All 100 requests were issued in one tick: they leave in one batch (a few writes at most, with SETTINGS/WINDOW_UPDATE acks).
  assert.ok(session.stats.writes - before <= 10, `${session.stats.writes - before} writes for 100 requests`);
  await session.close();
  await server.close();
});

test("bidi stream: request messages and response messages interleave", async () => {
  const server = await startH2Server((stream) => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.on("data", (c: Buffer) => stream.write(Buffer.concat([Buffer.from("re:"), c])));
    stream.on("end", () => stream.end());
  });
  const session = await connect(server.port);
  const got: string[] = [];
  let wake: (() => void) | undefined;
  const { handler, done } = collector((c) => {
    if (c.length > 0) {
      got.push(c.toString());
      wake?.();
    }
  });
  const stream = session.request(requestHeaders(server.authority, "/svc/Bidi"), handler);
  for (const m of ["one", "two", "three"]) {
    const arrived = new Promise<void>((r) => (wake = r));
    assert.equal(stream.write(Buffer.from(m)), true);
    await within(arrived, 5000, `echo of ${m}`);
  }
  assert.deepEqual(got, ["re:one", "re:two", "re:three"]);
  stream.end();
  const r = await within(done, 5000, "stream end");
  assert.equal(r.reason, "done");
  assert.equal(field(r.trailers, "grpc-status"), "0");
  await session.close();
  await server.close();
});

test("REFUSED_STREAM closes the stream as refused (never processed, safe to retry)", async () => {
  const server = await startH2Server((stream) => stream.close(NGHTTP2_REFUSED_STREAM));
  const session = await connect(server.port);
  const r = await exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x") }).done;
  assert.equal(r.reason, "refused");
  assert.equal(r.code, ErrorCode.REFUSED_STREAM);
  await session.close();
  await server.close();
});

test("a reset after the server read the request is 'reset' (outcome unknown), not refused", async () => {
  const server = await startH2Server((stream) => {
    stream.resume();
    stream.on("end", () => stream.close(NGHTTP2_INTERNAL_ERROR));
  });
  const session = await connect(server.port);
  const { stream, done } = exchange(session, requestHeaders(server.authority, "/svc/Put"), { body: Buffer.from("write me") });
  const r = await done;
  assert.equal(r.reason, "reset");
  assert.equal(r.code, ErrorCode.INTERNAL_ERROR);
  assert.equal(stream.sent, true);
  // The connection itself is fine.
  assert.equal(session.state, "ready");
  await session.close();
  await server.close();
});

test("GOAWAY in two phases: first no new streams, then streams above the last ID refused; the rest finish", async () => {
  const held: http2.ServerHttp2Stream[] = [];
  const server = await startH2Server((stream) => {
    stream.resume();
    held.push(stream);
  });
  const session = await connect(server.port);
  await session.ready;
  const headers = requestHeaders(server.authority, "/svc/M");
  const a = exchange(session, headers, { body: Buffer.from("a") });
  const b = exchange(session, headers, { body: Buffer.from("b") });
  const c = exchange(session, headers, { body: Buffer.from("c") });
  await until(() => held.length === 3, 5000, "three streams at the server");
  const goaways: Array<[number, number]> = [];
  session.on("goaway", (code, last) => goaways.push([code, last]));
  const srv = server.sessions[0]!;
  // Phase 1: "stop opening streams" (last stream ID 2^31-1).
  srv.goaway(NGHTTP2_NO_ERROR, 2 ** 31 - 1);
  await until(() => goaways.length === 1, 5000, "first GOAWAY");
  assert.equal(session.state, "draining");
  assert.equal(session.acceptsRequests, false);
  const late = await exchange(session, headers, { body: Buffer.from("late") }).done;
  assert.equal(late.reason, "refused", "a new request after GOAWAY goes elsewhere");
  // Phase 2: the real last stream ID: stream 5 ("c") was never processed.
  srv.goaway(NGHTTP2_NO_ERROR, 3);
  const rc = await within(c.done, 5000, "stream above the last ID");
  assert.equal(rc.reason, "refused");
  assert.equal(c.stream.id, 5);
  // Streams up to the last ID finish normally.
  for (const s of held.slice(0, 2)) grpcOk(s, "fine");
  const [ra, rb] = await within(Promise.all([a.done, b.done]), 5000, "streams below the last ID");
  assert.equal(ra.reason, "done");
  assert.equal(rb.data.toString(), "fine");
  assert.deepEqual(goaways, [[0, 2 ** 31 - 1], [0, 3]]);
  // Nothing left open: the session closes by itself, cleanly.
  await until(() => session.state === "closed", 5000, "session closed");
  assert.equal(session.error, undefined);
  await server.close();
});

test("GOAWAY with an error code, then the connection drops: the stream it covered is 'lost', the error says why", async () => {
  const server = await startH2Server((stream) => {
    stream.resume();
    const session = stream.session!;
    session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 0, Buffer.from("too_many_pings"));
    setTimeout(() => session.destroy(), 50);
  });
  const session = await connect(server.port);
  const closed = new Promise<EndpointUnavailableError | undefined>((r) => session.once("close", r));
  const first = exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x") });
  await new Promise((r) => session.once("goaway", r));
  const after = await exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("y") }).done;
  assert.equal(after.reason, "refused");
  const r = await within(first.done, 5000, "first call");
  assert.equal(r.reason, "lost", "the server may have processed it (it was within the GOAWAY's last stream ID)");
  const err = await within(closed, 5000, "close");
  assert.ok(err instanceof EndpointUnavailableError);
  assert.equal(err.reason, "goaway");
  assert.match(err.message, /ENHANCE_YOUR_CALM: too_many_pings/);
  await server.close();
});

test("MAX_CONCURRENT_STREAMS: requests beyond it queue, and start when the server raises it mid-flight", async () => {
  const held: http2.ServerHttp2Stream[] = [];
  let peak = 0;
  const server = await startH2Server(
    (stream) => {
      stream.resume();
      held.push(stream);
      const open = held.filter((s) => !s.closed).length;
      peak = Math.max(peak, open);
    },
    { maxConcurrentStreams: 2 },
  );
  const session = await connect(server.port);
  await session.ready;
  assert.equal(session.stats.peerMaxConcurrentStreams, 2);
  const headers = requestHeaders(server.authority, "/svc/M");
  const calls = Array.from({ length: 6 }, (_, i) => exchange(session, headers, { body: Buffer.from(String(i)) }));
  await until(() => held.length === 2, 5000, "two streams at the server");
  await sleep(50);
  assert.equal(held.length, 2, "no more than the limit was opened");
  assert.equal(session.stats.queuedStreams, 4);
  server.sessions[0]!.settings({ maxConcurrentStreams: 4 });
  await until(() => held.length === 4, 5000, "two more streams after the limit rose");
  assert.equal(session.stats.queuedStreams, 2);
  // Finishing streams frees slots for the rest.
  for (let i = 0; i < 6; i++) {
    await until(() => held.length > i, 5000, `stream ${i}`);
    grpcOk(held[i]!, `r${i}`);
  }
  const results = await within(Promise.all(calls.map((c) => c.done)), 5000, "all calls");
  assert.deepEqual(results.map((r) => r.data.toString()), ["r0", "r1", "r2", "r3", "r4", "r5"]);
  assert.ok(peak <= 4, `peak ${peak}`);
  await session.close();
  await server.close();
});

/**
 * A raw server that grants each stream a 100-byte window (and raises the
 * connection's, so only the stream's limits), and a session connected to it.
 */
async function smallStreamWindow(): Promise<{ server: Awaited<ReturnType<typeof startRawServer>>; frames: () => ClientFrames; session: H2Session }> {
  let client: ClientFrames | undefined;
  const server = await startRawServer((socket) => {
    client = new ClientFrames(socket);
    socket.write(Buffer.concat([frame(4, 0, 0, settingsPayload([[4, 100]])), frame(8, 0, 0, Buffer.from([0, 0x10, 0, 0]))]));
  });
  const session = await connect(server.port);
  await session.ready;
  return { server, frames: () => client!, session };
}

test("SETTINGS_INITIAL_WINDOW_SIZE changes apply to open streams (down to a negative window and back up)", async () => {
  const { server, session, frames: clientFrames } = await smallStreamWindow();
  const client = clientFrames();
  const body = Buffer.alloc(10_000, 7);
  const { stream, done } = exchange(session, requestHeaders(`127.0.0.1:${server.port}`, "/svc/Big"), { body });
  await until(() => client.dataBytes(1) === 100, 5000, "first 100 bytes");
  await sleep(50);
  assert.equal(client.dataBytes(1), 100, "nothing beyond the stream window");
  assert.equal(session.stats.blockedStreams, 1);
  // Lower the initial window by 60: the stream's window goes to -60.
  const sock = server.sockets[0]!;
  sock.write(frame(4, 0, 0, settingsPayload([[4, 40]])));
  // +100 on the stream: -60 + 100 = 40 more bytes.
  sock.write(frame(8, 0, 1, Buffer.from([0, 0, 0, 100])));
  await until(() => client.dataBytes(1) === 140, 5000, "40 more bytes");
  await sleep(50);
  assert.equal(client.dataBytes(1), 140);
  // Raise it far: the rest flows.
  sock.write(frame(4, 0, 0, settingsPayload([[4, 20_000]])));
  await until(() => client.dataBytes(1) === 10_000 && client.ended(1), 5000, "the whole body");
  assert.deepEqual(client.data(1), body);
  sock.write(frame(1, 0x5, 1, Buffer.from([0x88]))); // :status 200, END_STREAM
  const r = await within(done, 5000, "response");
  assert.equal(r.reason, "done");
  assert.equal(stream.buffered, 0);
  session.destroy();
  await server.close();
});

test("small writes queued behind flow control go out together in few DATA frames, in order, when the stream's window opens; later writes go at once", async () => {
  const { server, session, frames: clientFrames } = await smallStreamWindow();
  const client = clientFrames();
  const { stream, done } = exchange(session, requestHeaders(`127.0.0.1:${server.port}`, "/svc/Bidi"), { end: false });
  // 500 messages of 20 bytes (numbered): 100 bytes fit the window, the rest queue.
  const sent: Buffer[] = [];
  for (let i = 0; i < 500; i++) {
    const m = Buffer.alloc(20, i & 0xff);
    m.writeUInt16BE(i, 0);
    sent.push(m);
    stream.write(m);
  }
  await until(() => client.dataBytes(1) === 100, 5000, "the first window");
  const before = client.ofType(0).length;
  server.sockets[0]!.write(frame(8, 0, 1, Buffer.from([0, 0x01, 0, 0]))); // +65536 on the stream
  await until(() => client.dataBytes(1) === 10_000, 5000, "the rest");
  const frames = client.ofType(0).length - before;
  assert.ok(frames <= 2, `9,900 queued bytes went out in ${frames} DATA frames (at most 16 KiB each), not one per write`);
  assert.deepEqual(client.data(1), Buffer.concat(sent), "every byte, in order");
  // The stream's window is open again: what is written now goes out without waiting for another update.
  stream.write(Buffer.from("tail"));
  stream.end();
  await until(() => client.ended(1), 2000, "the tail and END_STREAM");
  assert.equal(client.data(1).subarray(10_000).toString(), "tail");
  server.sockets[0]!.write(frame(1, 0x5, 1, Buffer.from([0x88])));
  assert.equal((await within(done, 5000, "response")).reason, "done");
  session.destroy();
  await server.close();
});

test("a large response flows through small windows (WINDOW_UPDATE as the reader takes it)", async () => {
  const big = Buffer.alloc(5 << 20);
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32BE(i, i);
  const server = await startH2Server((stream) => {
    stream.resume();
    stream.on("end", () => grpcOk(stream, big));
  });
  const session = await connect(server.port, { streamWindowBytes: 65535, connectionWindowBytes: 131072 });
  const r = await within(exchange(session, requestHeaders(server.authority, "/svc/Range"), { body: Buffer.from("x") }).done, 20000, "5 MiB response");
  assert.equal(r.reason, "done");
  assert.equal(createHash("sha256").update(r.data).digest("hex"), createHash("sha256").update(big).digest("hex"));
  await session.close();
  await server.close();
});

test("a paused (slow) reader holds back only its own stream, within its window", async () => {
  const size = 2 << 20;
  const server = await startH2Server((stream) => {
    stream.resume();
    stream.on("end", () => grpcOk(stream, Buffer.alloc(size, 1)));
  });
  // Stream and connection windows equal: if the connection window waited for the paused
  // reader, every other stream would stall behind it.
  const win = 128 * 1024;
  const session = await connect(server.port, { streamWindowBytes: win, connectionWindowBytes: win });
  const headers = requestHeaders(server.authority, "/svc/Watch");
  let slowBytes = 0;
  const slow = collector((c) => (slowBytes += c.length));
  const slowStream = session.request(headers, slow.handler, { body: Buffer.from("x") });
  slowStream.pause();
  const fast = await within(exchange(session, headers, { body: Buffer.from("y") }).done, 10000, "the other stream while one is paused");
  assert.equal(fast.reason, "done");
  assert.equal(fast.data.length, size);
  await sleep(100);
  assert.ok(slowBytes <= win, `paused stream got ${slowBytes} bytes, more than its ${win}-byte window`);
  assert.equal(slowStream.closed, false);
  slowStream.resume();
  const r = await within(slow.done, 10000, "the paused stream after resume");
  assert.equal(r.data.length, size);
  await session.close();
  await server.close();
});

test("a large header goes out in CONTINUATION frames and a large response header comes back in them", async () => {
  // Random base64url does not compress below 16 KiB (the frame size) even with Huffman coding.
  const { randomBytes } = await import("node:crypto");
  const token = randomBytes(24 * 1024).toString("base64url");
  const big = randomBytes(24 * 1024).toString("base64url");
  let seen: string | undefined;
  const server = await startH2Server(
    (stream, headers) => {
      seen = headers["token"] as string;
      stream.resume();
      stream.on("end", () => {
        stream.respond({ ":status": 200, "x-big": big }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end("ok");
      });
    },
    { maxHeaderListSize: 1 << 20 },
  );
  const session = await connect(server.port, { maxHeaderListBytes: 256 * 1024 });
  const framesBefore = session.stats.framesReceived;
  const r = await exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x"), extraHeaders: ["token", token] }).done;
  assert.equal(r.reason, "done");
  assert.equal(seen, token);
  assert.equal(field(r.headers, "x-big"), big);
  // HEADERS + at least one CONTINUATION, DATA, trailers (and maybe a SETTINGS ack).
  assert.ok(session.stats.framesReceived - framesBefore >= 4);
  // The same token again: still right (its encoding is cached).
  const r2 = await exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x"), extraHeaders: ["token", token] }).done;
  assert.equal(r2.reason, "done");
  assert.equal(seen, token);
  await session.close();
  await server.close();
});

test("request headers over the server's SETTINGS_MAX_HEADER_LIST_SIZE fail locally with RequestTooLargeError", async () => {
  const { RequestTooLargeError } = await import("../../src/errors.js");
  const server = await startH2Server((stream) => grpcOk(stream, "x"), { maxHeaderListSize: 4096 });
  const session = await connect(server.port);
  await session.ready;
  const { stream, done } = exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x"), extraHeaders: ["token", "t".repeat(8000)] });
  const r = await done;
  assert.equal(r.reason, "error");
  assert.ok(r.error instanceof RequestTooLargeError);
  assert.equal(stream.sent, false);
  assert.equal((await exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x") }).done).reason, "done");
  await session.close();
  await server.close();
});

test("the server's PING is answered; our ping() measures the round trip", async () => {
  const server = await startH2Server((stream) => grpcOk(stream, "x"));
  const session = await connect(server.port);
  await session.ready;
  await until(() => server.sessions.length === 1, 5000, "server session");
  const rtt = await within(
    new Promise<number>((resolve, reject) => server.sessions[0]!.ping((err, duration) => (err ? reject(err) : resolve(duration)))),
    5000,
    "server ping",
  );
  assert.ok(rtt >= 0);
  assert.equal(session.stats.pingsAnswered, 1);
  const ours = await within(session.ping(), 5000, "our ping");
  assert.ok(ours >= 0 && ours < 5000);
  assert.equal(session.rttMs, ours);
  assert.ok(session.stats.lastPingSentAt !== undefined);
  // A ping honours its signal.
  const ac = new AbortController();
  const p = session.ping(ac.signal);
  ac.abort(new Error("stop"));
  await assert.rejects(p, /stop/);
  await session.close();
  await server.close();
});

test("a stalled handshake (TCP accepted, no SETTINGS) fails within the handshake timeout; queued requests are refused", async () => {
  const server = await startRawServer(() => {});
  const t0 = Date.now();
  const session = await connect(server.port, { handshakeTimeoutMs: 200 });
  const r = exchange(session, requestHeaders(`127.0.0.1:${server.port}`, "/svc/M"), { body: Buffer.from("x") });
  await assert.rejects(session.ready, (e: unknown) => e instanceof EndpointUnavailableError && e.reason === "dial-timeout");
  assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
  assert.equal((await r.done).reason, "refused");
  assert.equal(session.state, "closed");
  assert.equal(session.socket.destroyed, true);
  await server.close();
});

test("stream IDs: 'exhausting' is signalled before they run out; then the session drains and closes", async () => {
  const server = await startH2Server((stream) => {
    stream.resume();
    stream.on("end", () => grpcOk(stream, "x"));
  });
  const session = await connect(server.port, { maxStreamId: 9, streamIdReserve: 2 });
  await session.ready;
  let exhausting = 0;
  session.on("exhausting", () => exhausting++);
  const headers = requestHeaders(server.authority, "/svc/M");
  const results: Collected[] = [];
  for (let i = 0; i < 3; i++) results.push(await exchange(session, headers, { body: Buffer.from("x") }).done); // IDs 1, 3, 5
  assert.equal(exhausting, 0);
  results.push(await exchange(session, headers, { body: Buffer.from("x") }).done); // 7: two IDs left
  assert.equal(exhausting, 1);
  assert.equal(session.acceptsRequests, true);
  const last = exchange(session, headers, { body: Buffer.from("x") }); // 9, the last
  assert.equal(session.state, "draining");
  const refused = await exchange(session, headers, { body: Buffer.from("x") }).done;
  assert.equal(refused.reason, "refused");
  assert.equal((await last.done).reason, "done");
  assert.ok(results.every((r) => r.reason === "done"));
  await until(() => session.state === "closed", 5000, "closed after the last stream");
  assert.equal(session.error, undefined);
  await server.close();
});

test("cancel: an open stream is reset with CANCEL; a queued one sends nothing", async () => {
  const resets: number[] = [];
  const opened: number[] = [];
  const server = await startH2Server(
    (stream) => {
      opened.push(stream.id!);
      stream.resume();
      stream.on("close", () => resets.push(stream.rstCode));
    },
    { maxConcurrentStreams: 1 },
  );
  const session = await connect(server.port);
  await session.ready;
  const headers = requestHeaders(server.authority, "/svc/M");
  const a = exchange(session, headers, { body: Buffer.from("a") });
  const b = exchange(session, headers, { body: Buffer.from("b") });
  await until(() => opened.length === 1, 5000, "first stream");
  assert.equal(b.stream.id, 0);
  b.stream.cancel();
  assert.equal((await b.done).reason, "cancelled");
  a.stream.cancel(new Error("caller gave up"));
  const ra = await a.done;
  assert.equal(ra.reason, "cancelled");
  assert.match(String(ra.error), /caller gave up/);
  await until(() => resets.length === 1, 5000, "RST at the server");
  assert.equal(resets[0], http2.constants.NGHTTP2_CANCEL);
  await sleep(50);
  assert.deepEqual(opened, [1], "the cancelled queued request never reached the server");
  await session.close();
  await server.close();
});

test("destroy(): sent streams are 'lost', queued ones 'refused', pings reject, the socket is gone", async () => {
  const server = await startH2Server((stream) => stream.resume(), { maxConcurrentStreams: 1 });
  const session = await connect(server.port);
  await session.ready;
  const headers = requestHeaders(server.authority, "/svc/M");
  const a = exchange(session, headers, { body: Buffer.from("a") });
  const b = exchange(session, headers, { body: Buffer.from("b") });
  await until(() => a.stream.sent, 5000, "first stream sent");
  const ping = session.ping();
  const err = new EndpointUnavailableError("test", "closed", "bye");
  session.destroy(err);
  const [ra, rb] = await Promise.all([a.done, b.done]);
  assert.equal(ra.reason, "lost");
  assert.equal(ra.error, err);
  assert.equal(rb.reason, "refused");
  await assert.rejects(ping, (e) => e === err);
  assert.equal(session.socket.destroyed, true);
  assert.equal((await exchange(session, headers).done).reason, "refused");
  await server.close();
});

test("close(): graceful; the open stream finishes, queued ones are refused, then the socket closes", async () => {
  const held: http2.ServerHttp2Stream[] = [];
  const server = await startH2Server(
    (stream) => {
      stream.resume();
      held.push(stream);
    },
    { maxConcurrentStreams: 1 },
  );
  const session = await connect(server.port);
  await session.ready;
  const headers = requestHeaders(server.authority, "/svc/M");
  const a = exchange(session, headers, { body: Buffer.from("a") });
  const b = exchange(session, headers, { body: Buffer.from("b") });
  await until(() => held.length === 1, 5000, "first stream");
  const closed = session.close();
  assert.equal((await b.done).reason, "refused");
  let settled = false;
  void closed.then(() => (settled = true));
  await sleep(50);
  assert.equal(settled, false, "close() waits for the open stream");
  grpcOk(held[0]!, "last");
  assert.equal((await a.done).data.toString(), "last");
  await within(closed, 5000, "close");
  assert.equal(session.socket.destroyed, true);
  assert.equal(session.error, undefined);
  await server.close();
});

test("the server dropping the connection mid-call: the call is 'lost' with an EndpointUnavailableError", async () => {
  const server = await startH2Server((stream) => {
    stream.resume();
    stream.on("end", () => stream.session!.destroy());
  });
  const session = await connect(server.port);
  const r = await exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x") }).done;
  assert.equal(r.reason, "lost");
  assert.ok(r.error instanceof EndpointUnavailableError);
  assert.equal((r.error as EndpointUnavailableError).reason, "connection-lost");
  assert.equal(session.state, "closed");
  await server.close();
});

test("a server that answers early ends the call: the rest of the request is not sent", async () => {
  const server = await startH2Server((stream) => {
    // Trailers-only answer before reading the body.
    stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "3", "grpc-message": "bad" }, { endStream: true });
  });
  const session = await connect(server.port);
  const { handler, done } = collector();
  const stream = session.request(requestHeaders(server.authority, "/svc/Stream"), handler);
  stream.write(Buffer.from("first"));
  const r = await within(done, 5000, "early answer");
  assert.equal(r.reason, "done");
  assert.equal(field(r.headers, "grpc-status"), "3");
  assert.deepEqual(r.events, ["headers", "close"]);
  assert.equal(stream.write(Buffer.from("more")), false);
  await session.close();
  await server.close();
});

test("requests made before the handshake completes wait for it, then go", async () => {
  const server = await startH2Server((stream) => grpcOk(stream, "early"));
  const socket = (await import("node:net")).connect({ host: "127.0.0.1", port: server.port }) as net.Socket;
  const session = new H2Session(socket, { address: server.authority });
  assert.equal(session.state, "connecting");
  const r = await within(exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x") }).done, 5000, "early request");
  assert.equal(r.data.toString(), "early");
  await session.close();
  await server.close();
});

test("stats report windows, streams and traffic", async () => {
  const server = await startH2Server((stream) => grpcOk(stream, "x"));
  const session = await connect(server.port, { connectionWindowBytes: 1 << 20 });
  await session.ready;
  await exchange(session, requestHeaders(server.authority, "/svc/M"), { body: Buffer.from("x") }).done;
  const s = session.stats;
  assert.equal(s.state, "ready");
  assert.equal(s.openStreams, 0);
  assert.equal(s.streamsOpened, 1);
  assert.equal(s.nextStreamId, 3);
  assert.ok(s.receiveWindow > 1_000_000);
  assert.ok(s.bytesSent > 24 && s.bytesReceived > 9 && s.writes >= 1 && s.framesReceived >= 3);
  await session.close();
  await server.close();
});

test("unknown frame types and PRIORITY are ignored; a frame on a never-opened stream is a connection error", async () => {
  const server = await startRawServer((socket) => {
    socket.write(SERVER_PREFACE);
    socket.once("data", () => {
      socket.write(Buffer.concat([frame(0xfa, 0, 0, Buffer.from("whatever")), frame(2, 0, 1, Buffer.from([0, 0, 0, 0, 16]))]));
      setTimeout(() => socket.write(frame(3, 0, 7, Buffer.from([0, 0, 0, 8]))), 50); // RST_STREAM on idle stream 7
    });
  });
  const session = await connect(server.port);
  await session.ready;
  const closed = new Promise<EndpointUnavailableError | undefined>((r) => session.once("close", r));
  const err = await within(closed, 5000, "connection error");
  assert.equal(err?.reason, "protocol");
  assert.match(String(err?.message), /never opened/);
  await server.close();
});

test("HEADERS for a stream we already closed are still decoded: the HPACK table stays in step", async () => {
  let client!: ClientFrames;
  const server = await startRawServer((socket) => {
    client = new ClientFrames(socket);
    socket.write(SERVER_PREFACE);
  });
  const session = await connect(server.port);
  await session.ready;
  const h = requestHeaders(`127.0.0.1:${server.port}`, "/svc/M");
  const first = exchange(session, h, { body: Buffer.from("a") });
  const second = exchange(session, h, { body: Buffer.from("b") });
  await until(() => client.ofType(1).length === 2, 5000, "two requests at the server");
  first.stream.cancel();
  assert.equal((await first.done).reason, "cancelled");
  // The server answers the cancelled stream anyway, adding "x-a: v" to its table (literal with indexing) ...
  const literal = Buffer.concat([Buffer.from([0x88, 0x40, 3]), Buffer.from("x-a"), Buffer.from([1]), Buffer.from("v")]);
  server.sockets[0]!.write(frame(1, 0x5, 1, literal));
  // ... then refers to it by index (62) on the live stream.
  server.sockets[0]!.write(frame(1, 0x5, 3, Buffer.from([0x88, 0xbe])));
  const r = await within(second.done, 5000, "second stream");
  assert.equal(r.reason, "done");
  assert.equal(field(r.headers, "x-a"), "v");
  session.destroy();
  await server.close();
});

