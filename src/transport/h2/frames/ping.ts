/**
 * PING frames (RFC 9113 §6.7): 8 opaque bytes, echoed back with ACK.
 * @module
 */
import { ErrorCode, connectionError } from "../errors.js";
import { FLAG_ACK, FRAME_HEADER_BYTES, FRAME_PING, writeFrameHeader } from "./frame-header.js";
import type { FrameWriter } from "./frame-writer.js";

/** Bytes in a PING payload. */
export const PING_PAYLOAD_BYTES = 8;

/** Checks a PING frame header. */
export function checkPingFrame(length: number, streamId: number): void {
  if (streamId !== 0) connectionError(ErrorCode.PROTOCOL_ERROR, `PING frame on stream ${streamId}`);
  if (length !== PING_PAYLOAD_BYTES) connectionError(ErrorCode.FRAME_SIZE_ERROR, `PING payload of ${length} bytes`);
}

/** Writes a PING (or its acknowledgement) with the 8 bytes of `payload` from `offset`. */
export function writePing(w: FrameWriter, payload: Uint8Array, offset: number, ack: boolean): void {
  const o = w.reserve(FRAME_HEADER_BYTES + PING_PAYLOAD_BYTES);
  writeFrameHeader(w.buf, o, PING_PAYLOAD_BYTES, FRAME_PING, ack ? FLAG_ACK : 0, 0);
  for (let i = 0; i < PING_PAYLOAD_BYTES; i++) w.buf[o + FRAME_HEADER_BYTES + i] = payload[offset + i]!;
}
