/**
 * One HTTP/2 connection to one endpoint: opened lazily, shared by every call
 * and stream to that endpoint, watched with PINGs while streams are open, and
 * replaced after it fails or the server sends GOAWAY.
 * @module
 */
import * as http2 from "node:http2";
import { EventEmitter } from "node:events";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect, type SecureContextOptions } from "node:tls";
import type { Endpoint } from "../cluster/endpoint.js";
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

/** How a {@link Connection} dials and checks its peer. */
export interface ConnectionOptions {
  /** Fail a connection attempt that is not established (TCP, TLS, HTTP/2 settings) within this time. */
  dialTimeoutMs: number;
  /**
   * While at least one call or stream is open, send an HTTP/2 PING at this interval.
   * etcd refuses pings closer than 5 s apart (GOAWAY `too_many_pings`), so values
   * under 5000 are raised to 5000. 0 disables pings.
   */
  keepAliveIntervalMs: number;
  /** Declare the connection dead when a PING is not answered within this time. */
  keepAliveTimeoutMs: number;
  tls?: TlsOptions | undefined;
}

/** Where a connection is in its life. */
export type ConnectionState = "idle" | "connecting" | "ready" | "closed";

/** Events a {@link Connection} emits. */
export interface ConnectionEvents {
  state: [state: ConnectionState, error?: EndpointUnavailableError];
}

const MIN_PING_INTERVAL_MS = 5000;
/** Delay between a call opening on an idle connection and an overdue PING. */
const PING_AFTER_OPEN_MS = 20;
// Large windows let a big range response arrive without waiting on WINDOW_UPDATE round trips.
const STREAM_WINDOW_BYTES = 4 << 20;
const SESSION_WINDOW_BYTES = 16 << 20;

/**
 * An HTTP/2 connection to one etcd endpoint. Call {@link Connection.acquire}
 * for a live session; the connection dials on first use and after a failure.
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  /** Current state. */
  state: ConnectionState = "idle";
  /** The error that ended the last session or dial, if any. */
  lastError: EndpointUnavailableError | undefined;
  /** Round-trip time of the last answered PING, in milliseconds. */
  lastRttMs: number | undefined;
  /** Calls and streams open on this connection right now. */
  openStreams = 0;

  private session: http2.ClientHttp2Session | undefined;
  private dialing: Promise<http2.ClientHttp2Session> | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private pingDue = false;
  private closed = false;

  constructor(
    readonly endpoint: Endpoint,
    private readonly options: ConnectionOptions,
  ) {
    super();
  }

  /**
   * A ready session, synchronously when one is open (the hot path), otherwise
   * a promise that dials. Rejects with {@link EndpointUnavailableError}.
   */
  acquire(): http2.ClientHttp2Session | Promise<http2.ClientHttp2Session> {
    const s = this.session;
    if (s !== undefined && !s.closed && !s.destroyed) return s;
    return this.dialing ?? (this.dialing = this.dial());
  }

  /** Counts a stream opened on the current session; sends a PING that fell due while none was open. */
  streamOpened(): void {
    if (this.openStreams++ === 0 && this.pingDue) this.sendDuePing();
  }

  /** Counts a stream closed. */
  streamClosed(): void {
    this.openStreams--;
  }

  /** Closes the session now; open streams fail. The connection cannot be used again. */
  close(): void {
    this.closed = true;
    this.stopPings();
    const s = this.session;
    this.session = undefined;
    s?.destroy();
    this.setState("closed");
  }

  private dial(): Promise<http2.ClientHttp2Session> {
    if (this.closed) {
      return Promise.reject(new EndpointUnavailableError(this.endpoint.address, "closed"));
    }
    this.setState("connecting");
    return new Promise((resolve, reject) => {
      const { endpoint, options } = this;
      const tls = options.tls;
      const secure: SecureContextOptions & Record<string, unknown> = {};
      if (endpoint.secure) {
        if (tls?.ca !== undefined) secure.ca = tls.ca;
        if (tls?.cert !== undefined) secure.cert = tls.cert;
        if (tls?.key !== undefined) secure.key = tls.key;
        if (tls?.servername !== undefined) secure.servername = tls.servername;
        if (tls?.insecureSkipVerify) secure.rejectUnauthorized = false;
      }
      let session: http2.ClientHttp2Session;
      let socket: Socket;
      try {
        // We open the socket ourselves: an http2 session does not report socket
        // errors that arrive right after the TLS handshake (a server rejecting
        // our client certificate under TLS 1.3), so we listen on the socket.
        socket = endpoint.secure
          ? tlsConnect({
              ...secure,
              host: endpoint.host,
              port: endpoint.port,
              ALPNProtocols: ["h2"],
              ...(secure.servername === undefined && isIP(endpoint.host) === 0 ? { servername: endpoint.host } : {}),
            })
          : netConnect({ host: endpoint.host, port: endpoint.port });
        socket.setNoDelay(true);
        session = http2.connect(endpoint.origin, {
          createConnection: () => socket,
          settings: { enablePush: false, initialWindowSize: STREAM_WINDOW_BYTES },
          // The server may cap streams per connection; let Node queue beyond it.
          peerMaxConcurrentStreams: 1000,
        });
      } catch (e) {
        this.dialing = undefined;
        const err = new EndpointUnavailableError(endpoint.address, classifyDialError(e), e);
        this.lastError = err;
        this.setState("idle", err);
        reject(err);
        return;
      }
      let settled = false;
      // The socket and the session report errors separately; either ends the dial or the session.
      const onError = (e: Error): void => {
        const err = new EndpointUnavailableError(endpoint.address, settled ? "connection-lost" : classifyDialError(e, endpoint.secure), e);
        if (!settled) onFail(err);
        else this.fail(session, err);
      };
      socket.on("error", onError);
      const timer = setTimeout(() => {
        onFail(new EndpointUnavailableError(endpoint.address, "dial-timeout", undefined, options.dialTimeoutMs));
      }, options.dialTimeoutMs);
      const onFail = (err: EndpointUnavailableError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.dialing = undefined;
        this.lastError = err;
        session.destroy();
        socket.destroy();
        this.setState("idle", err);
        reject(err);
      };
      // Ready only once the server's SETTINGS frame arrives: a blackholed
      // acceptor completes TCP (and "connect") but never sends it, and must
      // fail within dialTimeout like an endpoint that does not accept at all.
      session.once("remoteSettings", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.dialing = undefined;
        try {
          session.setLocalWindowSize(SESSION_WINDOW_BYTES);
        } catch {
          // Only an optimisation; a session that refuses it still works.
        }
        this.session = session;
        this.lastError = undefined;
        this.setState("ready");
        this.startPings();
        resolve(session);
      });
      session.on("error", onError);
      session.on("goaway", (code) => {
        // Streams already open finish; new calls dial a fresh session.
        if (this.session === session) {
          this.session = undefined;
          if (code !== http2.constants.NGHTTP2_NO_ERROR) {
            this.lastError = new EndpointUnavailableError(endpoint.address, "goaway", `GOAWAY code ${code}`);
          }
          this.setState("idle", this.lastError);
        }
        session.close();
      });
      session.on("close", () => {
        if (!settled) {
          onFail(new EndpointUnavailableError(endpoint.address, "protocol", "connection closed during the handshake"));
          return;
        }
        if (this.session === session) {
          this.session = undefined;
          this.stopPings();
          if (!this.closed) this.setState("idle", this.lastError);
        }
      });
    });
  }

  private fail(session: http2.ClientHttp2Session, err: EndpointUnavailableError): void {
    if (this.session === session) {
      this.session = undefined;
      this.lastError = err;
      this.stopPings();
      this.setState("idle", err);
    }
    session.destroy();
  }

  /**
   * Pings run on one timer per session, anchored to the last ping rather than
   * to each call, so a string of short calls cannot postpone them forever. A
   * ping falls due only while a call or stream is open (etcd counts pings on an
   * idle connection as abuse); when it falls due on an idle connection, it is
   * sent shortly after the next call opens.
   */
  private startPings(): void {
    if (this.options.keepAliveIntervalMs <= 0 || this.session === undefined) return;
    // A new connection has sent no PING yet, so etcd's 5 s spacing allows one
    // with the first call: it checks the peer early and gives a first RTT.
    this.pingDue = true;
    if (this.openStreams > 0) this.sendDuePing();
  }

  private sendDuePing(): void {
    this.pingDue = false;
    // Not at once: the call's HEADERS must reach the server before the PING, or it sees a ping on an idle connection.
    this.schedulePing(PING_AFTER_OPEN_MS);
  }

  private pingIntervalMs(): number {
    return Math.max(MIN_PING_INTERVAL_MS, this.options.keepAliveIntervalMs);
  }

  private schedulePing(delayMs: number): void {
    if (this.pingTimer !== undefined) clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      this.pingTimer = undefined;
      if (this.session === undefined) return;
      if (this.openStreams > 0) {
        this.ping();
        this.schedulePing(this.pingIntervalMs());
      } else {
        this.pingDue = true;
      }
    }, delayMs);
    this.pingTimer.unref();
  }

  private stopPings(): void {
    this.pingDue = false;
    if (this.pingTimer !== undefined) {
      clearTimeout(this.pingTimer);
      this.pingTimer = undefined;
    }
  }

  private ping(): void {
    const session = this.session;
    if (session === undefined || session.closed || session.destroyed) return;
    const timeout = setTimeout(() => {
      this.fail(session, new EndpointUnavailableError(this.endpoint.address, "ping-timeout", undefined, this.options.keepAliveTimeoutMs));
    }, this.options.keepAliveTimeoutMs);
    timeout.unref();
    try {
      session.ping((err, duration) => {
        clearTimeout(timeout);
        if (err === null) this.lastRttMs = duration;
      });
    } catch {
      // A session torn down between the check and the ping; its close handler does the rest.
      clearTimeout(timeout);
    }
  }

  private setState(state: ConnectionState, error?: EndpointUnavailableError): void {
    if (this.state === state && error === undefined) return;
    this.state = state;
    this.emit("state", state, error);
  }
}

const TLS_CODES = /^(ERR_SSL|ERR_TLS|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|EPROTO$|ERR_OSSL)/;

/** Why a dial failed, from Node's error code: the cause matters more than the gRPC code. */
export function classifyDialError(e: unknown, secure = false): EndpointFailureReason {
  const code = typeof e === "object" && e !== null ? String((e as { code?: unknown }).code ?? "") : "";
  const message = e instanceof Error ? e.message : "";
  if (code === "ECONNREFUSED") return "refused";
  if (TLS_CODES.test(code)) return "tls";
  // A plaintext server answers a TLS ClientHello by resetting the connection.
  if (secure && (code === "ECONNRESET" || /before secure TLS connection/.test(message))) return "tls";
  if (code.startsWith("ERR_HTTP2")) return "protocol";
  return "other";
}
