/**
 * A bidirectional gRPC stream on one {@link Connection} that writes bytes the
 * caller already framed and hands back each response message's bytes, for
 * streams so busy that per-message work matters (the lease keep-alive stream
 * carries thousands of tiny messages a second): many requests go out in one
 * write, and nothing is decoded reflectively or queued through an async
 * iterator. Endpoint choice, metadata and retries stay with the caller.
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Connection } from "./connection.js";
import { FrameDecoder } from "./grpc-frame.js";
import { GrpcCall, requestHeaders } from "./grpc-call.js";
import { markConnectionLost, markUnsent } from "./failure.js";
import { isConnectError } from "../errors.js";
import type { H2Session } from "./h2/session.js";

/** What a {@link RawGrpcStream} reports. */
export interface RawGrpcStreamHandlers {
  /** One response message: `buf[start, end)`, a view into a network buffer, valid only during the call. */
  message(buf: Uint8Array, start: number, end: number): void;
  /**
   * The stream ended, with the server's status as an error (undefined for
   * OK), or a transport failure marked as never sent or as lost with its
   * connection (see `failure.ts`). Called once; never after {@link RawGrpcStream.cancel}.
   */
  end(error: ConnectError | undefined): void;
}

/** One raw gRPC stream; it opens as soon as the connection and the headers are ready. */
export class RawGrpcStream {
  private call: GrpcCall | undefined;
  private queued: Uint8Array[] | undefined = [];
  private finished = false;

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
    if (this.call !== undefined) this.call.write(frames);
    else this.queued!.push(frames);
  }

  /** Ends the stream now (RST_STREAM CANCEL); no handler is called after this. */
  cancel(): void {
    if (this.finished) return;
    this.finished = true;
    this.queued = undefined;
    this.call?.failLocally(new ConnectError("cancelled", Code.Canceled));
  }

  private open(session: H2Session, metadata: Record<string, string>): void {
    if (this.finished) return;
    const handlers = this.handlers;
    const decoder = new FrameDecoder((buf, start, end) => handlers.message(buf, start, end), this.maxMessageBytes, "lend");
    // A server shutting down gracefully (GOAWAY) lets open streams run on; a
    // long-lived stream would stall on it, so it ends here and its owner moves.
    const onGoaway = (): void => {
      call.failLocally(markConnectionLost(new ConnectError("the server is closing the connection (GOAWAY)", Code.Unavailable)));
    };
    const call: GrpcCall = new GrpcCall(this.connection, session, undefined, undefined, {
      data: (chunk) => {
        if (this.finished) return;
        try {
          decoder.push(chunk);
        } catch (e) {
          call.failLocally(new ConnectError(`cannot read the response: ${e instanceof Error ? e.message : String(e)}`, Code.Internal, undefined, undefined, e));
        }
      },
      close: (err) => {
        session.off("goaway", onGoaway);
        this.finish(err);
      },
    });
    this.call = call;
    const queued = this.queued!;
    this.queued = undefined;
    if (!call.start(requestHeaders(this.connection.endpoint, this.path), metadata, undefined)) return;
    session.on("goaway", onGoaway);
    for (const q of queued) call.write(q);
  }

  private finish(error: ConnectError | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.handlers.end(error);
  }
}
