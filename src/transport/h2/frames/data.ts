/**
 * DATA frames (RFC 9113 §6.1). Receiving is streamed by the frame reader
 * (a DATA payload is handed out piece by piece as the socket delivers it);
 * this module checks the frame and writes outgoing ones.
 * @module
 */
import { ErrorCode, connectionError } from "../errors.js";
import { FLAG_END_STREAM, FLAG_PADDED, FRAME_DATA, FRAME_HEADER_BYTES, writeFrameHeader } from "./frame-header.js";
import type { FrameWriter } from "./frame-writer.js";

/** Payloads up to this size are copied into the write batch; larger ones are appended by reference. */
const COPY_LIMIT = 8 * 1024;

/** Checks a DATA frame header: stream 0 is a connection error, a padded frame needs its pad-length byte. */
export function checkDataFrame(length: number, flags: number, streamId: number): void {
  if (streamId === 0) connectionError(ErrorCode.PROTOCOL_ERROR, "DATA frame on stream 0");
  if ((flags & FLAG_PADDED) !== 0 && length < 1) connectionError(ErrorCode.FRAME_SIZE_ERROR, "padded DATA frame without a pad length");
}

/** Checks the pad length of a padded DATA frame against its length (RFC 9113 §6.1). */
export function checkDataPadding(padLength: number, length: number): void {
  if (padLength >= length) connectionError(ErrorCode.PROTOCOL_ERROR, `DATA padding of ${padLength} bytes in a ${length}-byte frame`);
}

/**
 * Writes one DATA frame carrying `data[offset, offset + length)`. The caller
 * has checked the flow-control windows and the peer's maximum frame size.
 */
export function writeData(w: FrameWriter, streamId: number, data: Uint8Array, offset: number, length: number, endStream: boolean): void {
  const flags = endStream ? FLAG_END_STREAM : 0;
  if (length <= COPY_LIMIT) {
    const o = w.reserve(FRAME_HEADER_BYTES + length);
    writeFrameHeader(w.buf, o, length, FRAME_DATA, flags, streamId);
    if (length > 0) w.buf.set(length === data.byteLength ? data : data.subarray(offset, offset + length), o + FRAME_HEADER_BYTES);
    return;
  }
  const o = w.reserve(FRAME_HEADER_BYTES);
  writeFrameHeader(w.buf, o, length, FRAME_DATA, flags, streamId);
  w.appendRef(data.subarray(offset, offset + length));
}

/**
 * Writes one DATA frame carrying `length` bytes taken in order from `chunks`,
 * starting at `chunks[0][offset]` (several small queued writes in one frame).
 * The bytes are copied; the caller checked the windows and the frame size,
 * and that the chunks hold `length` bytes.
 */
export function writeDataGathered(w: FrameWriter, streamId: number, chunks: readonly Uint8Array[], offset: number, length: number, endStream: boolean): void {
  const o = w.reserve(FRAME_HEADER_BYTES + length);
  writeFrameHeader(w.buf, o, length, FRAME_DATA, endStream ? FLAG_END_STREAM : 0, streamId);
  let at = o + FRAME_HEADER_BYTES;
  let left = length;
  for (let i = 0; left > 0; i++) {
    const c = chunks[i]!;
    const from = i === 0 ? offset : 0;
    const take = Math.min(c.byteLength - from, left);
    w.buf.set(from === 0 && take === c.byteLength ? c : c.subarray(from, from + take), at);
    at += take;
    left -= take;
  }
}
