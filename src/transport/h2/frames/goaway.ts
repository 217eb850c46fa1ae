/**
 * GOAWAY frames (RFC 9113 §6.8): the sender will not process streams above
 * `lastStreamId`; streams up to it may complete. Servers often send two: first
 * with the largest stream ID (stop opening streams), then with the real last one.
 * @module
 */
import { ErrorCode, connectionError } from "../errors.js";
import { FRAME_GOAWAY, FRAME_HEADER_BYTES, readStreamId, readUint32, writeFrameHeader, writeUint32 } from "./frame-header.js";
import type { FrameWriter } from "./frame-writer.js";

/** Most bytes of GOAWAY debug data kept (the rest is dropped, not buffered). */
export const MAX_GOAWAY_DEBUG_BYTES = 1024;

/** A parsed GOAWAY. */
export interface GoAway {
  lastStreamId: number;
  code: number;
  /** Debug data as text (latin1), at most {@link MAX_GOAWAY_DEBUG_BYTES}. */
  debug: string;
}

/** Checks a GOAWAY frame header. */
export function checkGoAwayFrame(length: number, streamId: number): void {
  if (streamId !== 0) connectionError(ErrorCode.PROTOCOL_ERROR, `GOAWAY frame on stream ${streamId}`);
  if (length < 8) connectionError(ErrorCode.FRAME_SIZE_ERROR, `GOAWAY payload of ${length} bytes`);
}

/** Parses a GOAWAY payload. */
export function parseGoAway(payload: Buffer): GoAway {
  const end = Math.min(payload.length, 8 + MAX_GOAWAY_DEBUG_BYTES);
  return { lastStreamId: readStreamId(payload, 0), code: readUint32(payload, 4), debug: payload.toString("latin1", 8, end) };
}

/** Writes a GOAWAY. */
export function writeGoAway(w: FrameWriter, lastStreamId: number, code: number, debug = ""): void {
  const d = Buffer.from(debug.slice(0, MAX_GOAWAY_DEBUG_BYTES), "latin1");
  const o = w.reserve(FRAME_HEADER_BYTES + 8 + d.length);
  writeFrameHeader(w.buf, o, 8 + d.length, FRAME_GOAWAY, 0, 0);
  writeUint32(w.buf, o + FRAME_HEADER_BYTES, lastStreamId & 0x7fffffff);
  writeUint32(w.buf, o + FRAME_HEADER_BYTES + 4, code);
  w.buf.set(d, o + FRAME_HEADER_BYTES + 8);
}
