/**
 * The writing half shared by the hand-written request encoders (`PutRequest`,
 * `RangeRequest`): sizes and writers for the protobuf wire types they use,
 * producing exactly the bytes protobuf-es produces (fields in number order,
 * default values omitted, negative int64/enum values as 10-byte varints).
 * @module
 */

/** Bytes of an unsigned varint below 2^32. */
export function varint32Size(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

/** Writes an unsigned varint below 2^32; returns the new position. */
export function writeVarint32(buf: Uint8Array, pos: number, v: number): number {
  while (v >= 0x80) {
    buf[pos++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[pos++] = v;
  return pos;
}

const MASK64 = (1n << 64n) - 1n;

/** Bytes of an int64 varint (two's complement for negatives: always 10). */
export function varint64Size(v: bigint): number {
  if (v >= 0n && v < 0x100000000n) return varint32Size(Number(v));
  let u = v & MASK64;
  let n = 1;
  while (u >= 0x80n) {
    u >>= 7n;
    n++;
  }
  return n;
}

/** Writes an int64 varint; returns the new position. */
export function writeVarint64(buf: Uint8Array, pos: number, v: bigint): number {
  if (v >= 0n && v < 0x100000000n) return writeVarint32(buf, pos, Number(v));
  let u = v & MASK64;
  while (u >= 0x80n) {
    buf[pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  buf[pos++] = Number(u);
  return pos;
}

/** Bytes of an int32/enum varint (negatives sign-extended to 10 bytes). */
export function int32Size(v: number): number {
  return v >= 0 ? varint32Size(v) : 10;
}

/** Writes an int32/enum varint; returns the new position. */
export function writeInt32(buf: Uint8Array, pos: number, v: number): number {
  return v >= 0 ? writeVarint32(buf, pos, v) : writeVarint64(buf, pos, BigInt(v));
}

/** Bytes of a length-delimited field of `len` bytes, tag included (a one-byte tag). */
export function bytesFieldSize(len: number): number {
  return 1 + varint32Size(len) + len;
}

/** Writes a length-delimited field (one-byte tag); returns the new position. */
export function writeBytesField(buf: Uint8Array, pos: number, tag: number, bytes: Uint8Array): number {
  buf[pos++] = tag;
  pos = writeVarint32(buf, pos, bytes.byteLength);
  buf.set(bytes, pos);
  return pos + bytes.byteLength;
}
