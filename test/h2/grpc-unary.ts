// A minimal gRPC unary call over the HTTP/2 engine, for the etcd smoke test
// and bench/h2.ts: frames the message with the 5-byte gRPC prefix, collects
// the response message and checks grpc-status. Not the transport (phase 2
// builds that); just enough to drive a real etcd.
import type { H2Session } from "../../src/transport/h2/session.js";
import type { StreamCloseReason, StreamHandler } from "../../src/transport/h2/stream.js";

/** A gRPC call failed; `status` is the grpc-status, or undefined when the stream failed. */
export class GrpcCallError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly reason: StreamCloseReason,
  ) {
    super(message);
  }
}

function statusOf(list: string[]): string | undefined {
  for (let i = 0; i < list.length; i += 2) if (list[i] === "grpc-status") return list[i + 1];
  return undefined;
}

class UnaryCall implements StreamHandler {
  private first: Buffer | undefined;
  private rest: Buffer[] | undefined;
  private status: string | undefined;
  private message = "";

  constructor(
    private readonly resolve: (m: Uint8Array) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  onHeaders(headers: string[], endStream: boolean): void {
    if (endStream) this.trailers(headers);
  }

  onData(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.first === undefined) this.first = chunk;
    else (this.rest ??= []).push(chunk);
  }

  onTrailers(trailers: string[]): void {
    this.trailers(trailers);
  }

  private trailers(list: string[]): void {
    this.status = statusOf(list);
    for (let i = 0; i < list.length; i += 2) if (list[i] === "grpc-message") this.message = decodeURIComponent(list[i + 1]!);
  }

  onClose(reason: StreamCloseReason, code: number, error: Error | undefined): void {
    if (reason !== "done") {
      this.reject(new GrpcCallError(`stream ${reason} (code ${code})${error ? `: ${error.message}` : ""}`, undefined, reason));
      return;
    }
    if (this.status !== "0") {
      this.reject(new GrpcCallError(`grpc-status ${this.status}: ${this.message}`, this.status === undefined ? undefined : Number(this.status), reason));
      return;
    }
    const body = this.rest === undefined ? this.first : Buffer.concat([this.first!, ...this.rest]);
    if (body === undefined || body.length < 5) {
      this.reject(new GrpcCallError("no response message", 0, reason));
      return;
    }
    const len = body.readUInt32BE(1);
    this.resolve(body.subarray(5, 5 + len));
  }
}

/** Frames `message` with the gRPC prefix. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Header list of a gRPC call to `path` (keep the array per method: the engine caches its encoding). */
export function grpcHeaders(authority: string, path: string, scheme = "http"): string[] {
  return [":method", "POST", ":scheme", scheme, ":authority", authority, ":path", path, "content-type", "application/grpc", "te", "trailers"];
}

/** One unary call; resolves with the response message bytes. */
export function grpcUnary(session: H2Session, headers: readonly string[], message: Uint8Array, extraHeaders?: readonly string[]): Promise<Uint8Array> {
  return grpcUnaryFramed(session, headers, grpcFrame(message), extraHeaders);
}

/** One unary call with an already framed message (5-byte prefix included). */
export function grpcUnaryFramed(session: H2Session, headers: readonly string[], frame: Uint8Array, extraHeaders?: readonly string[]): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    session.request(headers, new UnaryCall(resolve, reject), extraHeaders === undefined ? { body: frame } : { body: frame, extraHeaders });
  });
}

/** Fills in the gRPC prefix of a message encoded with 5 bytes of headroom. */
export function framePrefix(framed: Uint8Array): Uint8Array {
  const len = framed.length - 5;
  framed[0] = 0;
  framed[1] = len >>> 24;
  framed[2] = (len >>> 16) & 0xff;
  framed[3] = (len >>> 8) & 0xff;
  framed[4] = len & 0xff;
  return framed;
}
