/**
 * WINDOW_UPDATE frames (RFC 9113 §6.9): a 31-bit increment to a stream's
 * flow-control window, or to the connection's on stream 0.
 * @module
 */
import { ErrorCode, H2Error, connectionError } from "../errors.js";
import { FRAME_HEADER_BYTES, FRAME_WINDOW_UPDATE, writeFrameHeader, writeUint32 } from "./frame-header.js";
import type { FrameWriter } from "./frame-writer.js";

/** Checks a WINDOW_UPDATE frame header. */
export function checkWindowUpdateFrame(length: number): void {
  if (length !== 4) connectionError(ErrorCode.FRAME_SIZE_ERROR, `WINDOW_UPDATE payload of ${length} bytes`);
}

/**
 * Reads the increment. Zero is a protocol error: a connection error on
 * stream 0, a stream error otherwise.
 */
export function parseWindowUpdate(payload: Uint8Array, streamId: number): number {
  const inc = (payload[0]! & 0x7f) * 0x1000000 + ((payload[1]! << 16) | (payload[2]! << 8) | payload[3]!);
  if (inc === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE with an increment of 0", streamId);
  return inc;
}

/** Writes a WINDOW_UPDATE. */
export function writeWindowUpdate(w: FrameWriter, streamId: number, increment: number): void {
  const o = w.reserve(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(w.buf, o, 4, FRAME_WINDOW_UPDATE, 0, streamId);
  writeUint32(w.buf, o + FRAME_HEADER_BYTES, increment);
}
