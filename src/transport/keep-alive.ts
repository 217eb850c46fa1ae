/**
 * Keep-alive PINGs for one HTTP/2 session, to find a dead or hung peer while
 * calls wait on it. Pings follow etcd's server policy: only while a call or
 * stream is open (a ping on an idle connection counts as abuse), and never
 * closer together than {@link MIN_PING_INTERVAL_MS}. Works with any session
 * that can send a PING and report its answer, not only `node:http2`.
 * @module
 */
import { startTimer, stopTimer, type Timer } from "../deadline.js";

/**
 * The shortest interval between PINGs. etcd's server allows one every 5 s
 * (`--grpc-keepalive-min-time`) and answers more with GOAWAY `too_many_pings`;
 * like grpc-go's client, we keep a wide margin above that, so jitter on the
 * network or in either process can never make two pings look too close.
 */
export const MIN_PING_INTERVAL_MS = 10_000;

/** Delay between a call opening on an idle session and an overdue PING. */
const PING_AFTER_OPEN_MS = 20;

/** A session that can send a PING. */
export interface Pingable {
  ping(callback: (err: Error | null, durationMs: number) => void): boolean;
}

/** Interval and timeout of a {@link KeepAlive}. */
export interface KeepAliveOptions {
  /** PING interval while streams are open; raised to {@link MIN_PING_INTERVAL_MS}; `<= 0` disables pings. */
  intervalMs: number;
  /** A PING unanswered this long after it was sent means the peer is dead. */
  timeoutMs: number;
}

/**
 * The PING schedule of one session. Pings run on one timer, anchored to the
 * last ping rather than to each call, so a string of short calls cannot
 * postpone them forever. A ping that falls due while nothing is open is sent
 * shortly after the next call opens.
 */
export class KeepAlive {
  /** Calls and streams open on the session now. */
  openStreams = 0;
  /** Round trip of the last answered PING, in milliseconds. */
  lastRttMs: number | undefined;
  // A new session has sent no PING yet, so etcd's spacing allows one with the first call.
  private due = true;
  private timer: Timer;
  private stopped = false;

  constructor(
    private readonly session: Pingable,
    private readonly options: KeepAliveOptions,
    /** Called once when a PING goes unanswered. */
    private readonly onDead: () => void,
  ) {
    if (options.intervalMs <= 0) this.stopped = true;
  }

  /** The interval actually used. */
  get intervalMs(): number {
    return Math.max(MIN_PING_INTERVAL_MS, this.options.intervalMs);
  }

  /** Counts a call or stream opened; sends a PING that fell due while none was open. */
  opened(): void {
    if (this.openStreams++ === 0 && this.due && !this.stopped) {
      this.due = false;
      // Not at once: the call's HEADERS must reach the server before the PING, or it sees a ping on an idle connection.
      this.schedule(PING_AFTER_OPEN_MS);
    }
  }

  /** Counts a call or stream closed. */
  closed(): void {
    this.openStreams--;
  }

  /** Stops pinging (the session is gone). */
  stop(): void {
    this.stopped = true;
    stopTimer(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    stopTimer(this.timer);
    this.timer = startTimer(
      delayMs,
      () => {
        this.timer = undefined;
        if (this.stopped) return;
        if (this.openStreams > 0) {
          this.ping();
          this.schedule(this.intervalMs);
        } else {
          this.due = true;
        }
      },
      true,
    );
  }

  private ping(): void {
    let answered = false;
    let check: Timer;
    // When the PING actually went out: set once the event loop has flushed it, so a stall of our
    // own loop between queueing and writing is not counted against the peer.
    let sentAt = performance.now();
    try {
      this.session.ping((err, duration) => {
        answered = true;
        stopTimer(check);
        if (err === null) this.lastRttMs = duration;
      });
    } catch {
      // A session torn down under us; its close handling does the rest.
      return;
    }
    setImmediate(() => {
      sentAt = performance.now();
    });
    const judge = (): void => {
      // After a stall of our own loop the answer may be waiting unread: let the poll phase read it first.
      setImmediate(() => {
        if (answered || this.stopped) return;
        const waited = performance.now() - sentAt;
        if (waited < this.options.timeoutMs) {
          check = startTimer(this.options.timeoutMs - waited, judge, true);
          return;
        }
        this.stop();
        this.onDead();
      });
    };
    check = startTimer(this.options.timeoutMs, judge, true);
  }
}
