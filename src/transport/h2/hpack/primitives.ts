/**
 * HPACK's two primitive types (RFC 7541 §5): integers with an N-bit prefix,
 * and string literals (length-prefixed, optionally Huffman-coded). The
 * decoding side checks every length against the bytes that remain.
 * @module
 */
import { ErrorCode, H2Error } from "../errors.js";

/** Largest integer accepted from a peer; HPACK uses them for indices, lengths and sizes. */
const MAX_INTEGER = 0x7fffffff;

/** Writes `value` with an N-bit prefix at `buf[pos]`, keeping the high bits `pattern`; returns the new position. */
export function writeInteger(buf: Uint8Array, pos: number, value: number, prefixBits: number, pattern: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    buf[pos] = pattern | value;
    return pos + 1;
  }
  buf[pos++] = pattern | max;
  value -= max;
  while (value >= 128) {
    buf[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[pos] = value;
  return pos + 1;
}

/** Bytes {@link writeInteger} needs for `value` with an N-bit prefix. */
export function integerBytes(value: number, prefixBits: number): number {
  const max = (1 << prefixBits) - 1;
  if (value < max) return 1;
  let n = 2;
  for (value -= max; value >= 128; value = Math.floor(value / 128)) n++;
  return n;
}

/** A decoding cursor over one header block. */
export class BlockReader {
  pos = 0;
  constructor(
    public buf: Uint8Array,
    public end: number,
  ) {}

  /** Starts reading `buf[0, end)`. */
  reset(buf: Uint8Array, end: number): void {
    this.buf = buf;
    this.end = end;
    this.pos = 0;
  }

  /** Reads an integer whose N-bit prefix starts the current byte. */
  integer(prefixBits: number): number {
    const max = (1 << prefixBits) - 1;
    let value = this.buf[this.pos++]! & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw compression("integer runs past the end of the header block");
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INTEGER) throw compression("integer too large");
      if ((b & 0x80) === 0) return value;
      shift += 7;
      // Zero continuation bytes add nothing: bound the length, not just the value.
      if (shift > 28) throw compression("integer encoding too long");
    }
  }
}

/** A COMPRESSION_ERROR: HPACK decoding failed, so the connection's header state is lost. */
export function compression(message: string): H2Error {
  return new H2Error(ErrorCode.COMPRESSION_ERROR, `HPACK: ${message}`);
}
