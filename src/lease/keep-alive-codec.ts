/**
 * Hand-written wire format of the two keep-alive messages, for the hot path:
 * thousands of leases refresh every second, and protobuf-es's reflective
 * encoder and decoder cost more than everything else on that path together
 * (measured: about 14.8 µs per keep-alive through the typed client, 7 µs with
 * this codec and batched writes). Verified against protobuf-es by property
 * tests; anything unexpected falls back to protobuf-es.
 * @module
 */
import { fromBinary } from "@bufbuild/protobuf";
import { LeaseKeepAliveResponseSchema } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";

const TWO_32 = 4294967296;

/**
 * The framed request (`[flags, length, LeaseKeepAliveRequest]`) for one lease:
 * computed once per lease, then copied into each batch as it is.
 */
export function encodeKeepAliveFrame(id: bigint): Buffer {
  let [hi, lo] = leaseIdHalves(id);
  const frame = Buffer.allocUnsafe(5 + 1 + 10);
  frame[0] = 0;
  frame[5] = 0x08; // field 1 (ID), varint
  let o = 6;
  while (hi > 0 || lo > 0x7f) {
    frame[o++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  frame[o++] = lo;
  frame.writeUInt32BE(o - 5, 1);
  return frame.subarray(0, o);
}

/**
 * A decoded `LeaseKeepAliveResponse`: the lease ID as two unsigned 32-bit
 * halves (no `bigint` is made on the hot path; see {@link leaseIdOf}) and the
 * TTL in seconds (<= 0: the lease is gone).
 */
export interface KeepAliveAnswer {
  idHi: number;
  idLo: number;
  ttl: number;
}

/** The lease ID (a signed int64, as etcd has it) whose unsigned 32-bit halves are `hi` and `lo`. */
export function leaseIdOf(hi: number, lo: number): bigint {
  // Below 2^53: one exact conversion.
  if (hi < 0x200000) return BigInt(hi * TWO_32 + lo);
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

/** The unsigned 32-bit halves of a lease ID: `[hi, lo]`. */
export function leaseIdHalves(id: bigint): [number, number] {
  const u = BigInt.asUintN(64, id);
  return [Number(u >> 32n), Number(u & 0xffffffffn)];
}

/**
 * Decodes a `LeaseKeepAliveResponse` (the response header is skipped).
 * Returns undefined for anything it does not expect (then use
 * {@link decodeKeepAliveResponse}, which falls back to protobuf-es).
 */
export function decodeKeepAliveFast(b: Uint8Array, start = 0, end = b.length): KeepAliveAnswer | undefined {
  let idHi = 0;
  let idLo = 0;
  let ttl = 0;
  let p = start;
  while (p < end) {
    const tag = b[p++]!;
    if (tag === 0x10 || tag === 0x18) {
      // ID or TTL, int64 varints. Read as two 32-bit halves.
      let lo = 0;
      let hi = 0;
      let shift = 0;
      let c: number;
      do {
        if (p >= end || shift > 63) return undefined;
        c = b[p++]!;
        if (shift < 28) lo |= (c & 0x7f) << shift;
        else if (shift === 28) {
          lo |= (c & 0x0f) << 28;
          hi = (c & 0x7f) >>> 4;
        } else hi |= (c & 0x7f) << (shift - 32);
        shift += 7;
      } while ((c & 0x80) !== 0);
      lo >>>= 0;
      hi >>>= 0;
      if (tag === 0x18) {
        ttl = (hi | 0) * TWO_32 + lo;
      } else {
        idHi = hi;
        idLo = lo;
      }
    } else if (tag === 0x0a) {
      // The response header: not needed, only checked to be well formed
      // (its four fields are varints), so that nothing protobuf-es would refuse passes.
      let len = 0;
      let shift = 0;
      let c: number;
      do {
        if (p >= end || shift > 28) return undefined;
        c = b[p++]!;
        len |= (c & 0x7f) << shift;
        shift += 7;
      } while ((c & 0x80) !== 0);
      const stop = p + len;
      if (len < 0 || stop > end) return undefined;
      while (p < stop) {
        const t = b[p++]!;
        if (t !== 0x08 && t !== 0x10 && t !== 0x18 && t !== 0x20) return undefined;
        let n = 0;
        do {
          if (p >= stop || ++n > 10) return undefined;
          c = b[p++]!;
        } while ((c & 0x80) !== 0);
      }
    } else {
      return undefined;
    }
  }
  return { idHi, idLo, ttl };
}

/** Decodes a `LeaseKeepAliveResponse` in `b[start, end)`: the fast path, else protobuf-es. Throws on malformed input. */
export function decodeKeepAliveResponse(b: Uint8Array, start = 0, end = b.length): KeepAliveAnswer {
  const fast = decodeKeepAliveFast(b, start, end);
  if (fast !== undefined) return fast;
  const m = fromBinary(LeaseKeepAliveResponseSchema, b.subarray(start, end));
  const [idHi, idLo] = leaseIdHalves(m.ID);
  return { idHi, idLo, ttl: Number(m.TTL) };
}
