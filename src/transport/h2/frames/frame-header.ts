/**
 * The 9-byte frame header every HTTP/2 frame starts with (RFC 9113 §4.1):
 * a 24-bit payload length, an 8-bit type, 8 bits of flags and a 31-bit
 * stream identifier. Frame types and flags are plain numbers so that the hot
 * paths compare small integers.
 * @module
 */

/** Bytes in a frame header. */
export const FRAME_HEADER_BYTES = 9;

export const FRAME_DATA = 0x0;
export const FRAME_HEADERS = 0x1;
export const FRAME_PRIORITY = 0x2;
export const FRAME_RST_STREAM = 0x3;
export const FRAME_SETTINGS = 0x4;
export const FRAME_PUSH_PROMISE = 0x5;
export const FRAME_PING = 0x6;
export const FRAME_GOAWAY = 0x7;
export const FRAME_WINDOW_UPDATE = 0x8;
export const FRAME_CONTINUATION = 0x9;

/** DATA, HEADERS: the last frame the sender sends on the stream. */
export const FLAG_END_STREAM = 0x1;
/** SETTINGS, PING: an acknowledgement. */
export const FLAG_ACK = 0x1;
/** HEADERS, CONTINUATION: the header block is complete. */
export const FLAG_END_HEADERS = 0x4;
/** DATA, HEADERS: a pad-length byte leads the payload and padding ends it. */
export const FLAG_PADDED = 0x8;
/** HEADERS: a 5-byte priority block follows the pad length. */
export const FLAG_PRIORITY = 0x20;

/** Smallest value of SETTINGS_MAX_FRAME_SIZE, and its default. */
export const MIN_MAX_FRAME_SIZE = 16384;
/** Largest value of SETTINGS_MAX_FRAME_SIZE (2^24 - 1). */
export const MAX_MAX_FRAME_SIZE = 16777215;
/** Largest stream identifier (2^31 - 1). */
export const MAX_STREAM_ID = 0x7fffffff;

/** Writes a frame header at `offset`. */
export function writeFrameHeader(buf: Uint8Array, offset: number, length: number, type: number, flags: number, streamId: number): void {
  buf[offset] = length >>> 16;
  buf[offset + 1] = (length >>> 8) & 0xff;
  buf[offset + 2] = length & 0xff;
  buf[offset + 3] = type;
  buf[offset + 4] = flags;
  buf[offset + 5] = (streamId >>> 24) & 0x7f;
  buf[offset + 6] = (streamId >>> 16) & 0xff;
  buf[offset + 7] = (streamId >>> 8) & 0xff;
  buf[offset + 8] = streamId & 0xff;
}

/** Reads a 31-bit stream identifier (the reserved high bit ignored). */
export function readStreamId(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! & 0x7f) * 0x1000000) + ((buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!);
}

/** Reads a 32-bit unsigned big-endian integer. */
export function readUint32(buf: Uint8Array, offset: number): number {
  return buf[offset]! * 0x1000000 + ((buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!);
}

/** Writes a 32-bit unsigned big-endian integer. */
export function writeUint32(buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = (value >>> 24) & 0xff;
  buf[offset + 1] = (value >>> 16) & 0xff;
  buf[offset + 2] = (value >>> 8) & 0xff;
  buf[offset + 3] = value & 0xff;
}
