// A small fake gRPC server over node:http2 for protocol edge cases a real etcd
// will not produce on demand: a slow or silent handshake, a stream reset after
// the request was read, REFUSED_STREAM, GOAWAY with calls in flight. It records
// what each call received, so tests can tell whether a request was sent twice.
import * as http2 from "node:http2";
import { createServer, type Server, type Socket } from "node:net";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { FrameDecoder, encodeFrame } from "../src/transport/grpc-frame.js";

/** One call the fake server received. */
export class FakeCall {
  /** Request messages received so far (gRPC frames, decoded from the framing). */
  readonly messages: Uint8Array[] = [];
  /** True once the client ended its request side. */
  ended = false;
  private waiters: Array<() => void> = [];

  constructor(
    readonly path: string,
    readonly headers: http2.IncomingHttpHeaders,
    readonly stream: http2.ServerHttp2Stream,
  ) {
    const decoder = new FrameDecoder((m) => {
      this.messages.push(m);
      this.wake();
    }, 64 << 20);
    stream.on("data", (chunk: Buffer) => decoder.push(chunk));
    stream.on("end", () => {
      this.ended = true;
      this.wake();
    });
    stream.on("error", () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once `n` request messages have arrived (or the request side ended). */
  async received(n: number, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.messages.length < n && !this.ended) {
      if (Date.now() > end) throw new Error(`fake call ${this.path}: ${this.messages.length} of ${n} messages after ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50).unref();
      });
    }
  }

  private trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };

  /** Sends the response headers once; trailers go out when the response ends. */
  private respondOnce(): void {
    if (this.stream.headersSent) return;
    this.stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
    this.stream.once("wantTrailers", () => this.stream.sendTrailers(this.trailers));
  }

  /** Answers with one message, and (unless `keepOpen`) ends the response with status OK. */
  reply<O extends DescMessage>(schema: O, message: MessageInitShape<O>, keepOpen = false): void {
    if (this.stream.closed) return;
    this.respondOnce();
    const frame = encodeFrame(toBinary(schema, create(schema, message)));
    if (keepOpen) this.stream.write(frame);
    else this.stream.end(frame);
  }

  /** Sends response headers only (a stream the server accepted), keeping it open. */
  accept(): void {
    this.respondOnce();
  }

  /** Answers with a gRPC error status (trailers-only, or trailers after an accepted stream). */
  fail(code: number, message: string): void {
    if (this.stream.closed) return;
    if (this.stream.headersSent) {
      this.trailers = { "grpc-status": String(code), "grpc-message": encodeURIComponent(message) };
      this.stream.end();
      return;
    }
    this.stream.respond({ ":status": 200, "content-type": "application/grpc+proto", "grpc-status": String(code), "grpc-message": encodeURIComponent(message) }, { endStream: true });
  }

  /** Resets the stream with an HTTP/2 error code (INTERNAL_ERROR by default). */
  reset(code: number = http2.constants.NGHTTP2_INTERNAL_ERROR): void {
    if (!this.stream.closed) this.stream.close(code);
  }
}

export interface FakeServerOptions {
  /** Wait this long after TCP accept before speaking HTTP/2 (a slow handshake). */
  handshakeDelayMs?: number;
  /** Accept TCP and never say anything (a blackholed member). */
  silent?: boolean;
  /** Serve TLS with this key and certificate (ALPN h2). */
  tls?: { key: Buffer; cert: Buffer };
  /** Port to listen on (default: any free one). */
  port?: number;
  /** HTTP/2 settings the server announces first (e.g. a small initial window). */
  settings?: http2.Settings;
  /** Called for every call; the default answers nothing (the call hangs until the client gives up). */
  onCall?: (call: FakeCall, server: FakeServer) => void | Promise<void>;
}

/** A fake gRPC server on a loopback port. */
export interface FakeServer {
  readonly endpoint: string;
  readonly port: number;
  /** Every call received, in order. */
  readonly calls: FakeCall[];
  /** Calls to `path` received so far. */
  callsTo(path: string): FakeCall[];
  /** TCP connections accepted so far. */
  readonly accepted: number;
  /** TCP connections open now. */
  readonly openSockets: number;
  /** Sends GOAWAY on every session; streams up to `lastStreamId` (default: the last one received) may finish. */
  goaway(code?: number, lastStreamId?: number): void;
  /** Sends new SETTINGS on every session (mid-flight changes). */
  settings(settings: http2.Settings): void;
  /** Resolves once no TCP connection is open (or rejects after `timeoutMs`). */
  waitNoSockets(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a fake gRPC server on 127.0.0.1. */
export function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const h2: http2.Http2Server | http2.Http2SecureServer = options.tls ? http2.createSecureServer({ key: options.tls.key, cert: options.tls.cert, settings: options.settings ?? {} }) : http2.createServer({ settings: options.settings ?? {} });
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const calls: FakeCall[] = [];
  let accepted = 0;
  let server!: FakeServer;
  h2.on("session", (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => undefined);
  });
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    const call = new FakeCall(String(headers[":path"]), headers, stream);
    calls.push(call);
    void Promise.resolve(options.onCall?.(call, server)).catch(() => call.reset());
  });
  const tcp: Server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    if (options.silent) {
      socket.on("data", () => undefined);
      return;
    }
    const handOver = (): void => {
      if (!socket.destroyed) h2.emit("connection", socket);
    };
    if (options.handshakeDelayMs !== undefined) setTimeout(handOver, options.handshakeDelayMs);
    else handOver();
  });
  return new Promise((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(options.port ?? 0, "127.0.0.1", () => {
      const addr = tcp.address();
      if (typeof addr !== "object" || addr === null) return reject(new Error("no address"));
      server = {
        endpoint: `127.0.0.1:${addr.port}`,
        port: addr.port,
        calls,
        callsTo: (path) => calls.filter((c) => c.path === path),
        get accepted() {
          return accepted;
        },
        get openSockets() {
          return sockets.size;
        },
        goaway(code = http2.constants.NGHTTP2_NO_ERROR, lastStreamId?: number) {
          const last = lastStreamId ?? Math.max(0, ...calls.map((c) => c.stream.id ?? 0));
          for (const s of sessions) s.goaway(code, last);
        },
        settings(settings) {
          for (const s of sessions) s.settings(settings);
        },
        async waitNoSockets(timeoutMs = 5000) {
          const end = Date.now() + timeoutMs;
          while (sockets.size > 0) {
            if (Date.now() > end) throw new Error(`${sockets.size} connection(s) still open after ${timeoutMs} ms`);
            await new Promise((r) => setTimeout(r, 10));
          }
        },
        close() {
          for (const s of sockets) s.destroy();
          for (const s of sessions) s.destroy();
          return new Promise<void>((r) => tcp.close(() => r()));
        },
      };
      resolve(server);
    });
  });
}
