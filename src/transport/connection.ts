/**
 * One HTTP/2 connection to one endpoint: dialled lazily (see `dial.ts`),
 * shared by every call and stream to that endpoint, watched with PINGs while
 * streams are open (see `keep-alive.ts`), and replaced after it fails or the
 * server sends GOAWAY. A session draining after GOAWAY keeps its open
 * streams until they end, for at most one ping cycle (node:http2 cannot ping
 * a closing session, so a member hanging while draining is found this way);
 * {@link Connection.close} ends it at once.
 * @module
 */
import * as http2 from "node:http2";
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import type { Endpoint } from "../cluster/endpoint.js";
import { startTimer, stopTimer } from "../deadline.js";
import { EndpointUnavailableError } from "../errors.js";
import { closeSocket, dial, dialFailureReason, type LookupFunction, type TlsOptions } from "./dial.js";
import { KeepAlive } from "./keep-alive.js";

export type { TlsOptions } from "./dial.js";

/** How a {@link Connection} dials and checks its peer. */
export interface ConnectionOptions {
  /** Fail a connection attempt that is not established (DNS, TCP, TLS, HTTP/2 settings) within this time. */
  dialTimeoutMs: number;
  /** Most of `dialTimeoutMs` the name lookup may take (default: all of it). */
  lookupTimeoutMs?: number | undefined;
  /** Most of `dialTimeoutMs` the TCP connect may take (default: all that is left). */
  connectTimeoutMs?: number | undefined;
  /** Most of `dialTimeoutMs` the TLS handshake may take (default: all that is left). */
  tlsTimeoutMs?: number | undefined;
  /**
   * While at least one call or stream is open, send an HTTP/2 PING at this interval.
   * Values under 10000 are raised to 10000 (etcd refuses pings closer than 5 s
   * apart; see `MIN_PING_INTERVAL_MS`). 0 disables pings.
   */
  keepAliveIntervalMs: number;
  /** Declare the connection dead when a PING is not answered within this time after it was sent. */
  keepAliveTimeoutMs: number;
  /** TLS settings for `https://` endpoints. */
  tls?: TlsOptions | undefined;
  /** Name lookup for host names (default: the system resolver). */
  lookup?: LookupFunction | undefined;
}

/** Where a connection is in its life. */
export type ConnectionState = "idle" | "connecting" | "ready" | "closed";

/** Events a {@link Connection} emits. */
export interface ConnectionEvents {
  /** The connection changed state; `error` says why it dropped. */
  state: [state: ConnectionState, error?: EndpointUnavailableError];
}

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

  /** The session new streams go to. */
  private session: http2.ClientHttp2Session | undefined;
  /** Every session not yet closed, the draining ones included, with its pings. */
  private readonly live = new Map<http2.ClientHttp2Session, KeepAlive>();
  private readonly sockets = new Set<Socket>();
  private dialing: Promise<http2.ClientHttp2Session> | undefined;
  private dialAbort: AbortController | undefined;
  private closing: Promise<void> | undefined;
  private retiredRttMs: number | undefined;

  constructor(
    /** The endpoint this connection goes to. */
    readonly endpoint: Endpoint,
    private readonly options: ConnectionOptions,
  ) {
    super();
  }

  /** Calls and streams open on this connection right now (draining sessions included). */
  get openStreams(): number {
    let n = 0;
    for (const k of this.live.values()) n += k.openStreams;
    return n;
  }

  /** Round-trip time of the last answered PING, in milliseconds. */
  get lastRttMs(): number | undefined {
    const current = this.session !== undefined ? this.live.get(this.session)?.lastRttMs : undefined;
    return current ?? this.retiredRttMs;
  }

  /**
   * A ready session, synchronously when one is open (the hot path), otherwise
   * a promise that dials. Rejects with {@link EndpointUnavailableError}.
   */
  acquire(): http2.ClientHttp2Session | Promise<http2.ClientHttp2Session> {
    const s = this.session;
    if (s !== undefined && !s.closed && !s.destroyed) return s;
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    return this.dialing ?? (this.dialing = this.open());
  }

  /** Counts a stream opened on `session`; sends a PING that fell due while none was open. */
  streamOpened(session: http2.ClientHttp2Session): void {
    this.live.get(session)?.opened();
  }

  /** Counts a stream closed on `session`. */
  streamClosed(session: http2.ClientHttp2Session): void {
    this.live.get(session)?.closed();
  }

  /**
   * Closes the connection for good: abandons a dial in flight, destroys every
   * session (draining ones too; their streams fail), and resolves once every
   * socket is closed. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.dialAbort?.abort(this.closedError());
    for (const [session, keepAlive] of this.live) {
      keepAlive.stop();
      session.destroy();
    }
    this.session = undefined;
    const dialing = this.dialing?.then(
      () => undefined,
      () => undefined,
    );
    this.closing = Promise.all([dialing, ...[...this.sockets].map(closeSocket)]).then(() => undefined);
    this.setState("closed");
    return this.closing;
  }

  private closedError(): EndpointUnavailableError {
    return new EndpointUnavailableError(this.endpoint.address, "closed", "the client closed the connection");
  }

  private async open(): Promise<http2.ClientHttp2Session> {
    const ac = new AbortController();
    this.dialAbort = ac;
    this.setState("connecting");
    const { endpoint, options } = this;
    const started = performance.now();
    try {
      const socket = await dial({
        host: endpoint.host,
        port: endpoint.port,
        address: endpoint.address,
        tls: endpoint.secure ? (options.tls ?? {}) : undefined,
        timeoutMs: options.dialTimeoutMs,
        lookupTimeoutMs: options.lookupTimeoutMs,
        connectTimeoutMs: options.connectTimeoutMs,
        tlsTimeoutMs: options.tlsTimeoutMs,
        signal: ac.signal,
        lookup: options.lookup,
      });
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      const session = await this.handshake(socket, options.dialTimeoutMs - (performance.now() - started), ac.signal);
      this.session = session;
      this.lastError = undefined;
      this.setState("ready");
      return session;
    } catch (e) {
      const err = e instanceof EndpointUnavailableError ? e : new EndpointUnavailableError(endpoint.address, "other", e);
      if (this.closing === undefined) {
        this.lastError = err;
        this.setState("idle", err);
      }
      throw err;
    } finally {
      this.dialing = undefined;
      this.dialAbort = undefined;
    }
  }

  /**
   * Runs HTTP/2 over a connected socket. Ready only once the server's SETTINGS
   * frame arrives: a blackholed acceptor completes TCP (and TLS, through some
   * proxies) but never sends it, and must fail within the dial timeout.
   */
  private handshake(socket: Socket, ms: number, signal: AbortSignal): Promise<http2.ClientHttp2Session> {
    const { endpoint, options } = this;
    return new Promise((resolve, reject) => {
      const session = http2.connect(endpoint.origin, {
        createConnection: () => socket,
        settings: { enablePush: false, initialWindowSize: STREAM_WINDOW_BYTES },
        // The server may cap streams per connection; let Node queue beyond it.
        peerMaxConcurrentStreams: 1000,
      });
      const keepAlive = new KeepAlive(
        session,
        { intervalMs: options.keepAliveIntervalMs, timeoutMs: options.keepAliveTimeoutMs },
        () => this.fail(session, new EndpointUnavailableError(endpoint.address, "ping-timeout", undefined, options.keepAliveTimeoutMs)),
      );
      this.live.set(session, keepAlive);
      let settled = false;
      const cleanup = (): void => {
        settled = true;
        stopTimer(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const failHandshake = (err: unknown): void => {
        if (settled) return;
        cleanup();
        session.destroy();
        void closeSocket(socket).then(() => reject(err));
      };
      const timer = startTimer(
        ms,
        () => failHandshake(new EndpointUnavailableError(endpoint.address, "dial-timeout", undefined, options.dialTimeoutMs)),
        true,
      );
      const onAbort = (): void => failHandshake(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      // The socket and the session report errors separately (an http2 session misses socket errors
      // right after the TLS handshake, e.g. a TLS 1.3 server rejecting our client certificate).
      const onError = (e: Error): void => {
        if (!settled) failHandshake(new EndpointUnavailableError(endpoint.address, dialFailureReason(e, endpoint.secure), e));
        else this.fail(session, new EndpointUnavailableError(endpoint.address, "connection-lost", e));
      };
      socket.on("error", onError);
      session.on("error", onError);
      session.once("remoteSettings", () => {
        if (settled) return;
        cleanup();
        try {
          session.setLocalWindowSize(SESSION_WINDOW_BYTES);
        } catch {
          // Only an optimisation; a session that refuses it still works.
        }
        resolve(session);
      });
      let draining = false;
      session.on("goaway", (code) => {
        // Streams already open finish; new calls dial a fresh session.
        if (this.session === session) {
          this.session = undefined;
          if (code !== http2.constants.NGHTTP2_NO_ERROR) {
            this.lastError = new EndpointUnavailableError(endpoint.address, "goaway", `GOAWAY code ${code}`);
          }
          this.setState("idle", this.lastError);
        }
        if (!session.closed) session.close();
        if (draining) return;
        draining = true;
        // node:http2 cancels PINGs on a closing session, so a member that hangs while draining cannot
        // be found by pings: the drain gets what a ping cycle would take, then the session is ended.
        keepAlive.stop();
        if (options.keepAliveIntervalMs > 0 && !session.destroyed) {
          const drainMs = keepAlive.intervalMs + options.keepAliveTimeoutMs;
          const t = startTimer(drainMs, () => this.fail(session, new EndpointUnavailableError(endpoint.address, "goaway", `still draining after ${drainMs} ms`)), true);
          session.once("close", () => stopTimer(t));
        }
      });
      session.on("close", () => {
        keepAlive.stop();
        if (keepAlive.lastRttMs !== undefined) this.retiredRttMs = keepAlive.lastRttMs;
        this.live.delete(session);
        if (!settled) {
          failHandshake(new EndpointUnavailableError(endpoint.address, "protocol", "connection closed during the handshake"));
          return;
        }
        if (this.session === session) {
          this.session = undefined;
          if (this.closing === undefined) this.setState("idle", this.lastError);
        }
      });
      if (signal.aborted) onAbort();
    });
  }

  /** Ends a session that failed (current or draining) and records why. */
  private fail(session: http2.ClientHttp2Session, err: EndpointUnavailableError): void {
    if (this.closing !== undefined) {
      session.destroy();
      return;
    }
    this.lastError = err;
    if (this.session === session) {
      this.session = undefined;
      this.setState("idle", err);
    }
    session.destroy();
  }

  private setState(state: ConnectionState, error?: EndpointUnavailableError): void {
    if (this.state === state && error === undefined) return;
    this.state = state;
    this.emit("state", state, error);
  }
}
