/**
 * One request/response exchange on an {@link H2Session}. A stream is a plain
 * object with a handler, not a Node stream: the layer above (gRPC) gets the
 * response headers, each DATA chunk, the trailers and one close callback, and
 * writes request DATA with backpressure.
 * @module
 */
import { InvalidOptionError } from "../../errors.js";
import { ReceiveWindow } from "./flow-control.js";
import type { H2Session } from "./session.js";
import { STREAM_CLOSED, STREAM_QUEUED, streamStateName, type StreamState } from "./stream-state.js";

/**
 * How a stream ended. What matters to the layer above is whether the request
 * may have been processed:
 * - `"done"`: the response is complete (END_STREAM received); the request was
 *   sent in full, or the server answered before reading all of it.
 * - `"refused"`: the server never processed it: RST_STREAM(REFUSED_STREAM),
 *   a stream above a GOAWAY's last stream ID, or a request never sent (queued
 *   when the session closed or drained). Safe to retry, even a write.
 * - `"reset"`: the server reset the stream (`code`) after it may have acted on it.
 * - `"lost"`: the connection failed (`error`, an `EndpointUnavailableError`)
 *   after the request may have reached the server.
 * - `"cancelled"`: {@link H2Stream.cancel} was called.
 * - `"error"`: a protocol error on this stream (`error`): the server broke
 *   HTTP/2 (we reset the stream), or the request could not be sent (headers
 *   over the server's limit). {@link H2Stream.sent} tells whether it reached the server.
 */
export type StreamCloseReason = "done" | "refused" | "reset" | "lost" | "cancelled" | "error";

/**
 * Callbacks of one stream, called in order: `onHeaders`, `onData`*,
 * `onTrailers`?, then `onClose` exactly once (which may come at any point).
 * They run inside the socket's data handler: they must not throw (a throw
 * destroys the session and is rethrown) and should not block.
 */
export interface StreamHandler {
  /** Response headers as `[name, value, ...]`. `endStream` when they are all there is (a trailers-only response). */
  onHeaders(headers: string[], endStream: boolean): void;
  /**
   * A piece of the response body: a view into the received bytes (no copy).
   * While the stream is not paused, its flow-control window is replenished as
   * chunks are delivered; {@link H2Stream.pause} stops that.
   */
  onData(chunk: Buffer, endStream: boolean): void;
  /** Trailers as `[name, value, ...]` (they end the stream). */
  onTrailers(trailers: string[]): void;
  /** The stream is over. `code` is the HTTP/2 error code of a reset, else 0. */
  onClose(reason: StreamCloseReason, code: number, error: Error | undefined): void;
  /** Called once the request data buffered by {@link H2Stream.write} falls below the high-water mark again. */
  onWritable?(): void;
}

/** A client stream. Created by {@link H2Session.request}. */
export class H2Stream {
  /** Stream ID, 0 while queued. */
  id = 0;
  /** @internal */
  state: StreamState = STREAM_QUEUED;
  /** @internal Response headers received. */
  responded = false;
  /** @internal The peer's window for our DATA on this stream. */
  sendWindow = 0;
  /** @internal Our window for the peer's DATA. */
  recv: ReceiveWindow | undefined;
  /** @internal Request data waiting for window. */
  chunks: Uint8Array[] = [];
  /** @internal Bytes of `chunks[0]` already sent. */
  chunkOffset = 0;
  /** Request bytes written but not yet handed to the socket (waiting for flow-control window). */
  buffered = 0;
  /** @internal END_STREAM is to follow the queued data. */
  endQueued = false;
  /** @internal END_STREAM was written. */
  endSent = false;
  /** @internal Waiting in the session's list of streams blocked on flow control. */
  blocked = false;
  /** @internal `write` returned false; call onWritable when drained. */
  needDrain = false;
  /** @internal The flush batch its HEADERS went out in (-1: not written yet). */
  headersEpoch = -1;
  /** @internal Bytes of the DATA frame being received that are not yet delivered (padding is released at its end). */
  frameLeft = 0;
  /** @internal Delivered while paused, not yet released to the window. */
  held = 0;
  private paused = false;

  constructor(
    /** @internal */
    readonly session: H2Session,
    /** Request header fields `[name, value, ...]` (the cached part). */
    readonly headers: readonly string[],
    /** Per-request header fields appended after {@link H2Stream.headers}. */
    readonly extraHeaders: readonly string[] | undefined,
    /** @internal */
    readonly handler: StreamHandler,
  ) {}

  /** Readable state: queued, open, half-closed (local), half-closed (remote), closed. */
  get stateName(): string {
    return streamStateName(this.state);
  }

  /** True once the stream is over. */
  get closed(): boolean {
    return this.state === STREAM_CLOSED;
  }

  /**
   * True once the request's HEADERS were handed to the socket: from then on
   * the server may have seen the request. False for a queued stream.
   */
  get sent(): boolean {
    return this.headersEpoch >= 0 && this.headersEpoch < this.session.flushEpoch;
  }

  /**
   * Sends `data` as request body (END_STREAM after it when `end`). Data
   * beyond the peer's flow-control windows is buffered; returns false when
   * more than the high-water mark is buffered ({@link StreamHandler.onWritable}
   * follows when it drains). The bytes must not be changed afterwards (large
   * ones are sent without a copy). Ignored once the stream is closed.
   */
  write(data: Uint8Array, end = false): boolean {
    if (this.endQueued) throw new InvalidOptionError("write after end of the request stream");
    if (this.state === STREAM_CLOSED) return false;
    return this.session.streamWrite(this, data, end);
  }

  /** Ends the request body (END_STREAM). */
  end(): void {
    if (this.endQueued || this.state === STREAM_CLOSED) return;
    this.session.streamWrite(this, undefined, true);
  }

  /**
   * Cancels the stream: RST_STREAM(CANCEL) if it was opened, nothing sent if
   * it is still queued. `onClose("cancelled")` follows synchronously.
   */
  cancel(reason?: unknown): void {
    if (this.state === STREAM_CLOSED) return;
    this.session.streamCancel(this, reason);
  }

  /**
   * Stops replenishing this stream's receive window: the server can send at
   * most what remains of it, then waits. Other streams are not affected.
   */
  pause(): void {
    this.paused = true;
  }

  /** Replenishes the window for everything delivered while paused, and keeps doing so. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const n = this.held;
    this.held = 0;
    if (n > 0) this.session.streamRelease(this, n);
  }

  /** True while paused. */
  get isPaused(): boolean {
    return this.paused;
  }
}
