/**
 * connect-node's stock gRPC transport for one endpoint, kept selectable
 * (`transport: "connect-node"`) as a cross-check of the built-in one. Its
 * failures carry little structure, so they are classified by cause here:
 * connect-node reports a killed peer as `Canceled` and TLS failures as
 * `Internal`, which must not read as the caller's cancel or a server bug.
 * @module
 */
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type Interceptor, type StreamResponse, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { classifyDialError, type TlsOptions } from "./connection.js";
import type { Endpoint } from "../cluster/endpoint.js";
import { EndpointUnavailableError, RequestTooLargeError, isConnectError } from "../errors.js";
import { markConnectionLost, markUnsent } from "./failure.js";

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
const NOT_CONNECTED = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);

/** `e` and its `cause`s, outermost first (connect wraps Node's socket errors). */
function causeChain(e: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let c = e, depth = 0; c !== undefined && depth < 8; depth++) {
    chain.push(c);
    c = typeof c === "object" && c !== null ? (c as { cause?: unknown }).cause : undefined;
  }
  return chain;
}

/** The innermost error of a `cause` chain. */
function rootCause(e: unknown): unknown {
  return causeChain(e).at(-1);
}

function classify(e: unknown, signal: AbortSignal | undefined, endpoint: Endpoint): unknown {
  if (signal?.aborted || !isConnectError(e)) return e;
  // A TLS or HTTP/2 handshake failure can surface on the first request (a TLS 1.3
  // server rejects our certificate after the client's handshake is done); the
  // server's application never saw the request.
  const root = rootCause(e);
  const reason = classifyDialError(root, endpoint.secure);
  if (reason === "tls" || reason === "protocol") return markUnsent(new EndpointUnavailableError(endpoint.address, reason, root));
  // connect's own send limit: the same client-side refusal as the built-in transport's.
  const tooLarge = /message size (\d+) is larger than configured writeMaxBytes (\d+)/.exec(e.rawMessage);
  if (tooLarge) return new RequestTooLargeError(Number(tooLarge[1]), Number(tooLarge[2]));
  const codes = causeChain(e).map((c) => (c as { code?: unknown } | null)?.code);
  if (codes.some((c) => typeof c === "string" && NOT_CONNECTED.has(c))) return markUnsent(e);
  // Without a server status, Canceled/Internal/Unavailable/Unknown come from the connection, not from etcd.
  const fromServer = e.metadata.has("grpc-status") || e.rawMessage.startsWith("etcdserver:");
  const connectionCodes = [Code.Canceled, Code.Internal, Code.Unavailable, Code.Unknown, Code.Aborted];
  if (!fromServer && connectionCodes.includes(e.code)) {
    return markConnectionLost(new ConnectError(e.rawMessage, Code.Unavailable, e.metadata, undefined, e));
  }
  return e;
}

/** A transport that owns its connection and can be closed. */
export interface ClosableTransport extends Transport {
  /** Closes the connection; calls in flight fail. */
  close(): void;
}

/** Creates connect-node's gRPC transport for one endpoint, with failures classified by cause. */
export function createConnectNodeTransport(endpoint: Endpoint, options: ConnectNodeTransportOptions): ClosableTransport {
  const tls = options.tls;
  const nodeOptions = endpoint.secure
    ? {
        ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
        ...(tls?.cert !== undefined ? { cert: tls.cert } : {}),
        ...(tls?.key !== undefined ? { key: tls.key } : {}),
        ...(tls?.servername !== undefined ? { servername: tls.servername } : {}),
        rejectUnauthorized: tls?.insecureSkipVerify !== true,
      }
    : {};
  const pings =
    options.keepAliveIntervalMs > 0
      ? { pingIntervalMs: Math.max(5000, options.keepAliveIntervalMs), pingTimeoutMs: options.keepAliveTimeoutMs }
      : {};
  // Our own session manager, so close() can end the connection instead of waiting for its idle timeout.
  const sessionManager = new Http2SessionManager(endpoint.origin, pings, nodeOptions);
  const inner = createGrpcTransport({
    baseUrl: endpoint.origin,
    sessionManager,
    interceptors: options.interceptors ?? [],
    ...(options.maxReceiveMessageBytes !== undefined ? { readMaxBytes: options.maxReceiveMessageBytes } : {}),
    ...(options.maxSendMessageBytes !== undefined ? { writeMaxBytes: options.maxSendMessageBytes } : {}),
  });
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
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), options.dialTimeoutMs)));
    const result = await Promise.race([sessionManager.connect(), timedOut]);
    clearTimeout(timer);
    if (result === "timeout") {
      sessionManager.abort();
      throw markUnsent(new EndpointUnavailableError(endpoint.address, "dial-timeout", undefined, options.dialTimeoutMs));
    }
    if (result === "error") {
      const cause = sessionManager.error();
      const root = rootCause(cause);
      throw markUnsent(new EndpointUnavailableError(endpoint.address, classifyDialError(root, endpoint.secure), root));
    }
  };
  return {
    close(): void {
      sessionManager.abort();
    },
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const call = () => inner.unary(method, signal, timeoutMs, header, input, contextValues);
      const connecting = ready();
      const p = connecting === undefined ? call() : connecting.then(call);
      return p.catch((e: unknown) => {
        throw classify(e, signal, endpoint);
      });
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
      try {
        await ready();
        res = await inner.stream(method, signal, timeoutMs, header, input, contextValues);
      } catch (e) {
        throw classify(e, signal, endpoint);
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
            throw classify(e, signal, endpoint);
          }
        })(),
      };
    },
  };
}
