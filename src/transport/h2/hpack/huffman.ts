/**
 * The HPACK Huffman code (RFC 7541 Appendix B). The code is canonical, so it
 * is fully given by each symbol's code length: codes are assigned in order of
 * (length, symbol). Decoding walks a table of 256 states (the inner nodes of
 * the code tree) one input byte at a time; it is built on first use.
 * @module
 */
import { compression } from "./primitives.js";

/** Code length in bits of symbols 0..255, then EOS (256), from RFC 7541 Appendix B. */
const LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;

/** Code of each symbol, right-aligned. */
export const HUFFMAN_CODES = new Uint32Array(257);
/** Length in bits of each symbol's code. */
export const HUFFMAN_LENGTHS = Uint8Array.from(LENGTHS);

{
  const order = Array.from({ length: 257 }, (_, i) => i).sort((a, b) => LENGTHS[a]! - LENGTHS[b]! || a - b);
  let code = 0;
  let len = LENGTHS[order[0]!]!;
  for (const sym of order) {
    const l = LENGTHS[sym]!;
    if (l > len) {
      code *= 2 ** (l - len);
      len = l;
    }
    HUFFMAN_CODES[sym] = code;
    code++;
  }
}

/** Bytes the Huffman coding of `s` (latin1) takes. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += HUFFMAN_LENGTHS[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >>> 3;
}

/** Writes the Huffman coding of `s` (latin1) at `buf[pos]`; returns the new position. Pads with the EOS prefix (ones). */
export function huffmanEncode(s: string, buf: Uint8Array, pos: number): number {
  let acc = 0; // pending bits, right-aligned
  let n = 0; // how many (always < 8 between symbols)
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = HUFFMAN_CODES[sym]!;
    let len = HUFFMAN_LENGTHS[sym]!;
    if (len > 24) {
      // Keep the accumulator within 32 bits: push the high part first.
      const hi = len - 24;
      acc = (acc << hi) | (code >>> 24);
      n += hi;
      code &= 0xffffff;
      len = 24;
      while (n >= 8) {
        n -= 8;
        buf[pos++] = (acc >>> n) & 0xff;
      }
      acc &= (1 << n) - 1;
    }
    acc = ((acc << len) | code) >>> 0;
    n += len;
    while (n >= 8) {
      n -= 8;
      buf[pos++] = (acc >>> n) & 0xff;
    }
    acc &= (1 << n) - 1;
  }
  if (n > 0) buf[pos++] = ((acc << (8 - n)) | (0xff >>> n)) & 0xff;
  return pos;
}

// Decoding table: state (an inner node, 0 = root) x input byte -> packed transition:
// bits 0-7 next state, 8-9 symbols emitted (0-2), 10 failure (EOS decoded), 11-18 first symbol, 19-26 second.
let TABLE: Int32Array | undefined;
/** Per state: may the string end here (the bits since the last symbol are fewer than 8 and all ones)? */
let ACCEPT: Uint8Array | undefined;
const FAIL = 1 << 10;

function buildTable(): Int32Array {
  // The code tree: inner nodes 0..255; a child >= 0 is an inner node, < 0 is leaf -(symbol + 1).
  const left = new Int32Array(256).fill(-1000);
  const right = new Int32Array(256).fill(-1000);
  const depth = new Uint8Array(256);
  const ones = new Uint8Array(256); // 1 when the path to the node is all ones
  ones[0] = 1;
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym]!;
    const len = HUFFMAN_LENGTHS[sym]!;
    let node = 0;
    for (let b = len - 1; b >= 0; b--) {
      const bit = Math.floor(code / 2 ** b) & 1;
      const side = bit === 1 ? right : left;
      if (b === 0) {
        side[node] = -(sym + 1);
      } else {
        if (side[node]! === -1000) {
          const child = nodes++;
          side[node] = child;
          depth[child] = depth[node]! + 1;
          ones[child] = ones[node]! & bit;
        }
        node = side[node]!;
      }
    }
  }
  const table = new Int32Array(256 * 256);
  const accept = new Uint8Array(256);
  for (let s = 0; s < 256; s++) {
    accept[s] = ones[s]! === 1 && depth[s]! < 8 ? 1 : 0;
    for (let byte = 0; byte < 256; byte++) {
      let node = s;
      let count = 0;
      let syms = 0;
      let fail = 0;
      for (let b = 7; b >= 0; b--) {
        const next = ((byte >>> b) & 1) === 1 ? right[node]! : left[node]!;
        if (next < 0) {
          const sym = -next - 1;
          if (sym === EOS) {
            fail = FAIL;
            break;
          }
          syms |= sym << (11 + 8 * count);
          count++;
          node = 0;
        } else {
          node = next;
        }
      }
      table[(s << 8) | byte] = fail !== 0 ? FAIL : node | (count << 8) | syms;
    }
  }
  ACCEPT = accept;
  return table;
}

/**
 * Decodes `buf[start, end)` into `out` from index 0; returns the number of
 * bytes written. `out` must hold at least `(end - start) * 8 / 5` bytes (the
 * shortest code is 5 bits). Throws a COMPRESSION_ERROR on EOS or bad padding.
 */
export function huffmanDecode(buf: Uint8Array, start: number, end: number, out: Uint8Array): number {
  const table = (TABLE ??= buildTable());
  let state = 0;
  let n = 0;
  for (let i = start; i < end; i++) {
    const e = table[(state << 8) | buf[i]!]!;
    if ((e & FAIL) !== 0) throw compression("EOS symbol inside a Huffman-coded string");
    const count = (e >>> 8) & 3;
    if (count !== 0) {
      out[n++] = (e >>> 11) & 0xff;
      if (count === 2) out[n++] = (e >>> 19) & 0xff;
    }
    state = e & 0xff;
  }
  if (ACCEPT![state] !== 1) throw compression("invalid padding at the end of a Huffman-coded string");
  return n;
}

/** Most bytes decoding `encodedBytes` of Huffman code can produce. */
export function huffmanMaxDecodedLength(encodedBytes: number): number {
  return Math.floor((encodedBytes * 8) / 5);
}
