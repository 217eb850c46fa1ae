/**
 * The reading half shared by the hand-written response decoders
 * (`RangeResponse`, `PutResponse`, `TxnResponse`): a protobuf wire reader that
 * abandons the fast path (throws {@link BAIL}) on anything unexpected, and the
 * two messages every etcd response carries, `ResponseHeader` and `KeyValue`.
 * Each decoder catches `BAIL` and returns `undefined`, and its caller falls
 * back to protobuf-es, which keeps unknown fields.
 * @module
 */
import type { KeyValue } from "../../gen/etcd/api/mvccpb/kv_pb.js";
import type { ResponseHeader } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";

export const EMPTY = new Uint8Array(0);
const TWO_32 = 4294967296;
// Versions, leases and small counts repeat across keys: share their bigints instead of allocating 1000s.
const SMALL = Array.from({ length: 1024 }, (_, i) => BigInt(i));

/** Raised inside a decoder to abandon the fast path. */
export class Bail {}
export const BAIL = new Bail();

export class Reader {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly end: number,
  ) {}

  /** A varint of at most 32 significant bits (tags, lengths). */
  uint32(): number {
    const b = this.buf;
    if (this.pos >= this.end) throw BAIL;
    let x = b[this.pos++]!;
    if (x < 0x80) return x;
    x &= 0x7f;
    let shift = 7;
    for (;;) {
      if (this.pos >= this.end) throw BAIL;
      const c = b[this.pos++]!;
      if (shift < 28) {
        x |= (c & 0x7f) << shift;
      } else {
        // Beyond 32 bits only the low bits count (protobuf truncates).
        x = (x | ((c & 0x7f) << shift)) >>> 0;
      }
      if (c < 0x80) return x >>> 0;
      shift += 7;
      if (shift > 63) throw BAIL;
    }
  }

  /** A 64-bit varint as a bigint (int64 and uint64 fields). */
  int64(signed: boolean): bigint {
    const b = this.buf;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    let c: number;
    // Low 28 bits, then the bits straddling 32, then the high part.
    do {
      if (this.pos >= this.end) throw BAIL;
      c = b[this.pos++]!;
      if (shift < 28) lo |= (c & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (c & 0x0f) << 28;
        hi = (c & 0x70) >> 4;
      } else hi |= (c & 0x7f) << (shift - 32);
      shift += 7;
      if (shift > 70) throw BAIL;
    } while (c >= 0x80);
    lo >>>= 0;
    if (hi === 0) return lo < 1024 ? SMALL[lo]! : BigInt(lo);
    hi >>>= 0;
    if (signed && hi >= 0x80000000) return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
    if (hi < 0x200000) return BigInt(hi * TWO_32 + lo); // fits in 53 bits: exact as a double
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** A bool field: protobuf-es reads any non-zero varint as true. */
  bool(): boolean {
    const b = this.buf;
    if (this.pos >= this.end) throw BAIL;
    const c = b[this.pos++]!;
    if (c < 0x80) return c !== 0;
    // A multi-byte varint bool: rare; read it whole.
    this.pos--;
    return this.int64(false) !== 0n;
  }

  bytes(): Uint8Array {
    const len = this.uint32();
    const start = this.pos;
    const stop = start + len;
    if (stop > this.end) throw BAIL;
    this.pos = stop;
    return len === 0 ? EMPTY : this.buf.subarray(start, stop);
  }

  /** The end of an embedded message whose length comes next. */
  sub(): number {
    const len = this.uint32();
    const end = this.pos + len;
    if (end > this.end) throw BAIL;
    return end;
  }
}

export function header(r: Reader, end: number): ResponseHeader {
  const h: ResponseHeader = { $typeName: "etcdserverpb.ResponseHeader", clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 8:
        h.clusterId = r.int64(false);
        break;
      case 16:
        h.memberId = r.int64(false);
        break;
      case 24:
        h.revision = r.int64(true);
        break;
      case 32:
        h.raftTerm = r.int64(false);
        break;
      default:
        throw BAIL;
    }
  }
  if (r.pos !== end) throw BAIL;
  return h;
}

/**
 * Reads field 1, the header, of a response whose header so far is `prev`. A
 * second header would have to merge into the first: that is left to protobuf-es.
 */
export function responseHeader(r: Reader, prev: ResponseHeader | undefined): ResponseHeader {
  if (prev !== undefined) throw BAIL;
  return header(r, r.sub());
}

export function keyValue(r: Reader, end: number): KeyValue {
  const kv: KeyValue = {
    $typeName: "mvccpb.KeyValue",
    key: EMPTY,
    createRevision: 0n,
    modRevision: 0n,
    version: 0n,
    value: EMPTY,
    lease: 0n,
  };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        kv.key = r.bytes();
        break;
      case 16:
        kv.createRevision = r.int64(true);
        break;
      case 24:
        kv.modRevision = r.int64(true);
        break;
      case 32:
        kv.version = r.int64(true);
        break;
      case 42:
        kv.value = r.bytes();
        break;
      case 48:
        kv.lease = r.int64(true);
        break;
      default:
        throw BAIL;
    }
  }
  if (r.pos !== end) throw BAIL;
  return kv;
}

/**
 * Decodes all of `bytes` as one message with `message`, or returns `undefined`
 * if it bails (the caller's cue to use protobuf-es). `message` is a plain
 * module-level function, so a call allocates no closure.
 */
export function decodeWhole<T>(bytes: Uint8Array, message: (r: Reader, end: number) => T): T | undefined {
  try {
    return message(new Reader(bytes, bytes.length), bytes.length);
  } catch (e) {
    if (e === BAIL) return undefined;
    throw e;
  }
}

