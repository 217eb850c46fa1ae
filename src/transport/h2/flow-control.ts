/**
 * Flow-control windows (RFC 9113 §5.2, §6.9). Sending: the peer's windows
 * (connection and stream) are plain numbers the session decrements as it
 * writes DATA and raises on WINDOW_UPDATE; a stream's window can go negative
 * when the peer lowers SETTINGS_INITIAL_WINDOW_SIZE. Receiving: a
 * {@link ReceiveWindow} counts what the peer may still send, and which bytes
 * have been released (read by the consumer, or for the connection, received)
 * but not yet announced with WINDOW_UPDATE.
 * @module
 */
import { ErrorCode, H2Error } from "./errors.js";
import { MAX_WINDOW_SIZE } from "./frames/settings.js";

/**
 * Adds a WINDOW_UPDATE increment (or a SETTINGS_INITIAL_WINDOW_SIZE delta) to
 * a send window. Past 2^31 - 1 is a FLOW_CONTROL_ERROR: a connection error
 * for stream 0, else a stream error.
 */
export function growSendWindow(window: number, increment: number, streamId: number): number {
  const next = window + increment;
  if (next > MAX_WINDOW_SIZE) throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `flow-control window of stream ${streamId} raised past 2^31-1`, streamId);
  return next;
}

/** The window we grant the peer on the connection or one stream. */
export class ReceiveWindow {
  /** Bytes the peer may still send. */
  available: number;
  /** Released bytes not yet announced. */
  private owed = 0;
  /** Announce once this many bytes are owed (a quarter of the window: few updates, never a stall). */
  private readonly threshold: number;

  constructor(
    /** The window we keep open. */
    readonly size: number,
    /** What the peer believes it has at the start (65535 for the connection before our first WINDOW_UPDATE). */
    initial = size,
  ) {
    this.available = initial;
    this.threshold = Math.max(1, Math.floor(size / 4));
  }

  /** Counts `n` bytes received; false when the peer sent more than its window allowed. */
  receive(n: number): boolean {
    if (n > this.available) return false;
    this.available -= n;
    return true;
  }

  /**
   * Releases `n` bytes (consumed, or received for the connection window).
   * Returns the increment to announce now, or 0 to wait for more.
   */
  release(n: number): number {
    this.owed += n;
    if (this.owed < this.threshold) return 0;
    return this.flush();
  }

  /** Returns everything owed as an increment to announce now (0 if nothing). */
  flush(): number {
    const inc = this.owed;
    this.owed = 0;
    this.available += inc;
    return inc;
  }
}
