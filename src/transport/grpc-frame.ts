/**
 * gRPC length-prefixed message framing: a 1-byte flags field (bit 0 set =
 * compressed), a 4-byte big-endian length, then the message bytes.
 * @module
 */

/** Size of the gRPC message prefix in bytes. */
export const FRAME_HEADER_BYTES = 5;

/**
 * Frames one serialized message. One allocation: the prefix and the payload
 * share a buffer so the socket gets a single write.
 */
export function encodeFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(payload.byteLength, 1);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** Why a {@link FrameDecoder} refused its input. */
export class FrameError extends Error {
  constructor(
    message: string,
    /** `too-large` when a message exceeds the limit, `compressed` when the peer compressed one. */
    readonly kind: "too-large" | "compressed",
  ) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * Receives each message as a range of a buffer it must not keep: the bytes
 * are valid only during the call (they may be a view of a network read).
 */
export type LentMessageHandler = (buf: Uint8Array, start: number, end: number) => void;

/**
 * Reassembles gRPC messages from HTTP/2 DATA chunks, which may split a
 * message anywhere, or carry several.
 */
export class FrameDecoder {
  /** Bytes of an incomplete message (or prefix) carried over between chunks. */
  private pending: Buffer | undefined;
  /** Parts of a large message collected so far, to copy once at the end. */
  private parts: Buffer[] = [];
  private partsBytes = 0;
  /** Length of the message being collected, or -1 while reading a prefix. */
  private want = -1;
  private readonly deliver: LentMessageHandler;

  /**
   * @param onMessage gets each message as bytes it may keep (a copy when it is small next to the buffer it came in)
   * @param maxMessageBytes largest message accepted
   */
  constructor(onMessage: (message: Uint8Array) => void, maxMessageBytes: number);
  /**
   * @param lend `"lend"`: `onMessage` gets a range it must not keep, and
   * nothing is copied or allocated per message (for streams of many tiny
   * messages decoded on the spot, like lease keep-alives)
   */
  constructor(onMessage: LentMessageHandler, maxMessageBytes: number, lend: "lend");
  constructor(
    onMessage: ((message: Uint8Array) => void) | LentMessageHandler,
    private readonly maxMessageBytes: number,
    lend?: "lend",
  ) {
    this.deliver = lend === "lend" ? (onMessage as LentMessageHandler) : (buf, start, end) => (onMessage as (m: Uint8Array) => void)(ownBytes(buf, start, end - start));
  }
  /** Feeds one chunk; calls `onMessage` for every message it completes. Throws {@link FrameError}. */
  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let offset = 0;
    while (offset < buf.length) {
      if (this.want < 0) {
        if (buf.length - offset < FRAME_HEADER_BYTES) {
          this.pending = buf.subarray(offset);
          return;
        }
        const flags = buf[offset]!;
        const length = buf.readUInt32BE(offset + 1);
        offset += FRAME_HEADER_BYTES;
        if ((flags & 1) !== 0) {
          throw new FrameError("received a compressed message, but no compression was negotiated", "compressed");
        }
        if (length > this.maxMessageBytes) {
          throw new FrameError(
            `received message larger than max (${length} vs. ${this.maxMessageBytes} bytes)`,
            "too-large",
          );
        }
        // Fast path: the whole message is inside this chunk.
        if (buf.length - offset >= length) {
          this.deliver(buf, offset, offset + length);
          offset += length;
          continue;
        }
        this.want = length;
      }
      const take = Math.min(this.want - this.partsBytes, buf.length - offset);
      this.parts.push(buf.subarray(offset, offset + take));
      this.partsBytes += take;
      offset += take;
      if (this.partsBytes === this.want) {
        const message = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsBytes);
        this.parts = [];
        this.partsBytes = 0;
        this.want = -1;
        this.deliver(message, 0, message.length);
      }
    }
  }

  /** True when a message or prefix was cut off mid-way (the stream ended early). */
  get incomplete(): boolean {
    return this.pending !== undefined || this.want >= 0;
  }
}

/**
 * The message's bytes as a view of memory the size of the message. Decoded
 * keys and values are views into a message's bytes (no copy per field), so a
 * caller keeping one small value keeps its whole backing memory: a small
 * message that shares a network read buffer (often 64 KiB) with others gets
 * its own copy; one that fills most of its buffer is used in place (as a
 * plain Uint8Array, so decoded bytes fields are not Buffers).
 */
function ownBytes(buf: Uint8Array, offset: number, length: number): Uint8Array {
  if (buf.buffer.byteLength <= 2 * length + 64) return new Uint8Array(buf.buffer, buf.byteOffset + offset, length);
  const copy = new Uint8Array(length);
  copy.set(buf.subarray(offset, offset + length));
  return copy;
}
