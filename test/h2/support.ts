// Helpers for the HTTP/2 engine tests: small node:http2 servers and raw TCP
// servers on 127.0.0.1, sessions over a plain net.Socket, and a handler that
// collects a stream's response.
import * as http2 from "node:http2";
import * as net from "node:net";
import { H2Session, type H2SessionOptions, type RequestOptions } from "../../src/transport/h2/session.js";
import type { H2Stream, StreamCloseReason, StreamHandler } from "../../src/transport/h2/stream.js";

export interface TestServer {
  port: number;
  authority: string;
  /** Server-side sessions, as they connect. */
  sessions: http2.ServerHttp2Session[];
  close(): Promise<void>;
}

/** A node:http2 (h2c) server on 127.0.0.1 calling `onStream` for each request. */
export async function startH2Server(
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
  settings: http2.Settings = {},
): Promise<TestServer> {
  const server = http2.createServer({ settings });
  const sessions: http2.ServerHttp2Session[] = [];
  server.on("session", (s) => {
    sessions.push(s);
    s.on("error", () => {});
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    onStream(stream, headers);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    authority: `127.0.0.1:${port}`,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface RawServer {
  port: number;
  sockets: net.Socket[];
  close(): Promise<void>;
}

/** A plain TCP server on 127.0.0.1: `onSocket` writes whatever bytes a test needs. */
export async function startRawServer(onSocket: (socket: net.Socket) => void): Promise<RawServer> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Connects a socket to 127.0.0.1:`port` and starts a session on it. */
export async function connect(port: number, options: H2SessionOptions = {}): Promise<H2Session> {
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return new H2Session(socket, { address: `127.0.0.1:${port}`, ...options });
}

/** Request headers for a POST to `path` on `authority`. */
export function requestHeaders(authority: string, path: string, extra: string[] = []): string[] {
  return [":method", "POST", ":scheme", "http", ":authority", authority, ":path", path, "content-type", "application/grpc", "te", "trailers", ...extra];
}

/** What a stream received, in order. */
export interface Collected {
  headers: string[] | undefined;
  trailers: string[] | undefined;
  data: Buffer;
  chunks: number;
  reason: StreamCloseReason;
  code: number;
  error: Error | undefined;
  /** Order of callbacks, e.g. ["headers", "data", "trailers", "close"]. */
  events: string[];
}

/** A handler that collects everything; `done` resolves on close. */
export function collector(onData?: (chunk: Buffer) => void): { handler: StreamHandler; done: Promise<Collected> } {
  const parts: Buffer[] = [];
  const c: Omit<Collected, "data"> & { data?: Buffer } = { headers: undefined, trailers: undefined, chunks: 0, reason: "done", code: 0, error: undefined, events: [] };
  let resolve!: (v: Collected) => void;
  const done = new Promise<Collected>((r) => (resolve = r));
  const handler: StreamHandler = {
    onHeaders(h) {
      c.headers = h;
      c.events.push("headers");
    },
    onData(chunk) {
      if (chunk.length > 0) {
        parts.push(Buffer.from(chunk));
        c.chunks++;
        if (c.events[c.events.length - 1] !== "data") c.events.push("data");
      }
      onData?.(chunk);
    },
    onTrailers(t) {
      c.trailers = t;
      c.events.push("trailers");
    },
    onClose(reason, code, error) {
      c.reason = reason;
      c.code = code;
      c.error = error;
      c.events.push("close");
      resolve({ ...c, data: Buffer.concat(parts) } as Collected);
    },
  };
  return { handler, done };
}

/** Sends one request and collects its response. */
export function exchange(session: H2Session, headers: string[], options?: RequestOptions): { stream: H2Stream; done: Promise<Collected> } {
  const { handler, done } = collector();
  const stream = session.request(headers, handler, options);
  return { stream, done };
}

/** Value of a header in a `[name, value, ...]` list. */
export function field(list: string[] | undefined, name: string): string | undefined {
  if (list === undefined) return undefined;
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1];
  return undefined;
}

/** Encodes one HTTP/2 frame (for raw servers). */
export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(9 + payload.length);
  b.writeUIntBE(payload.length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(streamId, 5);
  b.set(payload, 9);
  return b;
}

/** Server preface for raw servers: an empty SETTINGS frame. */
export const SERVER_PREFACE = frame(4, 0, 0);

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds (polling), at most `ms`. */
export async function until(cond: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
