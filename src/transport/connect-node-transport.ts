/**
 * connect-node's stock gRPC transport for one endpoint, kept selectable
 * (`transport: "connect-node"`) as a cross-check of the built-in one. Its
 * failures carry little structure, so they are marked here by where they
 * happened: before the connection was up (never sent), or after (the request
 * may have reached the server). connect-node reports a killed peer as
 * `Canceled` and a reset stream as `Internal`, which must not read as the
 * caller's cancel or a server bug.
 *
 * A known difference from the built-in transport: connect-node counts a
 * connection ready once TCP (and TLS) is up, before the server's HTTP/2
 * SETTINGS arrive, and writes a call's request at once. A call whose deadline
 * or signal fires while the handshake is still pending ends at that moment,
 * but its request may still reach the server when the handshake completes;
 * such a call is therefore never counted as "never sent".
 * @module
 */
import type { ClientHttp2Stream, ClientSessionRequestOptions, Http2Session, OutgoingHttpHeaders } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Interceptor, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { dialFailureReason, type TlsOptions } from "./dial.js";
import type { Endpoint } from "../cluster/endpoint.js";
import { CallBudget, MAX_TIMER_MS, startTimer, stopTimer, type Timer } from "../deadline.js";
import { EndpointUnavailableError, RequestTooLargeError, ResponseTooLargeError, isConnectError } from "../errors.js";
import { MIN_PING_INTERVAL_MS } from "./keep-alive.js";
import { markAnswerUnreadable, markConnectionLost, markUnsent } from "./failure.js";

/** Options of {@link createConnectNodeTransport}. */
export interface ConnectNodeTransportOptions {
  tls?: TlsOptions | undefined;
  interceptors?: Interceptor[] | undefined;
  maxReceiveMessageBytes?: number | undefined;
  maxSendMessageBytes?: number | undefined;
  keepAliveIntervalMs: number;
  keepAliveTimeoutMs: number;
  dialTimeoutMs: number;
}

// Node error codes that mean no connection existed, so no request was sent.
const NOT_CONNECTED = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_NONAME", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);
// A stream the server refused (REFUSED_STREAM: it did no work on it), or one Node never opened because the session was going away.
const NEVER_PROCESSED = /REFUSED_STREAM|ERR_HTTP2_GOAWAY_SESSION/;

/** `e` and its `cause`s, outermost first (connect wraps Node's socket errors). */
function causeChain(e: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let c = e, depth = 0; c !== undefined && c !== null && depth < 8; depth++) {
    chain.push(c);
    c = typeof c === "object" ? (c as { cause?: unknown }).cause : undefined;
  }
  return chain;
}

/**
 * Marks a failure of a call made on a connection that was up: whether the
 * request may have reached the server decides whether a write may be retried.
 */
function markCallFailure(e: unknown, signal: AbortSignal | undefined, endpoint: Endpoint): unknown {
  if (signal?.aborted || !isConnectError(e)) return e;
  const chain = causeChain(e);
  const root = chain[chain.length - 1];
  // A TLS failure can surface on the first request (a TLS 1.3 server rejects our certificate
  // after the client's handshake is done); the server's application never saw the request.
  if (dialFailureReason(root, endpoint.secure) === "tls") return markUnsent(new EndpointUnavailableError(endpoint.address, "tls", root));
  // connect's own send limit: the same client-side refusal as the built-in transport's.
  const tooLarge = /message size (\d+) is larger than configured writeMaxBytes (\d+)/.exec(e.rawMessage);
  if (tooLarge) return new RequestTooLargeError(Number(tooLarge[1]), Number(tooLarge[2]));
  // connect's receive limit: the server handled the request and answered, too large to read.
  if (/is larger than configured readMaxBytes/.test(e.rawMessage)) return markAnswerUnreadable(new ResponseTooLargeError(e.rawMessage, Code.ResourceExhausted, { endpoint: endpoint.address, cause: e }));
  // An answer that is not the protobuf it should be: read (not retried) like the built-in transport's.
  if (e.rawMessage.startsWith("parse binary: ")) return markAnswerUnreadable(new ConnectError(e.rawMessage, Code.Internal, e.metadata, undefined, e));
  // connect's answers for a peer that is not a gRPC server (see notGrpcAnswer for the built-in transport).
  if (/^unsupported content type /.test(e.rawMessage) || (/^HTTP \d+$/.test(e.rawMessage) && e.code !== Code.Unavailable)) {
    return new EndpointUnavailableError(endpoint.address, "protocol", `not a gRPC server: ${e.rawMessage}`);
  }
  const codes = chain.map((c) => String((c as { code?: unknown }).code ?? ""));
  if (codes.some((c) => NOT_CONNECTED.has(c))) return markUnsent(e);
  const texts = chain.map((c) => `${(c as { code?: unknown }).code ?? ""} ${c instanceof Error ? c.message : ""}`);
  if (texts.some((t) => NEVER_PROCESSED.test(t))) return markUnsent(e);
  // Without a server status, Canceled/Internal/Unavailable/Unknown come from the connection, not from etcd:
  // the request may have been read and applied.
  const fromServer = e.metadata.has("grpc-status") || e.rawMessage.startsWith("etcdserver:");
  const connectionCodes = [Code.Canceled, Code.Internal, Code.Unavailable, Code.Unknown, Code.Aborted];
  if (!fromServer && connectionCodes.includes(e.code)) {
    return markConnectionLost(new ConnectError(e.rawMessage, Code.Unavailable, e.metadata, undefined, e));
  }
  return e;
}

/**
 * Resolves when `socket` has closed. connect-node destroys its sessions and
 * their sockets on abort, with one exception: a session that failed its TLS
 * handshake late (a TLS 1.3 server refusing our certificate) can be left
 * with its socket half open, and destroying that socket from outside makes
 * the session emit an error nobody listens to any more (an uncaught
 * exception). Such a socket is unref'd after a second, so it cannot keep the
 * process alive, and left for the server to close.
 */
function closedOrReleased(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      socket.unref();
      resolve();
    }, 1000);
    t.unref();
    socket.once("close", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** Sessions given a listener that keeps their late errors from crashing the process. */
const guarded = new WeakSet<Http2Session>();

/**
 * connect-node's session manager, with one fix: a session that failed with a
 * protocol error (a plain HTTP/1 server answering our preface) emits that
 * error again when its socket closes, after the manager removed its listeners
 * on close(), which made it an uncaught exception. Every session that carries
 * a call gets a listener that ignores it (the calls have failed already).
 */
class GuardedSessionManager extends Http2SessionManager {
  override async request(method: string, path: string, headers: OutgoingHttpHeaders, options: Omit<ClientSessionRequestOptions, "signal">): Promise<ClientHttp2Stream> {
    const stream = await super.request(method, path, headers, options);
    const session = stream.session;
    if (session !== undefined && !guarded.has(session)) {
      guarded.add(session);
      session.on("error", () => undefined);
    }
    return stream;
  }
}

/** A transport that owns its connection and can be closed. */
export interface ClosableTransport extends Transport {
  /** Closes the connection; calls in flight fail. Resolves once every socket is closed. */
  close(): Promise<void>;
}

/** Creates connect-node's gRPC transport for one endpoint, with failures classified by cause. */
export function createConnectNodeTransport(endpoint: Endpoint, options: ConnectNodeTransportOptions): ClosableTransport {
  const tls = options.tls;
  // Our own sockets (the same ones http2.connect would open), so close() can wait for them.
  const sockets = new Set<Socket>();
  const createConnection = (): Socket => {
    const socket: Socket = endpoint.secure
      ? tlsConnect({
          host: endpoint.host,
          port: endpoint.port,
          ALPNProtocols: ["h2"],
          ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
          ...(tls?.cert !== undefined ? { cert: tls.cert } : {}),
          ...(tls?.key !== undefined ? { key: tls.key } : {}),
          ...(tls?.servername !== undefined ? { servername: tls.servername } : {}),
          rejectUnauthorized: tls?.insecureSkipVerify !== true,
        })
      : netConnect({ host: endpoint.host, port: endpoint.port });
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // The session reports socket errors; a late TLS alert after it let go of the socket must not crash the process.
    socket.on("error", () => undefined);
    return socket;
  };
  const pings =
    options.keepAliveIntervalMs > 0
      ? { pingIntervalMs: Math.max(MIN_PING_INTERVAL_MS, options.keepAliveIntervalMs), pingTimeoutMs: options.keepAliveTimeoutMs }
      : {};
  // Our own session manager, so close() can end the connection instead of waiting for its idle timeout.
  const sessionManager = new GuardedSessionManager(endpoint.origin, pings, { createConnection });
  const inner = createGrpcTransport({
    baseUrl: endpoint.origin,
    sessionManager,
    interceptors: options.interceptors ?? [],
    ...(options.maxReceiveMessageBytes !== undefined ? { readMaxBytes: options.maxReceiveMessageBytes } : {}),
    ...(options.maxSendMessageBytes !== undefined ? { writeMaxBytes: options.maxSendMessageBytes } : {}),
  });
  let closing: Promise<void> | undefined;

  /**
   * Connects (or checks the connection) before a call, bounded by the dial
   * timeout, so a refused, TLS-mismatched or unanswering endpoint fails as
   * "never sent" with its cause instead of as the call's own error.
   */
  const ready = (): Promise<void> | undefined => {
    const st = sessionManager.state();
    return st === "open" || st === "idle" ? undefined : connectWithin();
  };
  const connectWithin = async (): Promise<void> => {
    let timer: Timer;
    const timedOut = new Promise<"timeout">((r) => {
      timer = startTimer(options.dialTimeoutMs, () => r("timeout"), true);
    });
    const result = await Promise.race([sessionManager.connect(), timedOut]);
    stopTimer(timer);
    if (result === "timeout") {
      sessionManager.abort();
      throw markUnsent(new EndpointUnavailableError(endpoint.address, "dial-timeout", undefined, options.dialTimeoutMs));
    }
    if (result === "error") {
      const root = causeChain(sessionManager.error()).at(-1);
      throw markUnsent(new EndpointUnavailableError(endpoint.address, dialFailureReason(root, endpoint.secure), root));
    }
  };

  /**
   * The connection wait raced against the call's deadline and signal, then the
   * call with what is left. connect's own timer cannot take delays past
   * 2^31 - 1 ms; such deadlines are enforced through a linked signal instead,
   * which `release` drops once the call (or stream) is over.
   */
  async function run<T>(
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    call: (signal: AbortSignal | undefined, timeoutMs: number | undefined) => Promise<T>,
  ): Promise<{ value: T; release: () => void }> {
    const none = (): void => undefined;
    if (closing !== undefined) throw markUnsent(new EndpointUnavailableError(endpoint.address, "closed"));
    // connect writes grpc-timeout as `${timeoutMs}m`: it must be a whole number of milliseconds.
    const whole = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.max(1, Math.ceil(ms)));
    const connecting = ready();
    if (connecting === undefined && (timeoutMs === undefined || timeoutMs < MAX_TIMER_MS)) {
      return { value: await call(signal, whole(timeoutMs)), release: none };
    }
    const budget = new CallBudget(timeoutMs ?? Infinity, signal);
    if (connecting !== undefined) {
      try {
        await budget.race(connecting);
      } catch (e) {
        throw markUnsent(e as object);
      }
    }
    const left = budget.transportTimeout();
    if (left === undefined || left < MAX_TIMER_MS) return { value: await call(signal, whole(left)), release: none };
    const linked = budget.linkedSignal();
    try {
      return { value: await call(linked.signal, undefined), release: linked.dispose };
    } catch (e) {
      linked.dispose();
      throw e;
    }
  }

  return {
    close(): Promise<void> {
      if (closing === undefined) {
        sessionManager.abort(new ConnectError("the client closed the connection", Code.Canceled));
        // The sessions destroy their sockets (see closedOrReleased for the one exception).
        closing = Promise.all([...sockets].map(closedOrReleased)).then(() => undefined);
      }
      return closing;
    },
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      return run(signal, timeoutMs, (s, t) => inner.unary(method, s, t, header, input, contextValues)).then(
        (r) => {
          r.release();
          return r.value;
        },
        (e: unknown) => {
          throw markCallFailure(e, signal, endpoint);
        },
      );
    },
    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      let res: StreamResponse<I, O>;
      let release: () => void;
      try {
        ({ value: res, release } = await run(signal, timeoutMs, (s, t) => inner.stream(method, s, t, header, input, contextValues)));
      } catch (e) {
        throw markCallFailure(e, signal, endpoint);
      }
      const source = res.message;
      return {
        ...res,
        header: res.header,
        trailer: res.trailer,
        message: (async function* () {
          try {
            yield* source;
          } catch (e) {
            throw markCallFailure(e, signal, endpoint);
          } finally {
            release();
          }
        })(),
      };
    },
  };
}
