/**
 * RST_STREAM frames (RFC 9113 §6.4): ends one stream with an error code.
 * @module
 */
import { ErrorCode, connectionError } from "../errors.js";
import { FRAME_HEADER_BYTES, FRAME_RST_STREAM, readUint32, writeFrameHeader, writeUint32 } from "./frame-header.js";
import type { FrameWriter } from "./frame-writer.js";

/** Checks a RST_STREAM frame header. */
export function checkRstStreamFrame(length: number, streamId: number): void {
  if (streamId === 0) connectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM frame on stream 0");
  if (length !== 4) connectionError(ErrorCode.FRAME_SIZE_ERROR, `RST_STREAM payload of ${length} bytes`);
}

/** Reads the error code. */
export function parseRstStream(payload: Uint8Array): number {
  return readUint32(payload, 0);
}

/** Writes a RST_STREAM. */
export function writeRstStream(w: FrameWriter, streamId: number, code: number): void {
  const o = w.reserve(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(w.buf, o, 4, FRAME_RST_STREAM, 0, streamId);
  writeUint32(w.buf, o + FRAME_HEADER_BYTES, code);
}
