/**
 * One gRPC call on an {@link H2Session}: the request headers, the deadline and
 * the caller's signal, the connection's bookkeeping of open streams, and how
 * the call ended, read from the gRPC status or from how the HTTP/2 stream
 * closed, marked as never sent or as lost with its connection (see
 * `failure.ts`). The transport (typed calls) and the raw stream (pre-framed
 * bytes) both run on it.
 * @module
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Endpoint } from "../cluster/endpoint.js";
import { abortedError, startTimer, stopTimer, type Timer } from "../deadline.js";
import { DeadlineExceededError, EndpointUnavailableError, EtcdError } from "../errors.js";
import { markConnectionLost, markUnsent } from "./failure.js";
import { codeFromHttpStatus, decodeGrpcMessage, encodeGrpcTimeout, notGrpcAnswer, parseGrpcStatus } from "./grpc-status.js";
import type { Connection } from "./connection.js";
import { errorCodeName } from "./h2/errors.js";
import type { H2Session } from "./h2/session.js";
import type { H2Stream, StreamCloseReason, StreamHandler } from "./h2/stream.js";

/** What a {@link GrpcCall} reports to its owner. */
export interface GrpcCallEvents {
  /** Response headers arrived (also for a trailers-only response). */
  headers?(): void;
  /** A piece of the response body (gRPC frames, possibly cut anywhere): a view valid during the call. */
  data(chunk: Buffer): void;
  /** The call is over: undefined for gRPC status OK. Called once. */
  close(error: ConnectError | undefined): void;
}

/**
 * The header list of every call to `path` on `endpoint`. Build it once per
 * method and reuse the array: the engine caches its HPACK encoding.
 */
export function requestHeaders(endpoint: Endpoint, path: string): readonly string[] {
  return [
    ":method", "POST",
    ":scheme", endpoint.secure ? "https" : "http",
    ":authority", endpoint.address,
    ":path", path,
    "content-type", "application/grpc+proto",
    "te", "trailers",
  ];
}

/** Response headers or trailers as a `Headers` object (pseudo-headers left out). */
export function toHeaders(list: readonly string[] | undefined): Headers {
  const out = new Headers();
  if (list === undefined) return out;
  for (let i = 0; i < list.length; i += 2) {
    const k = list[i]!;
    if (!k.startsWith(":")) out.append(k, list[i + 1]!);
  }
  return out;
}

function field(list: readonly string[] | undefined, name: string): string | undefined {
  if (list === undefined) return undefined;
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1];
  return undefined;
}

/** Appends caller metadata to `out` as lower-case `[name, value, ...]`. */
function appendMetadata(init: HeadersInit | Record<string, string>, out: string[]): void {
  if (init instanceof Headers) {
    init.forEach((v, k) => out.push(k, v));
  } else if (Array.isArray(init)) {
    for (const [k, v] of init) out.push(k.toLowerCase(), v);
  } else {
    for (const k of Object.keys(init)) out.push(k.toLowerCase(), (init as Record<string, string>)[k]!);
  }
}

/** One gRPC call; see the module documentation. */
export class GrpcCall implements StreamHandler {
  /** Response headers, once they came. */
  responseHeaders: string[] | undefined;
  /** Trailers, once they came. */
  trailers: string[] | undefined;
  /** The call is over. */
  closed = false;
  private stream: H2Stream | undefined;
  private timer: Timer;
  private abortedBy: AbortSignal | undefined;
  private deadlineExceeded = false;
  private localError: ConnectError | undefined;
  private writableWaiter: (() => void) | undefined;
  private closeListener: (() => void) | undefined;

  constructor(
    private readonly connection: Connection,
    private readonly session: H2Session,
    private readonly timeoutMs: number | undefined,
    private readonly signal: AbortSignal | undefined,
    private readonly events: GrpcCallEvents,
  ) {}

  /**
   * Opens the stream with the method's shared `headers` and the caller's
   * `metadata`; with `body`, the request is that one frame and ends. Returns
   * false when the call already ended (its `close` was reported).
   */
  start(headers: readonly string[], metadata: HeadersInit | Record<string, string> | undefined, body: Uint8Array | undefined): boolean {
    let extra: string[] | undefined;
    if (this.timeoutMs !== undefined) extra = ["grpc-timeout", encodeGrpcTimeout(this.timeoutMs)];
    if (metadata !== undefined) appendMetadata(metadata, (extra ??= []));
    this.connection.streamOpened(this.session);
    try {
      const options = body !== undefined ? { body, end: true } : { end: false };
      this.stream = this.session.request(headers, this, extra !== undefined ? { ...options, extraHeaders: extra } : options);
    } catch (e) {
      // A header the engine cannot send: the caller's input, not the network.
      this.onClose("error", 0, e instanceof Error ? e : new Error(String(e)));
      return false;
    }
    if (this.closed) return false;
    if (this.timeoutMs !== undefined) {
      this.timer = startTimer(this.timeoutMs, () => {
        this.deadlineExceeded = true;
        this.stream?.cancel();
      });
    }
    this.signal?.addEventListener("abort", this.onAbort);
    return true;
  }

  /** Writes request bytes (whole gRPC frames); false when the buffer is over its high-water mark (see {@link GrpcCall.waitWritable}). */
  write(frames: Uint8Array): boolean {
    if (this.closed || this.stream === undefined) return false;
    return this.stream.write(frames);
  }

  /** Ends the request side. */
  end(): void {
    if (!this.closed) this.stream?.end();
  }

  /** Resolves once the request buffer drained or the call ended. */
  waitWritable(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => (this.writableWaiter = resolve));
  }

  /** Called once when the call ends (for the request pump). */
  onEnd(listener: (() => void) | undefined): void {
    this.closeListener = listener;
  }

  /** Ends the call with `error` (a broken response, a failed request stream): RST_STREAM CANCEL. */
  failLocally(error: ConnectError): void {
    if (this.closed) return;
    this.localError ??= error;
    this.stream?.cancel();
  }

  /** Stops replenishing the stream's receive window (the reader lags). */
  pause(): void {
    this.stream?.pause();
  }

  /** Replenishes it again. */
  resume(): void {
    this.stream?.resume();
  }

  private readonly onAbort = (): void => {
    this.abortedBy = this.signal;
    this.stream?.cancel();
  };

  /** @internal */
  onHeaders(headers: string[]): void {
    this.responseHeaders = headers;
    this.events.headers?.();
  }

  /** @internal */
  onData(chunk: Buffer): void {
    if (this.localError === undefined && chunk.length > 0) this.events.data(chunk);
  }

  /** @internal */
  onTrailers(trailers: string[]): void {
    this.trailers = trailers;
  }

  /** @internal */
  onWritable(): void {
    const w = this.writableWaiter;
    this.writableWaiter = undefined;
    w?.();
  }

  /** @internal */
  onClose(reason: StreamCloseReason, code: number, error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    stopTimer(this.timer);
    this.signal?.removeEventListener("abort", this.onAbort);
    this.connection.streamClosed(this.session);
    this.onWritable();
    const listener = this.closeListener;
    this.closeListener = undefined;
    listener?.();
    this.events.close(this.outcome(reason, code, error));
  }

  /** The error the call ended with, or undefined when it succeeded. */
  private outcome(reason: StreamCloseReason, code: number, error: Error | undefined): ConnectError | undefined {
    // A stream whose HEADERS never reached the socket did nothing on the server.
    const sent = this.stream?.sent ?? false;
    if (this.abortedBy !== undefined) return sent ? abortedError(this.abortedBy) : markUnsent(abortedError(this.abortedBy));
    if (this.deadlineExceeded) {
      const err = new DeadlineExceededError(this.timeoutMs ?? 0);
      return sent ? err : markUnsent(err);
    }
    if (this.localError !== undefined) return this.localError;
    const h = this.responseHeaders;
    const t = this.trailers;
    const fromTrailers = field(t, "grpc-status");
    const status = parseGrpcStatus(fromTrailers ?? field(h, "grpc-status"));
    if ((status as number | undefined) === 0) return undefined;
    if (status !== undefined) {
      const raw = fromTrailers !== undefined ? field(t, "grpc-message") : field(h, "grpc-message");
      return new ConnectError(decodeGrpcMessage(raw ?? ""), status, toHeaders(t ?? h));
    }
    const httpStatus = Number(field(h, ":status"));
    const notGrpc = h !== undefined ? notGrpcAnswer(httpStatus, field(h, "content-type")) : undefined;
    if (notGrpc !== undefined) return new EndpointUnavailableError(this.connection.endpoint.address, "protocol", notGrpc);
    if (h !== undefined && httpStatus !== 200) {
      return new ConnectError(`HTTP status ${httpStatus} without a gRPC status`, codeFromHttpStatus(httpStatus));
    }
    // Our own refusal to send (headers over the server's limit, a header that cannot be sent) is the caller's to see as is.
    if (reason === "error" && !sent && error instanceof EtcdError) return markUnsent(error);
    const err = new ConnectError(
      `stream ${reason === "done" ? "ended" : reason} ${h === undefined ? "before a response" : "without a gRPC status"}${code !== 0 ? ` (HTTP/2 code ${errorCodeName(code)})` : ""}`,
      Code.Unavailable,
      undefined,
      undefined,
      error ?? this.connection.lastError,
    );
    // "refused": REFUSED_STREAM, or above a GOAWAY's last stream ID: the server promises it did no work on it.
    return reason === "refused" || !sent ? markUnsent(err) : markConnectionLost(err);
  }
}
