// A fake etcd Watch service over node:http2 for protocol edge cases a real
// server will not produce on demand: scripted responses, refusals, stream
// errors, duplicate or fragmented events.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { WatchRequestSchema, WatchResponseSchema, type WatchRequest } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { encodeFrame, FrameDecoder } from "../src/transport/grpc-frame.js";

/** A response as the fake sends it: plain fields, no message objects. */
export type WatchResponseInit = Exclude<MessageInitShape<typeof WatchResponseSchema>, { $typeName: string }>;

/** One Watch stream as the fake server sees it. */
export class FakeWatchStream {
  readonly requests: WatchRequest[] = [];
  private waiters: Array<() => void> = [];
  private headersSent = false;

  constructor(
    readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
  ) {
    const decoder = new FrameDecoder((m) => {
      this.requests.push(fromBinary(WatchRequestSchema, m));
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
    }, 1 << 24);
    stream.on("data", (chunk: Buffer) => decoder.push(chunk));
    stream.on("error", () => undefined);
  }

  /** Resolves once `count` requests have arrived (bounded by `timeoutMs`). */
  async waitRequests(count: number, timeoutMs = 5000): Promise<WatchRequest[]> {
    const end = Date.now() + timeoutMs;
    while (this.requests.length < count) {
      if (Date.now() > end) throw new Error(`fake server: ${this.requests.length} of ${count} requests after ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.requests.slice(0, count);
  }

  /** The create requests received, in order. */
  creates(): Array<{ watchId: bigint; startRevision: bigint; key: string }> {
    return this.requests
      .filter((r) => r.requestUnion.case === "createRequest")
      .map((r) => {
        const c = r.requestUnion.value as { watchId: bigint; startRevision: bigint; key: Uint8Array };
        return { watchId: c.watchId, startRevision: c.startRevision, key: new TextDecoder().decode(c.key) };
      });
  }

  /** The watch IDs of cancel requests received, in order. */
  cancels(): bigint[] {
    return this.requests.filter((r) => r.requestUnion.case === "cancelRequest").map((r) => (r.requestUnion.value as { watchId: bigint }).watchId);
  }

  send(res: WatchResponseInit): void {
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
      this.stream.on("wantTrailers", () => {
        this.stream.sendTrailers(this.trailers);
        // Like grpc-go: the call is over, so reset a stream the client still has open.
        setImmediate(() => this.stream.close(http2.constants.NGHTTP2_NO_ERROR));
      });
    }
    this.stream.write(encodeFrame(toBinary(WatchResponseSchema, create(WatchResponseSchema, { header: { revision: 1n, memberId: 7n }, ...res } as WatchResponseInit))));
  }

  private trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };

  /** Ends the stream with a gRPC status (trailers-only when nothing was sent). */
  fail(code: number, message: string): void {
    if (!this.headersSent) {
      this.headersSent = true;
      this.stream.respond({ ":status": 200, "content-type": "application/grpc+proto", "grpc-status": String(code), "grpc-message": encodeURIComponent(message) }, { endStream: true });
      setImmediate(() => this.stream.close(http2.constants.NGHTTP2_NO_ERROR));
      return;
    }
    this.trailers = { "grpc-status": String(code), "grpc-message": encodeURIComponent(message) };
    this.stream.end();
  }

  /** Refuses the stream before doing anything (HTTP/2 REFUSED_STREAM). */
  refuse(): void {
    this.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
  }
}

export interface FakeWatchServer {
  readonly endpoint: string;
  readonly streams: FakeWatchStream[];
  /** Called for every new Watch stream. */
  onStream: (s: FakeWatchStream) => void;
  /** Resolves once the server has seen `n` streams. */
  waitStreams(n: number, timeoutMs?: number): Promise<FakeWatchStream>;
  close(): Promise<void>;
}

export async function startFakeWatchServer(): Promise<FakeWatchServer> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => undefined);
  });
  const fake: FakeWatchServer = {
    endpoint: "",
    streams: [],
    onStream: () => undefined,
    async waitStreams(n, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (fake.streams.length < n) {
        if (Date.now() > end) throw new Error(`fake server: ${fake.streams.length} of ${n} streams after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return fake.streams[n - 1]!;
    },
    close() {
      for (const s of sessions) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
  server.on("stream", (stream, headers) => {
    if (headers[":path"] !== "/etcdserverpb.Watch/Watch") {
      stream.respond({ ":status": 200, "content-type": "application/grpc+proto", "grpc-status": "12", "grpc-message": "unimplemented" }, { endStream: true });
      return;
    }
    const s = new FakeWatchStream(stream, headers);
    fake.streams.push(s);
    fake.onStream(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  (fake as { endpoint: string }).endpoint = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

/** A put event init for key `k` at revision `rev`. */
export function putEvent(k: string, rev: bigint, value = "v") {
  const enc = new TextEncoder();
  return { type: 0, kv: { key: enc.encode(k), value: enc.encode(value), modRevision: rev, createRevision: rev, version: 1n } };
}
