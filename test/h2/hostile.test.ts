// Hostile and broken servers: raw TCP servers on 127.0.0.1 that send what no
// correct HTTP/2 server would. Each connection error must close the session
// with EndpointUnavailableError("protocol") (the H2Error as its cause), tell
// the server with GOAWAY, and fail the open call as "lost"; a stream error
// must reset only that stream.
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { EndpointUnavailableError } from "../../src/errors.js";
import { ErrorCode, H2Error } from "../../src/transport/h2/errors.js";
import { writeInteger } from "../../src/transport/h2/hpack/primitives.js";
import { H2Session } from "../../src/transport/h2/session.js";
import { makeCerts } from "../harness/index.js";
import { ClientFrames, settingsPayload } from "./raw-frames.js";
import { connect, exchange, field, frame, requestHeaders, SERVER_PREFACE, startRawServer, type Collected } from "./support.js";

const END_STREAM = 0x1;
const END_HEADERS = 0x4;

interface Outcome {
  call: Collected;
  error: EndpointUnavailableError | undefined;
  /** Frames the client sent, including its GOAWAY. */
  client: ClientFrames;
  session: H2Session;
}

/**
 * Starts a raw server that sends its SETTINGS, waits for the client's first
 * request (stream 1), then calls `attack`. Returns how the call and the
 * session ended.
 */
async function against(attack: (socket: net.Socket) => void, options = {}): Promise<Outcome> {
  let client!: ClientFrames;
  const server = await startRawServer((socket) => {
    client = new ClientFrames(socket);
    socket.write(SERVER_PREFACE);
    let fired = false;
    client.onFrame((f) => {
      if (f.type === 1 && f.streamId === 1 && !fired) {
        fired = true;
        attack(socket);
      }
    });
  });
  const session = await connect(server.port, options);
  const closed = new Promise<EndpointUnavailableError | undefined>((r) => session.once("close", r));
  const call = await withTimeout(exchange(session, requestHeaders(`127.0.0.1:${server.port}`, "/svc/M"), { body: Buffer.from("x") }).done, "call");
  const error = session.state === "closed" ? session.error : await withTimeout(closed, "session close");
  // Let the client's GOAWAY reach the server before it closes.
  await new Promise((r) => setTimeout(r, 20));
  await server.close();
  return { call, error, client, session };
}

function withTimeout<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not done within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/** The session failed with a protocol error of `code`, the call is lost, and the client said so with GOAWAY. */
function assertConnectionError(o: Outcome, code: number, message?: RegExp): void {
  assert.ok(o.error instanceof EndpointUnavailableError, `session error: ${String(o.error)}`);
  assert.equal(o.error.reason, "protocol");
  const cause = o.error.cause;
  assert.ok(cause instanceof H2Error, `cause: ${String(cause)}`);
  assert.equal(cause.code, code, cause.message);
  if (message) assert.match(cause.message, message);
  assert.equal(o.call.reason, "lost");
  assert.equal(o.call.error, o.error);
  const goaway = o.client.ofType(7)[0];
  assert.ok(goaway !== undefined, "the client sent GOAWAY");
  assert.equal(goaway.payload.readUInt32BE(4), code);
  assert.equal(o.session.socket.destroyed, true);
}

function hpackInt(value: number, prefixBits: number, pattern: number): Buffer {
  const b = new Uint8Array(8);
  return Buffer.from(b.subarray(0, writeInteger(b, 0, value, prefixBits, pattern)));
}

test("an HPACK bomb (one 4 KB entry referenced 200 times) is ENHANCE_YOUR_CALM at the header list limit", async () => {
  const value = "a".repeat(4000);
  const block = Buffer.concat([
    Buffer.from([0x40]),
    hpackInt(5, 7, 0),
    Buffer.from("x-big"),
    hpackInt(value.length, 7, 0),
    Buffer.from(value),
    Buffer.alloc(200, 0xbe), // index 62: the entry just added
  ]);
  const o = await against((s) => s.write(frame(1, END_HEADERS, 1, Buffer.concat([Buffer.from([0x88]), block]))));
  assertConnectionError(o, ErrorCode.ENHANCE_YOUR_CALM, /header list larger/);
  assert.equal(o.call.headers, undefined);
});

test("a dynamic table size update above what we allow is a COMPRESSION_ERROR", async () => {
  const o = await against((s) => s.write(frame(1, END_HEADERS, 1, Buffer.concat([hpackInt(1 << 20, 5, 0x20), Buffer.from([0x88])]))));
  assertConnectionError(o, ErrorCode.COMPRESSION_ERROR, /table size update/);
});

test("a CONTINUATION flood (endless empty frames) fails after a bounded number of frames", async () => {
  const flood = Buffer.concat([frame(1, 0, 1, Buffer.from([0x88])), ...Array.from({ length: 5000 }, () => frame(9, 0, 1))]);
  const o = await against((s) => s.write(flood));
  assertConnectionError(o, ErrorCode.ENHANCE_YOUR_CALM, /CONTINUATION frames/);
});

test("a header block growing past its byte limit through CONTINUATION frames fails", async () => {
  const chunk = Buffer.alloc(16384, 0x88);
  const o = await against((s) => s.write(Buffer.concat([frame(1, 0, 1, chunk), ...Array.from({ length: 20 }, () => frame(9, 0, 1, chunk))])));
  assertConnectionError(o, ErrorCode.ENHANCE_YOUR_CALM, /header block larger/);
});

test("a frame announcing 16 MiB fails on its header, without waiting for (or buffering) the payload", async () => {
  const header = frame(0, 0, 1).subarray(0, 9);
  header.writeUIntBE(0xffffff, 0, 3);
  const t0 = Date.now();
  const o = await against((s) => s.write(Buffer.concat([frame(1, END_HEADERS, 1, Buffer.from([0x88])), header])));
  assertConnectionError(o, ErrorCode.FRAME_SIZE_ERROR, /exceeds the maximum frame size/);
  assert.ok(Date.now() - t0 < 2000);
});

const stream0: Array<[string, Buffer, number]> = [
  ["DATA on stream 0", frame(0, 0, 0, Buffer.from("x")), ErrorCode.PROTOCOL_ERROR],
  ["HEADERS on stream 0", frame(1, END_HEADERS, 0, Buffer.from([0x88])), ErrorCode.PROTOCOL_ERROR],
  ["RST_STREAM on stream 0", frame(3, 0, 0, Buffer.alloc(4)), ErrorCode.PROTOCOL_ERROR],
  ["WINDOW_UPDATE of 0 on stream 0", frame(8, 0, 0, Buffer.alloc(4)), ErrorCode.PROTOCOL_ERROR],
  ["SETTINGS of 5 bytes", frame(4, 0, 0, Buffer.alloc(5)), ErrorCode.FRAME_SIZE_ERROR],
  ["SETTINGS on stream 1", frame(4, 0, 1, Buffer.alloc(0)), ErrorCode.PROTOCOL_ERROR],
  ["PING of 7 bytes", frame(6, 0, 0, Buffer.alloc(7)), ErrorCode.FRAME_SIZE_ERROR],
  ["PING on stream 1", frame(6, 0, 1, Buffer.alloc(8)), ErrorCode.PROTOCOL_ERROR],
  ["GOAWAY of 4 bytes", frame(7, 0, 0, Buffer.alloc(4)), ErrorCode.FRAME_SIZE_ERROR],
  ["PUSH_PROMISE (push disabled)", frame(5, END_HEADERS, 1, Buffer.from([0, 0, 0, 2, 0x82])), ErrorCode.PROTOCOL_ERROR],
  ["SETTINGS_MAX_FRAME_SIZE below 16384", frame(4, 0, 0, settingsPayload([[5, 100]])), ErrorCode.PROTOCOL_ERROR],
  ["SETTINGS_INITIAL_WINDOW_SIZE over 2^31-1", frame(4, 0, 0, settingsPayload([[4, 2 ** 31]])), ErrorCode.FLOW_CONTROL_ERROR],
  ["SETTINGS_ENABLE_PUSH of 2", frame(4, 0, 0, settingsPayload([[2, 2]])), ErrorCode.PROTOCOL_ERROR],
  ["connection WINDOW_UPDATE past 2^31-1", frame(8, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff])), ErrorCode.FLOW_CONTROL_ERROR],
  ["HEADERS on an even (server-initiated) stream", frame(1, END_HEADERS, 2, Buffer.from([0x88])), ErrorCode.PROTOCOL_ERROR],
  ["padding longer than the DATA frame", Buffer.concat([frame(1, END_HEADERS, 1, Buffer.from([0x88])), frame(0, 0x8, 1, Buffer.from([9, 1, 2]))]), ErrorCode.PROTOCOL_ERROR],
  ["a frame other than CONTINUATION inside a header block", Buffer.concat([frame(1, 0, 1, Buffer.from([0x88])), frame(6, 0, 0, Buffer.alloc(8))]), ErrorCode.PROTOCOL_ERROR],
];
for (const [name, bytes, code] of stream0) {
  test(`connection error: ${name}`, async () => {
    const o = await against((s) => s.write(bytes));
    assertConnectionError(o, code);
  });
}

test("stream errors reset only that stream: DATA beyond its window, DATA before headers, trailers without END_STREAM", async () => {
  let client!: ClientFrames;
  const server = await startRawServer((socket) => {
    client = new ClientFrames(socket);
    socket.write(SERVER_PREFACE);
    client.onFrame((f) => {
      if (f.type !== 1) return;
      if (f.streamId === 1) {
        // Beyond the 16 KiB stream window.
        socket.write(Buffer.concat([frame(1, END_HEADERS, 1, Buffer.from([0x88])), frame(0, 0, 1, Buffer.alloc(16384)), frame(0, 0, 1, Buffer.alloc(10))]));
      } else if (f.streamId === 3) {
        socket.write(frame(0, 0, 3, Buffer.from("early")));
      } else if (f.streamId === 5) {
        socket.write(Buffer.concat([frame(1, END_HEADERS, 5, Buffer.from([0x88])), frame(1, END_HEADERS, 5, Buffer.from([0x88]))]));
      } else if (f.streamId === 7) {
        socket.write(Buffer.concat([frame(1, END_HEADERS, 7, Buffer.from([0x88])), frame(0, END_STREAM, 7, Buffer.from("fine"))]));
      }
    });
  });
  const session = await connect(server.port, { streamWindowBytes: 16384 });
  const h = requestHeaders(`127.0.0.1:${server.port}`, "/svc/M");
  const first = exchange(session, h, { body: Buffer.from("x") });
  first.stream.pause(); // delivered bytes are not released: the window really closes
  const calls = [first.done, exchange(session, h, { body: Buffer.from("x") }).done, exchange(session, h, { body: Buffer.from("x") }).done];
  const [a, b, c] = await withTimeout(Promise.all(calls), "stream errors");
  for (const [r, code] of [[a!, ErrorCode.FLOW_CONTROL_ERROR], [b!, ErrorCode.PROTOCOL_ERROR], [c!, ErrorCode.PROTOCOL_ERROR]] as const) {
    assert.equal(r.reason, "error");
    assert.equal(r.code, code);
    assert.ok(r.error instanceof H2Error);
  }
  const ok = await withTimeout(exchange(session, h, { body: Buffer.from("x") }).done, "a good stream after them");
  assert.equal(ok.reason, "done");
  assert.equal(ok.data.toString(), "fine");
  assert.equal(session.state, "ready");
  const rsts = client.ofType(3).map((f) => [f.streamId, f.payload.readUInt32BE(0)]);
  assert.deepEqual(rsts, [[1, ErrorCode.FLOW_CONTROL_ERROR], [3, ErrorCode.PROTOCOL_ERROR], [5, ErrorCode.PROTOCOL_ERROR]]);
  session.destroy();
  await server.close();
});

test("an HTTP/1 server gets a clear protocol error", async () => {
  const server = await startRawServer((socket) => socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"));
  const session = await connect(server.port);
  await assert.rejects(session.ready, (e: unknown) => e instanceof EndpointUnavailableError && e.reason === "protocol" && /HTTP\/1/.test(e.message));
  await server.close();
});

test("a server whose first frame is not SETTINGS is not an HTTP/2 server", async () => {
  const server = await startRawServer((socket) => socket.write(frame(6, 0, 0, Buffer.alloc(8))));
  const session = await connect(server.port);
  await assert.rejects(session.ready, (e: unknown) => e instanceof EndpointUnavailableError && e.reason === "protocol" && /not SETTINGS/.test(e.message));
  await server.close();
});

test("a server flooding PINGs while not reading our answers is cut off at maxWriteBufferBytes", async () => {
  const server = await startRawServer((socket) => {
    socket.write(SERVER_PREFACE);
    socket.pause(); // never read: our PING acks pile up
    const ping = frame(6, 0, 0, Buffer.alloc(8));
    const burst = Buffer.concat(Array.from({ length: 4096 }, () => ping));
    let sent = 0;
    const pump = (): void => {
      while (!socket.destroyed && sent < 2000 && socket.write(burst)) sent++;
      if (!socket.destroyed && sent < 2000) socket.once("drain", pump);
    };
    pump();
  });
  const session = await connect(server.port, { maxWriteBufferBytes: 256 * 1024 });
  const closed = new Promise<EndpointUnavailableError | undefined>((r) => session.once("close", r));
  const err = await withTimeout(closed, "cut off", 15000);
  assert.ok(err instanceof EndpointUnavailableError);
  assert.match(err.message, /stopped reading/);
  await server.close();
});

test("TLS: works with ALPN h2; a server that does not negotiate h2 is a clear protocol error", async () => {
  const certs = makeCerts();
  try {
    const key = (await import("node:fs")).readFileSync(certs.serverKeyFile);
    const cert = (await import("node:fs")).readFileSync(certs.serverCertFile);
    // A real h2 server over TLS.
    const h2s = http2.createSecureServer({ key, cert });
    h2s.on("stream", (stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end("secure");
    });
    await new Promise<void>((r) => h2s.listen(0, "127.0.0.1", r));
    const p1 = (h2s.address() as net.AddressInfo).port;
    const sock = tls.connect({ host: "127.0.0.1", port: p1, ca: certs.ca, ALPNProtocols: ["h2"] });
    const session = new H2Session(sock, { address: `127.0.0.1:${p1}` });
    const h = [":method", "POST", ":scheme", "https", ":authority", `127.0.0.1:${p1}`, ":path", "/svc/M", "content-type", "application/grpc", "te", "trailers"];
    const r = await withTimeout(exchange(session, h, { body: Buffer.from("x") }).done, "TLS call");
    assert.equal(r.data.toString(), "secure");
    assert.equal(field(r.headers, ":status"), "200");
    await session.close();
    await new Promise((r2) => h2s.close(r2));
    // A TLS server that only speaks HTTP/1.1.
    const h1 = tls.createServer({ key, cert, ALPNProtocols: ["http/1.1"] }, (s) => s.on("error", () => {}));
    await new Promise<void>((r2) => h1.listen(0, "127.0.0.1", r2));
    const p2 = (h1.address() as net.AddressInfo).port;
    const s2 = new H2Session(tls.connect({ host: "127.0.0.1", port: p2, ca: certs.ca, ALPNProtocols: ["h2", "http/1.1"] }), { address: `127.0.0.1:${p2}` });
    await assert.rejects(s2.ready, (e: unknown) => e instanceof EndpointUnavailableError && e.reason === "protocol" && /ALPN \(got http\/1\.1\)/.test(e.message));
    assert.equal(s2.socket.destroyed, true);
    await new Promise((r2) => h1.close(r2));
  } finally {
    rmSync(certs.dir, { recursive: true, force: true });
  }
});
