/**
 * States of a client stream (RFC 9113 §5.1), plus the one before it: queued,
 * waiting for a stream slot (MAX_CONCURRENT_STREAMS) or for the connection to
 * be ready. A client stream never sees "reserved" (push is disabled), and
 * leaves "idle" the moment its HEADERS are written.
 * @module
 */

/** Waiting to be sent; has no stream ID yet. */
export const STREAM_QUEUED = 0;
/** HEADERS sent; both sides may send. */
export const STREAM_OPEN = 1;
/** We sent END_STREAM; the response is still coming. */
export const STREAM_HALF_CLOSED_LOCAL = 2;
/** The peer sent END_STREAM; we may still be sending. */
export const STREAM_HALF_CLOSED_REMOTE = 3;
/** Over, for whatever reason. */
export const STREAM_CLOSED = 4;

export type StreamState = typeof STREAM_QUEUED | typeof STREAM_OPEN | typeof STREAM_HALF_CLOSED_LOCAL | typeof STREAM_HALF_CLOSED_REMOTE | typeof STREAM_CLOSED;

const NAMES = ["queued", "open", "half-closed (local)", "half-closed (remote)", "closed"] as const;

/** Readable name of a state. */
export function streamStateName(s: StreamState): (typeof NAMES)[number] {
  return NAMES[s];
}

/** The state after we send END_STREAM. */
export function afterLocalEnd(s: StreamState): StreamState {
  return s === STREAM_OPEN ? STREAM_HALF_CLOSED_LOCAL : s === STREAM_HALF_CLOSED_REMOTE ? STREAM_CLOSED : s;
}

/** The state after the peer sends END_STREAM. */
export function afterRemoteEnd(s: StreamState): StreamState {
  return s === STREAM_OPEN ? STREAM_HALF_CLOSED_REMOTE : s === STREAM_HALF_CLOSED_LOCAL ? STREAM_CLOSED : s;
}

/** May the peer still send on a stream in this state? */
export function remoteOpen(s: StreamState): boolean {
  return s === STREAM_OPEN || s === STREAM_HALF_CLOSED_LOCAL;
}
