/**
 * A connect {@link Transport} that speaks gRPC over `node:http2` directly.
 *
 * Why not connect-node's own gRPC transport: on etcd's small unary calls it
 * spends about twice the client CPU of the `etcd3` package (WHATWG Headers
 * round trips, signal linking, an error object built on every success). This
 * one keeps the per-call work to one header object, one frame and one decode.
 * It plugs into `createClient` like any connect transport and leaves endpoint
 * choice and retries to the layer above. Interceptors are in
 * `interceptors.ts`, message codecs (and their fast paths) in `codec.ts`.
 *
 * A call's deadline and signal hold from the moment it is made, including
 * while it waits for the connection to be dialled.
 * @module
 */
import * as http2 from "node:http2";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import type { Connection } from "./connection.js";
import { decodeMessage, encodeMessage } from "./codec.js";
import { FrameDecoder, FrameError, encodeFrame } from "./grpc-frame.js";
import { codeFromHttpStatus, decodeGrpcMessage, encodeGrpcTimeout, notGrpcAnswer, parseGrpcStatus } from "./grpc-status.js";
import { withInterceptors } from "./interceptors.js";
import { CallBudget, abortedError, startTimer, stopTimer, type Timer } from "../deadline.js";
import { DeadlineExceededError, EndpointUnavailableError, RequestTooLargeError, isConnectError } from "../errors.js";
import { markAnswerUnreadable, markConnectionLost, markUnsent } from "./failure.js";

/** Options of {@link createHttp2Transport}. */
export interface Http2TransportOptions {
  /** Largest response message accepted, in bytes (default 2 GiB - 1, like etcd's Go client). */
  maxReceiveMessageBytes?: number;
  /**
   * Largest request message sent, in bytes; a larger one fails before it is
   * sent with `RequestTooLargeError`. Match the server's `--max-request-bytes`
   * (default 1.5 MiB). Default: no limit.
   */
  maxSendMessageBytes?: number;
  /** connect interceptors run around every call (logging, tracing, metrics). */
  interceptors?: Interceptor[];
}

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants;
const DEFAULT_MAX_RECEIVE = 0x7fffffff;
// A stream is paused when this many decoded messages wait for the reader.
const STREAM_HIGH_WATER = 64;

const paths = new WeakMap<object, string>();
function pathOf(method: DescMethodUnary | DescMethodStreaming): string {
  let p = paths.get(method);
  if (p === undefined) {
    p = `/${method.parent.typeName}/${method.name}`;
    paths.set(method, p);
  }
  return p;
}

/** Creates a transport that sends every call over the given connection. */
export function createHttp2Transport(connection: Connection, options: Http2TransportOptions = {}): Transport {
  const transport = new Http2Transport(
    connection,
    options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE,
    options.maxSendMessageBytes ?? Infinity,
  );
  const interceptors = options.interceptors ?? [];
  return interceptors.length === 0 ? transport : withInterceptors(transport, interceptors, connection.endpoint.origin);
}

/** State of one call, shared by unary calls and streams to work out how it ended. */
class CallOutcome {
  responseHeaders: http2.IncomingHttpHeaders | undefined;
  trailers: http2.IncomingHttpHeaders | undefined;
  /** Set when the caller's signal fired. */
  abortedBy: AbortSignal | undefined;
  deadlineExceeded = false;
  /** A local failure (bad frame, unreadable message) that ended the call. */
  localError: ConnectError | undefined;
  streamError: Error | undefined;

  constructor(
    readonly connection: Connection,
    readonly path: string,
    readonly timeoutMs: number | undefined,
  ) {}

  /** The error the call ended with, or undefined when it succeeded. Called once the HTTP/2 stream closed. */
  error(stream: http2.ClientHttp2Stream): ConnectError | undefined {
    // A stream still pending never had its HEADERS written: nothing reached the server.
    if (this.abortedBy !== undefined) return stream.pending ? markUnsent(abortedError(this.abortedBy)) : abortedError(this.abortedBy);
    if (this.deadlineExceeded) {
      const err = new DeadlineExceededError(this.timeoutMs ?? 0);
      return stream.pending ? markUnsent(err) : err;
    }
    if (this.localError !== undefined) return this.localError;
    const h = this.responseHeaders;
    const t = this.trailers;
    const status = parseGrpcStatus(t?.["grpc-status"] ?? h?.["grpc-status"]);
    if ((status as number | undefined) === 0) return undefined;
    if (status !== undefined) {
      const raw = (t?.["grpc-status"] !== undefined ? t["grpc-message"] : h?.["grpc-message"]) as string | undefined;
      return new ConnectError(decodeGrpcMessage(raw ?? ""), status, toHeaders(t ?? h));
    }
    const notGrpc = h !== undefined ? notGrpcAnswer(Number(h[":status"]), h["content-type"]) : undefined;
    if (notGrpc !== undefined) return new EndpointUnavailableError(this.connection.endpoint.address, "protocol", notGrpc);
    if (h !== undefined && Number(h[":status"]) !== 200) {
      const httpStatus = Number(h[":status"]);
      return new ConnectError(`HTTP status ${httpStatus} without a gRPC status`, codeFromHttpStatus(httpStatus));
    }
    const rst = stream.rstCode;
    const cause = this.streamError ?? this.connection.lastError;
    const err = new ConnectError(
      h === undefined
        ? `stream closed before a response (HTTP/2 code ${rst ?? "none"})`
        : `stream closed without a gRPC status (HTTP/2 code ${rst ?? "none"})`,
      Code.Unavailable,
      undefined,
      undefined,
      cause,
    );
    // REFUSED_STREAM promises the server did no work on it (also what GOAWAY gives streams it never saw).
    return rst === NGHTTP2_REFUSED_STREAM || stream.pending ? markUnsent(err) : markConnectionLost(err);
  }
}

class Http2Transport implements Transport {
  constructor(
    private readonly connection: Connection,
    private readonly maxReceive: number,
    private readonly maxSend: number,
  ) {}

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> {
    let payload: Uint8Array;
    try {
      payload = encodeMessage(method.input, input);
    } catch (e) {
      // Bad input, not a transport failure: never retried elsewhere.
      return Promise.reject(new ConnectError(`cannot serialize ${method.input.typeName}: ${String(e)}`, Code.InvalidArgument, undefined, undefined, e));
    }
    if (payload.byteLength > this.maxSend) {
      return Promise.reject(new RequestTooLargeError(payload.byteLength, this.maxSend));
    }
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(markUnsent(abortedError(signal)));
        return;
      }
      const start = (session: http2.ClientHttp2Session, remainingMs: number | undefined): void => {
        const outcome = new CallOutcome(this.connection, pathOf(method), remainingMs);
        const stream = this.open(session, outcome, header, signal, reject);
        if (stream === undefined) return;
        let message: Uint8Array | undefined;
        let extra = false;
        const decoder = new FrameDecoder((m) => {
          if (message === undefined) message = m;
          else extra = true;
        }, this.maxReceive);
        stream.on("data", (chunk: Buffer) => {
          try {
            decoder.push(chunk);
          } catch (e) {
            outcome.localError = frameErrorToConnect(e);
            stream.close(NGHTTP2_CANCEL);
          }
        });
        stream.once("close", () => {
          let err = outcome.error(stream);
          if (err === undefined) {
            if (message === undefined || extra || decoder.incomplete) {
              err = markAnswerUnreadable(
                new ConnectError(extra ? "protocol error: more than one message on a unary call" : "protocol error: missing response message", Code.Internal),
              );
            } else {
              let decoded: MessageShape<O>;
              try {
                decoded = decodeMessage(method.output, message);
              } catch (e) {
                reject(markAnswerUnreadable(new ConnectError(`cannot parse ${method.output.typeName}: ${String(e)}`, Code.Internal, undefined, undefined, e)));
                return;
              }
              resolve(unaryResponse(method, decoded, outcome));
              return;
            }
          }
          reject(err);
        });
        stream.end(encodeFrame(payload));
      };
      const s = this.connection.acquire();
      if (s instanceof Promise) {
        // Waiting for a dial counts against the call's deadline and yields to its signal.
        let budget: CallBudget;
        try {
          budget = new CallBudget(timeoutMs ?? Infinity, signal);
        } catch (e) {
          reject(e);
          return;
        }
        budget.race(s).then(
          (session) => start(session, budget.transportTimeout()),
          (e: unknown) => reject(markUnsent(asConnectError(e))),
        );
      } else {
        start(s, timeoutMs);
      }
    });
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
  ): Promise<StreamResponse<I, O>> {
    if (signal?.aborted) throw markUnsent(abortedError(signal));
    let session: http2.ClientHttp2Session;
    let remainingMs = timeoutMs;
    const s = this.connection.acquire();
    if (s instanceof Promise) {
      const budget = new CallBudget(timeoutMs ?? Infinity, signal);
      try {
        session = await budget.race(s);
      } catch (e) {
        throw markUnsent(asConnectError(e));
      }
      remainingMs = budget.transportTimeout();
    } else {
      session = s;
    }
    return new Promise((resolve, reject) => {
      const outcome = new CallOutcome(this.connection, pathOf(method), remainingMs);
      const stream = this.open(session, outcome, header, signal, reject);
      if (stream === undefined) return;
      const queue = new MessageQueue<MessageShape<O>>(stream);
      let started = false;
      const begin = (): void => {
        if (started) return;
        started = true;
        resolve({
          stream: true,
          service: method.parent,
          method,
          get header() {
            return toHeaders(outcome.responseHeaders);
          },
          get trailer() {
            return toHeaders(outcome.trailers);
          },
          message: queue,
        });
      };
      const decoder = new FrameDecoder((m) => {
        queue.push(decodeMessage(method.output, m));
      }, this.maxReceive);
      stream.once("response", begin);
      // The server ended the call (trailers): the call is over even if our request side is still open.
      stream.once("end", () => {
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
      });
      stream.on("data", (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (e) {
          outcome.localError = frameErrorToConnect(e);
          stream.close(NGHTTP2_CANCEL);
        }
      });
      stream.once("close", () => {
        const err = outcome.error(stream);
        if (!started) {
          // Failed before any response: the caller gets the error from the promise.
          started = true;
          reject(err ?? new ConnectError("stream closed before a response", Code.Unavailable));
          return;
        }
        queue.end(err);
      });
      void pumpInput(method, input, stream, outcome, this.maxSend);
    });
  }

  /** Opens the HTTP/2 stream and wires what every call shares: headers, deadline, abort, bookkeeping. */
  private open(
    session: http2.ClientHttp2Session,
    outcome: CallOutcome,
    header: HeadersInit | undefined,
    signal: AbortSignal | undefined,
    reject: (e: unknown) => void,
  ): http2.ClientHttp2Stream | undefined {
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": outcome.path,
      "content-type": "application/grpc+proto",
      te: "trailers",
    };
    if (outcome.timeoutMs !== undefined) headers["grpc-timeout"] = encodeGrpcTimeout(outcome.timeoutMs);
    if (header !== undefined) copyHeaders(header, headers);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (e) {
      reject(markUnsent(new ConnectError(`cannot open a stream: ${String(e)}`, Code.Unavailable, undefined, undefined, e)));
      return undefined;
    }
    const connection = this.connection;
    connection.streamOpened(session);
    let timer: Timer;
    if (outcome.timeoutMs !== undefined) {
      timer = startTimer(outcome.timeoutMs, () => {
        outcome.deadlineExceeded = true;
        stream.close(NGHTTP2_CANCEL);
      });
    }
    const onAbort = (): void => {
      outcome.abortedBy = signal;
      stream.close(NGHTTP2_CANCEL);
    };
    signal?.addEventListener("abort", onAbort);
    stream.once("response", (h) => {
      outcome.responseHeaders = h;
    });
    stream.once("trailers", (t) => {
      outcome.trailers = t;
    });
    stream.on("error", (e) => {
      outcome.streamError = e;
    });
    // Registered before the caller's close handler, so bookkeeping is done when it runs.
    stream.once("close", () => {
      stopTimer(timer);
      signal?.removeEventListener("abort", onAbort);
      connection.streamClosed(session);
    });
    return stream;
  }
}

/**
 * Writes the request messages of a stream as they come; ends the request
 * side when the input ends. When the stream ends first, the input is ended
 * too (`return()`), so a generator behind it can clean up.
 */
async function pumpInput<I extends DescMessage>(
  method: DescMethodStreaming<I, DescMessage>,
  input: AsyncIterable<MessageInitShape<I>>,
  stream: http2.ClientHttp2Stream,
  outcome: CallOutcome,
  maxSend: number,
): Promise<void> {
  const it = input[Symbol.asyncIterator]();
  let ended = false;
  const endInput = (): void => {
    if (ended) return;
    ended = true;
    stream.off("close", endInput);
    // Not awaited: a generator suspended inside its own await finishes that first.
    Promise.resolve()
      .then(() => it.return?.())
      .catch(() => undefined);
  };
  stream.once("close", endInput);
  try {
    for (;;) {
      const r = await it.next();
      if (r.done === true) {
        ended = true;
        stream.off("close", endInput);
        break;
      }
      if (stream.closed || stream.destroyed) return;
      const payload = encodeMessage(method.input, r.value);
      if (payload.byteLength > maxSend) throw new RequestTooLargeError(payload.byteLength, maxSend);
      const ok = stream.write(encodeFrame(payload));
      if (!ok) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off("drain", done);
            stream.off("close", done);
            resolve();
          };
          stream.on("drain", done);
          stream.on("close", done);
        });
      }
    }
    if (!stream.closed && !stream.destroyed) stream.end();
  } catch (e) {
    if (!stream.closed && !stream.destroyed) {
      outcome.localError =
        isConnectError(e) ? e : new ConnectError(`request stream failed: ${String(e)}`, Code.Canceled, undefined, undefined, e);
      stream.close(NGHTTP2_CANCEL);
    }
    endInput();
  }
}

/**
 * Decoded messages of a response stream, read with `for await`. Pauses the
 * HTTP/2 stream while the reader lags, so a slow consumer is not flooded; a
 * reader that stops early cancels the stream.
 */
class MessageQueue<T> implements AsyncIterable<T>, AsyncIterator<T> {
  private readonly items: T[] = [];
  private head = 0;
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private done = false;
  private error: unknown;
  private paused = false;

  constructor(private readonly stream: http2.ClientHttp2Stream) {}

  push(item: T): void {
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.resolve({ value: item, done: false });
      return;
    }
    this.items.push(item);
    if (!this.paused && this.items.length - this.head >= STREAM_HIGH_WATER) {
      this.paused = true;
      this.stream.pause();
    }
  }

  end(error: unknown): void {
    this.done = true;
    this.error = error;
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      if (error !== undefined) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head]!;
      this.items[this.head++] = undefined as T;
      if (this.head === this.items.length) {
        this.items.length = 0;
        this.head = 0;
      }
      if (this.paused && this.items.length - this.head < STREAM_HIGH_WATER / 2) {
        this.paused = false;
        this.stream.resume();
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.done) {
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.done) {
      this.done = true;
      this.stream.close(NGHTTP2_CANCEL);
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }
}

function unaryResponse<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  message: MessageShape<O>,
  outcome: CallOutcome,
): UnaryResponse<I, O> {
  // Headers objects are built only if someone asks (onHeader/onTrailer, interceptors).
  return {
    stream: false,
    service: method.parent,
    method,
    message,
    get header() {
      return toHeaders(outcome.responseHeaders);
    },
    get trailer() {
      return toHeaders(outcome.trailers);
    },
  };
}

function toHeaders(h: http2.IncomingHttpHeaders | undefined): Headers {
  const out = new Headers();
  if (h === undefined) return out;
  for (const k of Object.keys(h)) {
    if (k.startsWith(":")) continue;
    const v = h[k];
    if (Array.isArray(v)) for (const x of v) out.append(k, x);
    else if (v !== undefined) out.set(k, String(v));
  }
  return out;
}

function copyHeaders(init: HeadersInit, out: http2.OutgoingHttpHeaders): void {
  if (init instanceof Headers) {
    init.forEach((v, k) => {
      out[k] = v;
    });
  } else if (Array.isArray(init)) {
    for (const [k, v] of init) out[k.toLowerCase()] = v;
  } else {
    for (const k of Object.keys(init)) out[k.toLowerCase()] = (init as Record<string, string>)[k];
  }
}

/** A response the server sent but we cannot read: the request was handled (see {@link markAnswerUnreadable}). */
function frameErrorToConnect(e: unknown): ConnectError {
  if (e instanceof FrameError) {
    return markAnswerUnreadable(new ConnectError(e.message, e.kind === "too-large" ? Code.ResourceExhausted : Code.Internal));
  }
  return markAnswerUnreadable(new ConnectError(`cannot read response: ${String(e)}`, Code.Internal, undefined, undefined, e));
}

function asConnectError(e: unknown): ConnectError {
  return isConnectError(e) ? e : new ConnectError(String(e), Code.Unavailable, undefined, undefined, e);
}
