/**
 * One HTTP/2 connection to one endpoint: dialled lazily (see `dial.ts`), run
 * by this project's own HTTP/2 engine (`h2/`), shared by every call and
 * stream to that endpoint, watched with PINGs while streams are open (see
 * `keep-alive.ts`), and replaced after it fails, after the server sends
 * GOAWAY, or before its stream IDs run out. A session draining after GOAWAY
 * keeps its open streams until they end (its PINGs go on, so a member hanging
 * while draining is still found); {@link Connection.close} ends it at once.
 * @module
 */
import { EventEmitter } from "node:events";
import type { Socket } from "node:net";
import type { Endpoint } from "../cluster/endpoint.js";
import { startTimer, stopTimer } from "../deadline.js";
import { EndpointUnavailableError } from "../errors.js";
import { closeSocket, dial, dialFailureReason, type LookupFunction, type TlsOptions } from "./dial.js";
import { H2Session } from "./h2/session.js";
import { KeepAlive, type Pingable } from "./keep-alive.js";

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
  /** @internal Largest stream ID a session uses (tests lower it to reach exhaustion). */
  maxStreamId?: number | undefined;
  /** @internal Stream IDs left when a replacement connection is opened (default 1000; more than calls ever started at once). */
  streamIdReserve?: number | undefined;
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
 * An HTTP/2 connection to one etcd endpoint, used by the built-in transport:
 * it dials on first use and after a failure.
 */
export class Connection extends EventEmitter<ConnectionEvents> {
  /** Current state. */
  state: ConnectionState = "idle";
  /** The error that ended the last session or dial, if any. */
  lastError: EndpointUnavailableError | undefined;

  /** The session new streams go to. */
  private session: H2Session | undefined;
  /** Every session not yet closed, the draining ones included, with its pings. */
  private readonly live = new Map<H2Session, KeepAlive>();
  private readonly sockets = new Set<Socket>();
  private dialing: Promise<H2Session> | undefined;
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
   * @internal A ready session, synchronously when one is open (the hot path),
   * otherwise a promise that dials. Rejects with {@link EndpointUnavailableError}.
   */
  acquire(): H2Session | Promise<H2Session> {
    const s = this.session;
    if (s !== undefined && s.state === "ready") return s;
    if (this.closing !== undefined) return Promise.reject(this.closedError());
    return this.dialing ?? (this.dialing = this.open());
  }

  /** @internal Counts a stream opened on `session`; sends a PING that fell due while none was open. */
  streamOpened(session: H2Session): void {
    this.live.get(session)?.opened();
  }

  /** @internal Counts a stream closed on `session`. */
  streamClosed(session: H2Session): void {
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
    const err = this.closedError();
    this.session = undefined;
    const dialing = this.dialing?.then(
      () => undefined,
      () => undefined,
    );
    this.closing = Promise.all([dialing, ...[...this.sockets].map(closeSocket)]).then(() => undefined);
    for (const [session, keepAlive] of [...this.live]) {
      keepAlive.stop();
      session.destroy(err);
    }
    this.setState("closed");
    return this.closing;
  }

  private closedError(): EndpointUnavailableError {
    return new EndpointUnavailableError(this.endpoint.address, "closed", "the client closed the connection");
  }

  private async open(): Promise<H2Session> {
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
  private handshake(socket: Socket, ms: number, signal: AbortSignal): Promise<H2Session> {
    const { endpoint, options } = this;
    const session = new H2Session(socket, {
      address: endpoint.address,
      streamWindowBytes: STREAM_WINDOW_BYTES,
      connectionWindowBytes: SESSION_WINDOW_BYTES,
      ...(options.maxStreamId !== undefined ? { maxStreamId: options.maxStreamId } : {}),
      ...(options.streamIdReserve !== undefined ? { streamIdReserve: options.streamIdReserve } : {}),
    });
    // The keep-alive asks the session at ping time, so a session patched in tests is honoured.
    const pingable: Pingable = {
      ping: (cb) => {
        session.ping().then(
          (rtt) => cb(null, rtt),
          (e: unknown) => cb(e instanceof Error ? e : new Error(String(e)), 0),
        );
        return true;
      },
    };
    const keepAlive = new KeepAlive(pingable, { intervalMs: options.keepAliveIntervalMs, timeoutMs: options.keepAliveTimeoutMs }, () =>
      this.fail(session, new EndpointUnavailableError(endpoint.address, "ping-timeout", undefined, options.keepAliveTimeoutMs)),
    );
    this.live.set(session, keepAlive);
    session.on("goaway", (code) => {
      // Streams already open finish; new calls dial a fresh session.
      if (this.session !== session) return;
      this.session = undefined;
      if (code !== 0) this.lastError = session.error ?? new EndpointUnavailableError(endpoint.address, "goaway", `GOAWAY code ${code}`);
      this.setState("idle", code !== 0 ? this.lastError : undefined);
    });
    session.on("exhausting", () => {
      // Few stream IDs left: the next call dials a replacement; this one serves its streams until they end.
      if (this.session === session) this.session = undefined;
    });
    session.on("close", (error) => {
      keepAlive.stop();
      if (keepAlive.lastRttMs !== undefined) this.retiredRttMs = keepAlive.lastRttMs;
      this.live.delete(session);
      if (this.session === session) {
        this.session = undefined;
        if (error !== undefined && this.closing === undefined) this.lastError = error;
        if (this.closing === undefined) this.setState("idle", this.lastError);
      }
    });
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (): void => {
        settled = true;
        stopTimer(timer);
        signal.removeEventListener("abort", onAbort);
      };
      const failHandshake = (err: unknown): void => {
        if (settled) return;
        finish();
        session.destroy(err instanceof EndpointUnavailableError ? err : undefined);
        void closeSocket(socket).then(() => reject(err));
      };
      const timer = startTimer(
        ms,
        () => failHandshake(new EndpointUnavailableError(endpoint.address, "dial-timeout", undefined, options.dialTimeoutMs)),
        true,
      );
      const onAbort = (): void => failHandshake(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      session.ready.then(
        () => {
          if (settled) return;
          finish();
          resolve(session);
        },
        (e: unknown) => {
          // A socket error during the handshake says what broke (e.g. a TLS 1.3 server refusing our certificate after the handshake).
          const cause = e instanceof EndpointUnavailableError ? e.cause : undefined;
          const reason = cause instanceof Error && !(cause instanceof EndpointUnavailableError) ? dialFailureReason(cause, endpoint.secure) : "other";
          failHandshake(reason !== "other" ? new EndpointUnavailableError(endpoint.address, reason, cause) : e);
        },
      );
      if (signal.aborted) onAbort();
    });
  }

  /** Ends a session that failed (current or draining) and records why. */
  private fail(session: H2Session, err: EndpointUnavailableError): void {
    if (this.closing === undefined) {
      this.lastError = err;
      if (this.session === session) {
        this.session = undefined;
        this.setState("idle", err);
      }
    }
    session.destroy(err);
  }

  private setState(state: ConnectionState, error?: EndpointUnavailableError): void {
    if (this.state === state && error === undefined) return;
    this.state = state;
    this.emit("state", state, error);
  }
}
