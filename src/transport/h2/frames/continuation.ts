/**
 * CONTINUATION frames (RFC 9113 §6.10) and the assembly of a header block
 * that spans HEADERS + CONTINUATION frames. Assembly is bounded in bytes and in
 * frames, so a peer cannot make us buffer without limit (the CONTINUATION
 * flood: endless or empty CONTINUATION frames that never end the block).
 * @module
 */
import { ErrorCode, connectionError } from "../errors.js";
import { FLAG_END_HEADERS, FRAME_CONTINUATION, FRAME_HEADER_BYTES, writeFrameHeader } from "./frame-header.js";
import type { FrameWriter } from "./frame-writer.js";

/** Writes `block[from, to)` as CONTINUATION frames of at most `maxFrameSize` bytes; the last ends the headers. */
export function writeContinuations(w: FrameWriter, streamId: number, block: Uint8Array, from: number, to: number, maxFrameSize: number): void {
  for (let at = from; at < to; ) {
    const n = Math.min(to - at, maxFrameSize);
    const last = at + n === to;
    const o = w.reserve(FRAME_HEADER_BYTES + n);
    writeFrameHeader(w.buf, o, n, FRAME_CONTINUATION, last ? FLAG_END_HEADERS : 0, streamId);
    w.buf.set(block.subarray(at, at + n), o + FRAME_HEADER_BYTES);
    at += n;
  }
}

/** A header block being received across HEADERS and CONTINUATION frames. */
export class HeaderBlockAssembler {
  /** Stream of the open block, or 0 when no block is open. */
  streamId = 0;
  /** END_STREAM of the HEADERS frame that opened the block. */
  endStream = false;
  private parts: Buffer[] = [];
  private bytes = 0;
  private frames = 0;

  constructor(
    /** Largest header block accepted, in bytes (compressed). */
    private readonly maxBlockBytes: number,
    /** Most CONTINUATION frames accepted for one block. */
    private readonly maxContinuations: number,
  ) {}

  /** Opens a block with the fragment of a HEADERS frame that did not end the headers. */
  open(streamId: number, fragment: Buffer, endStream: boolean): void {
    this.streamId = streamId;
    this.endStream = endStream;
    this.parts = [];
    this.bytes = 0;
    this.frames = 0;
    this.add(fragment, true);
  }

  /** Checks a CONTINUATION frame's header before its payload is read. */
  checkContinuation(streamId: number, length: number): void {
    if (this.streamId === 0) connectionError(ErrorCode.PROTOCOL_ERROR, "CONTINUATION frame without a header block in progress");
    if (streamId !== this.streamId) connectionError(ErrorCode.PROTOCOL_ERROR, `CONTINUATION frame for stream ${streamId} inside a header block of stream ${this.streamId}`);
    if (++this.frames > this.maxContinuations) connectionError(ErrorCode.ENHANCE_YOUR_CALM, `more than ${this.maxContinuations} CONTINUATION frames in one header block`);
    if (this.bytes + length > this.maxBlockBytes) connectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block larger than ${this.maxBlockBytes} bytes`);
  }

  /**
   * Adds a CONTINUATION fragment; returns the whole block when `last`
   * (END_HEADERS) and closes the block.
   */
  add(fragment: Buffer, first: boolean, last = false): Buffer | undefined {
    if (first && fragment.length > this.maxBlockBytes) connectionError(ErrorCode.ENHANCE_YOUR_CALM, `header block larger than ${this.maxBlockBytes} bytes`);
    // The fragment may be a view into a socket chunk that the reader reuses: keep a copy.
    if (fragment.length > 0) this.parts.push(Buffer.from(fragment));
    this.bytes += fragment.length;
    if (!last) return undefined;
    const block = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes);
    this.streamId = 0;
    this.parts = [];
    this.bytes = 0;
    return block;
  }
}
