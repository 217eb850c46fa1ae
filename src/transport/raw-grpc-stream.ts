/**
 * A bidirectional gRPC stream on one {@link Connection} that writes bytes the
 * caller already framed and hands back each response message's bytes, for
 * streams so busy that per-message work matters (the lease keep-alive stream
 * carries thousands of tiny messages a second): many requests go out in one
 * write, and nothing is decoded reflectively or queued through an async
 * iterator. Endpoint choice, metadata and retries stay with the caller.
 * @module
 */
import * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Connection } from "./connection.js";
import { FrameDecoder } from "./grpc-frame.js";
import { codeFromHttpStatus, decodeGrpcMessage, notGrpcAnswer, parseGrpcStatus } from "./grpc-status.js";
import { markConnectionLost, markUnsent } from "./failure.js";
import { EndpointUnavailableError, isConnectError } from "../errors.js";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** What a {@link RawGrpcStream} reports. */
export interface RawGrpcStreamHandlers {
  /** One response message. The bytes are a view into a network buffer, valid during the call. */
  message(bytes: Uint8Array): void;
  /**
   * The stream ended, with the server's status as an error (undefined for
   * OK), or a transport failure marked as never sent or as lost with its
   * connection (see `failure.ts`). Called once; never after {@link RawGrpcStream.cancel}.
   */
  end(error: ConnectError | undefined): void;
}

/** One raw gRPC stream; it opens as soon as the connection and the headers are ready. */
export class RawGrpcStream {
  private stream: http2.ClientHttp2Stream | undefined;
  private queued: Uint8Array[] | undefined = [];
  private finished = false;
  private responseHeaders: http2.IncomingHttpHeaders | undefined;
  private trailers: http2.IncomingHttpHeaders | undefined;
  private localError: ConnectError | undefined;
  private streamError: Error | undefined;

  /**
   * @param path `/package.Service/Method`
   * @param metadata extra request headers (auth token, `hasleader`), or a promise of them
   * @param maxMessageBytes largest response message accepted
   */
  constructor(
    private readonly connection: Connection,
    private readonly path: string,
    metadata: Record<string, string> | Promise<Record<string, string>>,
    private readonly handlers: RawGrpcStreamHandlers,
    private readonly maxMessageBytes = 0x7fffffff,
  ) {
    const session = connection.acquire();
    if (!(session instanceof Promise) && !(metadata instanceof Promise)) {
      this.open(session, metadata);
    } else {
      Promise.all([session, metadata]).then(
        ([s, m]) => this.open(s, m),
        (e: unknown) => this.finish(markUnsent(isConnectError(e) ? e : new ConnectError(String(e), Code.Unavailable, undefined, undefined, e))),
      );
    }
  }

  /** Sends bytes (whole gRPC frames); queued until the stream is open. */
  write(frames: Uint8Array): void {
    if (this.finished) return;
    if (this.stream !== undefined) this.stream.write(frames);
    else this.queued!.push(frames);
  }

  /** Ends the stream now (RST_STREAM CANCEL); no handler is called after this. */
  cancel(): void {
    if (this.finished) return;
    this.finished = true;
    this.queued = undefined;
    this.stream?.close(NGHTTP2_CANCEL);
  }

  private open(session: http2.ClientHttp2Session, metadata: Record<string, string>): void {
    if (this.finished) return;
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": this.path,
      "content-type": "application/grpc+proto",
      te: "trailers",
      ...metadata,
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (e) {
      this.finish(markUnsent(new ConnectError(`cannot open a stream: ${String(e)}`, Code.Unavailable, undefined, undefined, e)));
      return;
    }
    this.stream = stream;
    const connection = this.connection;
    connection.streamOpened(session);
    const decoder = new FrameDecoder((m) => this.handlers.message(m), this.maxMessageBytes);
    stream.once("response", (h) => (this.responseHeaders = h));
    stream.once("trailers", (t) => (this.trailers = t));
    stream.on("error", (e) => (this.streamError = e));
    stream.on("data", (chunk: Buffer) => {
      if (this.finished) return;
      try {
        decoder.push(chunk);
      } catch (e) {
        this.localError = new ConnectError(`cannot read the response: ${e instanceof Error ? e.message : String(e)}`, Code.Internal, undefined, undefined, e);
        stream.close(NGHTTP2_CANCEL);
      }
    });
    // A server shutting down gracefully (GOAWAY) lets open streams run on; a
    // long-lived stream would stall on it, so it ends here and its owner moves.
    const onGoaway = (): void => {
      if (this.finished || this.localError !== undefined) return;
      this.localError = markConnectionLost(new ConnectError("the server is closing the connection (GOAWAY)", Code.Unavailable));
      stream.close(NGHTTP2_CANCEL);
    };
    session.once("goaway", onGoaway);
    stream.once("close", () => {
      session.off("goaway", onGoaway);
      connection.streamClosed(session);
      this.finish(this.outcome(stream));
    });
    const queued = this.queued!;
    this.queued = undefined;
    for (const q of queued) stream.write(q);
  }

  private finish(error: ConnectError | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.handlers.end(error);
  }

  /** How the stream ended, read from its status, or from how the connection broke. */
  private outcome(stream: http2.ClientHttp2Stream): ConnectError | undefined {
    if (this.localError !== undefined) return this.localError;
    const h = this.responseHeaders;
    const t = this.trailers;
    const status = parseGrpcStatus(t?.["grpc-status"] ?? h?.["grpc-status"]);
    if ((status as number | undefined) === 0) return undefined;
    if (status !== undefined) {
      const raw = (t?.["grpc-status"] !== undefined ? t["grpc-message"] : h?.["grpc-message"]) as string | undefined;
      return new ConnectError(decodeGrpcMessage(raw ?? ""), status);
    }
    const notGrpc = h !== undefined ? notGrpcAnswer(Number(h[":status"]), h["content-type"]) : undefined;
    if (notGrpc !== undefined) return new EndpointUnavailableError(this.connection.endpoint.address, "protocol", notGrpc);
    if (h !== undefined && Number(h[":status"]) !== 200) {
      const httpStatus = Number(h[":status"]);
      return new ConnectError(`HTTP status ${httpStatus} without a gRPC status`, codeFromHttpStatus(httpStatus));
    }
    const rst = stream.rstCode;
    const err = new ConnectError(
      `stream closed ${h === undefined ? "before a response" : "without a gRPC status"} (HTTP/2 code ${rst ?? "none"})`,
      Code.Unavailable,
      undefined,
      undefined,
      this.streamError ?? this.connection.lastError,
    );
    return rst === NGHTTP2_REFUSED_STREAM || stream.pending ? markUnsent(err) : markConnectionLost(err);
  }
}
