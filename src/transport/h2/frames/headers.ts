/**
 * HEADERS frames (RFC 9113 §6.2): the header block fragment after optional
 * padding and priority fields; a block larger than the peer's maximum frame
 * size continues in CONTINUATION frames.
 * @module
 */
import { ErrorCode, connectionError } from "../errors.js";
import { writeContinuations } from "./continuation.js";
import { FLAG_END_HEADERS, FLAG_END_STREAM, FLAG_PADDED, FLAG_PRIORITY, FRAME_HEADERS, FRAME_HEADER_BYTES, writeFrameHeader } from "./frame-header.js";
import type { FrameWriter } from "./frame-writer.js";

/** Returns the header block fragment of a HEADERS payload (a view, no copy), without padding and priority. */
export function headersFragment(payload: Buffer, flags: number, streamId: number): Buffer {
  if (streamId === 0) connectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS frame on stream 0");
  let start = 0;
  let end = payload.length;
  if ((flags & FLAG_PADDED) !== 0) {
    if (end < 1) connectionError(ErrorCode.FRAME_SIZE_ERROR, "padded HEADERS frame without a pad length");
    const pad = payload[0]!;
    start = 1;
    end -= pad;
  }
  if ((flags & FLAG_PRIORITY) !== 0) {
    // The priority fields are deprecated (RFC 9113 §5.3.2) and ignored, but occupy 5 bytes.
    start += 5;
  }
  if (end < start) connectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS padding or priority longer than the frame");
  return payload.subarray(start, end);
}

/**
 * Writes a header block as a HEADERS frame, split into CONTINUATION frames
 * when it is larger than `maxFrameSize`.
 */
export function writeHeaders(w: FrameWriter, streamId: number, block: Uint8Array, blockLength: number, endStream: boolean, maxFrameSize: number): void {
  const first = Math.min(blockLength, maxFrameSize);
  const done = first === blockLength;
  const flags = (endStream ? FLAG_END_STREAM : 0) | (done ? FLAG_END_HEADERS : 0);
  const o = w.reserve(FRAME_HEADER_BYTES + first);
  writeFrameHeader(w.buf, o, first, FRAME_HEADERS, flags, streamId);
  w.buf.set(first === block.byteLength ? block : block.subarray(0, first), o + FRAME_HEADER_BYTES);
  if (!done) writeContinuations(w, streamId, block, first, blockLength, maxFrameSize);
}
