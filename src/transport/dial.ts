/**
 * Opening a connected socket to one endpoint: name lookup, TCP connect and,
 * for TLS endpoints, a TLS handshake offering ALPN `h2`. Each stage has its
 * own timeout and its own failure reason, all within one overall dial
 * timeout, and the whole dial is abandoned as soon as its signal fires. The
 * caller runs its own protocol over the socket (this module knows nothing of
 * HTTP/2), so any HTTP/2 engine can reuse it.
 * @module
 */
import { lookup as dnsLookup } from "node:dns";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions as NodeTlsOptions, type TLSSocket } from "node:tls";
import { startTimer, stopTimer } from "../deadline.js";
import { EndpointUnavailableError, type EndpointFailureReason } from "../errors.js";

/** TLS settings for `https` endpoints. */
export interface TlsOptions {
  /** PEM CA bundle that signs the server certificate (default: Node's root store). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** PEM client certificate, for servers that verify clients (mTLS). */
  cert?: string | Buffer;
  /** PEM private key of the client certificate. */
  key?: string | Buffer;
  /** Server name to verify the certificate against, when it differs from the endpoint host. */
  servername?: string;
  /** Skip certificate verification. Only for tests; never in production. */
  insecureSkipVerify?: boolean;
}

/** One address a host name resolved to. */
export interface ResolvedAddress {
  /** An IPv4 or IPv6 address. */
  address: string;
  /** 4 or 6. */
  family: number;
}

/** Resolves a host name to its addresses, in the order to try them. */
export type LookupFunction = (host: string) => Promise<ResolvedAddress[]>;

/** What {@link dial} connects to, and how long each stage may take. */
export interface DialOptions {
  /** Host name or IP address (no brackets for IPv6). */
  host: string;
  port: number;
  /** `host:port` as errors show it. */
  address: string;
  /** TLS settings; when set, the socket is a TLS socket that negotiated ALPN. */
  tls?: TlsOptions | undefined;
  /** ALPN protocols to offer (default `["h2"]`). A server choosing another fails with reason `protocol`. */
  alpnProtocols?: string[];
  /** Overall time for every stage together. */
  timeoutMs: number;
  /** Most time for the name lookup (default: what is left of `timeoutMs`). Fails with `dns-timeout`. */
  lookupTimeoutMs?: number | undefined;
  /** Most time for the TCP connect (default: what is left). Fails with `connect-timeout`. */
  connectTimeoutMs?: number | undefined;
  /** Most time for the TLS handshake (default: what is left). Fails with `tls-timeout`. */
  tlsTimeoutMs?: number | undefined;
  /** Abandons the dial: the socket is destroyed and the promise rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Name lookup (default: the system resolver, `dns.lookup`). */
  lookup?: LookupFunction | undefined;
}

/**
 * Opens a socket to `options.host:port`, ready for the caller's protocol.
 * Rejects with an {@link EndpointUnavailableError} whose `reason` names the
 * stage that failed; when it rejects, every socket it opened is already closed.
 * Its timers do not keep the process alive (the sockets do, while they exist).
 */
export async function dial(options: DialOptions): Promise<Socket> {
  const deadline = performance.now() + options.timeoutMs;
  const within = (stageMs: number | undefined): number => Math.max(0, Math.min(stageMs ?? Infinity, deadline - performance.now()));
  if (options.signal?.aborted) throw abandoned(options);
  const family = isIP(options.host);
  const addresses =
    family !== 0 ? [{ address: options.host, family }] : await lookupStage(options, within(options.lookupTimeoutMs));
  const socket = await connectStage(options, addresses, within(options.connectTimeoutMs));
  if (options.tls === undefined) return socket;
  return tlsStage(options, options.tls, socket, within(options.tlsTimeoutMs));
}

const TLS_CODES = /^(ERR_SSL|ERR_TLS|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|EPROTO$|ERR_OSSL|HOSTNAME_MISMATCH|ERR_TLS_CERT)/;
const NAME_NOT_FOUND = new Set(["ENOTFOUND", "EAI_NONAME", "EAI_NODATA"]);
const UNREACHABLE = new Set(["EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "EHOSTDOWN", "ENETDOWN"]);

/**
 * The endpoint failure reason a Node socket or TLS error stands for. It says
 * what broke, not whether a request was sent: callers decide that from when
 * the error happened.
 */
export function dialFailureReason(e: unknown, secure = false): EndpointFailureReason {
  const code = typeof e === "object" && e !== null ? String((e as { code?: unknown }).code ?? "") : "";
  const message = e instanceof Error ? e.message : "";
  if (code === "ECONNREFUSED") return "refused";
  if (NAME_NOT_FOUND.has(code)) return "name-not-found";
  if (UNREACHABLE.has(code)) return "unreachable";
  if (TLS_CODES.test(code)) return "tls";
  // A plaintext server answers a TLS ClientHello by resetting the connection.
  if (secure && (code === "ECONNRESET" || /before secure TLS connection/.test(message))) return "tls";
  if (code.startsWith("ERR_HTTP2")) return "protocol";
  return "other";
}

/** Destroys a socket and resolves once it has closed. */
export function closeSocket(socket: Socket): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => {
    socket.once("close", () => resolve());
    socket.destroy();
  });
}

function abandoned(options: DialOptions): unknown {
  const reason: unknown = options.signal?.reason;
  return reason instanceof Error ? reason : new EndpointUnavailableError(options.address, "closed", "the dial was abandoned");
}

/**
 * Runs one stage: `body` starts it and returns how to abandon it (destroying
 * what it opened). The stage fails with `timeoutReason` after `ms`, or with
 * the signal's reason when it fires; either way only after abandoning.
 */
function stage<T>(
  options: DialOptions,
  ms: number,
  timeoutReason: EndpointFailureReason,
  body: (ok: (v: T) => void, fail: (e: unknown) => void) => () => Promise<void> | void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let abandon: () => Promise<void> | void = () => undefined;
    const finish = (): void => {
      settled = true;
      stopTimer(timer);
      options.signal?.removeEventListener("abort", onAbort);
    };
    const fail = (e: unknown): void => {
      if (settled) return;
      finish();
      void Promise.resolve(abandon()).then(() => reject(e));
    };
    const onAbort = (): void => fail(abandoned(options));
    const timer = startTimer(
      ms,
      () => fail(new EndpointUnavailableError(options.address, timeoutReason, undefined, Math.round(ms))),
      true,
    );
    options.signal?.addEventListener("abort", onAbort, { once: true });
    abandon = body((v) => {
      if (settled) return;
      finish();
      resolve(v);
    }, fail);
    if (options.signal?.aborted) onAbort();
  });
}

function systemLookup(host: string): Promise<ResolvedAddress[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(host, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });
}

function lookupStage(options: DialOptions, ms: number): Promise<ResolvedAddress[]> {
  const lookup = options.lookup ?? systemLookup;
  return stage<ResolvedAddress[]>(options, ms, "dns-timeout", (ok, fail) => {
    lookup(options.host).then(
      (addresses) => {
        if (addresses.length === 0) fail(new EndpointUnavailableError(options.address, "name-not-found", "no addresses"));
        else ok(addresses);
      },
      (e: unknown) => {
        const reason = dialFailureReason(e);
        fail(new EndpointUnavailableError(options.address, reason === "name-not-found" ? reason : "other", e));
      },
    );
    // A system lookup cannot be cancelled; its late answer is ignored.
    return () => undefined;
  });
}

/** Connects to each address in turn until one accepts. */
function connectStage(options: DialOptions, addresses: ResolvedAddress[], ms: number): Promise<Socket> {
  return stage<Socket>(options, ms, "connect-timeout", (ok, fail) => {
    let current: Socket | undefined;
    let i = 0;
    let lastError: unknown;
    const next = (): void => {
      const a = addresses[i++];
      if (a === undefined) {
        fail(new EndpointUnavailableError(options.address, dialFailureReason(lastError), lastError));
        return;
      }
      const socket = netConnect({ host: a.address, port: options.port, family: a.family });
      current = socket;
      const onError = (e: Error): void => {
        lastError = e;
        socket.destroy();
        next();
      };
      socket.once("error", onError);
      socket.once("connect", () => {
        socket.off("error", onError);
        socket.setNoDelay(true);
        ok(socket);
      });
    };
    next();
    return () => (current !== undefined ? closeSocket(current) : undefined);
  });
}

function tlsStage(options: DialOptions, tls: TlsOptions, socket: Socket, ms: number): Promise<TLSSocket> {
  const alpn = options.alpnProtocols ?? ["h2"];
  return stage<TLSSocket>(options, ms, "tls-timeout", (ok, fail) => {
    const settings: NodeTlsOptions = {
      socket,
      host: options.host,
      ALPNProtocols: alpn,
      rejectUnauthorized: tls.insecureSkipVerify !== true,
    };
    if (tls.ca !== undefined) settings.ca = tls.ca;
    if (tls.cert !== undefined) settings.cert = tls.cert;
    if (tls.key !== undefined) settings.key = tls.key;
    // SNI carries names only, never IP addresses.
    const servername = tls.servername ?? (isIP(options.host) === 0 ? options.host : undefined);
    if (servername !== undefined) settings.servername = servername;
    const secure = tlsConnect(settings);
    const onError = (e: Error): void => {
      fail(new EndpointUnavailableError(options.address, dialFailureReason(e, true), e));
    };
    secure.once("error", onError);
    secure.once("secureConnect", () => {
      secure.off("error", onError);
      const chosen = secure.alpnProtocol;
      if (typeof chosen === "string" && !alpn.includes(chosen)) {
        fail(new EndpointUnavailableError(options.address, "protocol", `the server chose ALPN protocol "${chosen}"`));
        return;
      }
      ok(secure);
    });
    return async () => {
      await Promise.all([closeSocket(secure), closeSocket(socket)]);
    };
  });
}
