/**
 * Collects outgoing frames for one batched socket write. Frames are encoded
 * straight into a large arena buffer; a batch is the arena's region written
 * since the last {@link FrameWriter.take}, plus big payloads appended by
 * reference (never copied). The arena is only ever appended to, so regions
 * already handed to the socket stay valid until the socket is done with them.
 * @module
 */

const ARENA_BYTES = 64 * 1024;

export class FrameWriter {
  /** The arena frames are encoded into; valid from {@link FrameWriter.reserve}'s offset on. */
  buf: Buffer = Buffer.allocUnsafeSlow(ARENA_BYTES);
  private pos = 0;
  private start = 0;
  private segments: Buffer[] = [];
  /** Bytes in the batch so far. */
  pending = 0;

  /** Reserves `n` bytes in the arena and returns their offset in {@link FrameWriter.buf}. */
  reserve(n: number): number {
    if (this.buf.length - this.pos < n) this.grow(n);
    const o = this.pos;
    this.pos += n;
    this.pending += n;
    return o;
  }

  /** Appends `bytes` to the batch without copying; the caller must not change them afterwards. */
  appendRef(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    this.seal();
    this.segments.push(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    this.pending += bytes.byteLength;
  }

  /** Copies `bytes` into the batch. */
  append(bytes: Uint8Array): void {
    const o = this.reserve(bytes.byteLength);
    this.buf.set(bytes, o);
  }

  /** The batch as a list of buffers (in order), or undefined when it is empty; starts a new batch. */
  take(): Buffer[] | undefined {
    if (this.pending === 0) return undefined;
    this.seal();
    const out = this.segments;
    this.segments = [];
    this.pending = 0;
    return out;
  }

  private seal(): void {
    if (this.pos > this.start) {
      this.segments.push(this.buf.subarray(this.start, this.pos));
      this.start = this.pos;
    }
  }

  private grow(n: number): void {
    this.seal();
    this.buf = Buffer.allocUnsafeSlow(Math.max(n, ARENA_BYTES));
    this.pos = 0;
    this.start = 0;
  }
}
