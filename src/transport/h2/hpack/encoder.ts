/**
 * HPACK encoder for request headers. Repeated fields cost one byte: a field
 * is added to the dynamic table the first time (Huffman-coded when that is
 * shorter) and sent as an index afterwards; the index is computed from the
 * entry's insertion number, so it follows the table as entries are added and
 * evicted. On top of that, the encoded bytes of a header list that repeats (the
 * same array, e.g. one per gRPC method) are cached and reused as long as the
 * table has not changed since, which in steady state is always. Values too
 * large for the table (a big auth token) are sent as literals without indexing,
 * and their encoding is cached so a large token is Huffman-coded once.
 * @module
 */
import { InvalidOptionError } from "../../../errors.js";
import { EncoderTable, entrySize } from "./dynamic-table.js";
import { huffmanEncode, huffmanLength } from "./huffman.js";
import { writeInteger } from "./primitives.js";
import { staticIndexOf, staticNameIndexOf } from "./static-table.js";

/** When to Huffman-code string literals. */
export type HuffmanMode = "shorter" | "never" | "always";

/** Options of {@link HpackEncoder}. */
export interface HpackEncoderOptions {
  /** Largest dynamic table we use, whatever the peer allows (default 4096). */
  maxTableSize?: number;
  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE at the start (default 4096): the
   * table size its decoder starts with. When we use less, the first block says so.
   */
  peerMaxTableSize?: number;
  /** Default `"shorter"`. */
  huffman?: HuffmanMode;
  /** Names sent as never-indexed literals (RFC 7541 §7.1.3), e.g. credentials an intermediary must not compress. */
  sensitive?: Iterable<string>;
  /** Entries larger than this share of the table are not indexed (they would evict everything else). Default 0.5. */
  maxEntryShare?: number;
}

interface CachedBlock {
  version: number;
  bytes: Buffer;
}

const LITERAL_CACHE_ENTRIES = 16;

export class HpackEncoder {
  readonly table: EncoderTable;
  private readonly huffman: HuffmanMode;
  private readonly sensitive: Set<string>;
  private readonly maxEntryShare: number;
  private readonly cap: number;
  /** Table size updates owed at the start of the next block (RFC 7541 §4.2): the smallest since the last block, then the final one. */
  private updateMin = -1;
  private updateFinal = -1;
  private out: Buffer = Buffer.allocUnsafe(4096);
  private pos = 0;
  private readonly blocks = new WeakMap<readonly string[], CachedBlock>();
  /** Encoded literal (without indexing) fields too large for the table, by value then name. */
  private readonly literals = new Map<string, { name: string; bytes: Buffer }>();

  constructor(options: HpackEncoderOptions = {}) {
    this.cap = options.maxTableSize ?? 4096;
    const peer = options.peerMaxTableSize ?? 4096;
    this.table = new EncoderTable(Math.min(peer, this.cap), this.cap);
    if (this.table.maxSize !== peer) {
      this.updateMin = this.table.maxSize;
      this.updateFinal = this.table.maxSize;
    }
    this.huffman = options.huffman ?? "shorter";
    this.sensitive = new Set(options.sensitive ?? []);
    this.maxEntryShare = options.maxEntryShare ?? 0.5;
  }

  /**
   * The peer's SETTINGS_HEADER_TABLE_SIZE changed: use up to that much (within
   * our own cap) and announce the new size at the start of the next block.
   */
  setPeerMaxTableSize(peerMax: number): void {
    const size = Math.min(peerMax, this.cap);
    if (size === this.table.maxSize && this.updateFinal < 0) return;
    this.updateMin = this.updateMin < 0 ? Math.min(size, this.table.maxSize) : Math.min(this.updateMin, size);
    this.updateFinal = size;
    this.table.setMaxSize(size);
  }

  /**
   * Encodes `fields` then `extra` (each `[name, value, ...]`, lower-case names)
   * into one header block. Returns a view of an internal buffer, valid until
   * the next call. Throws `InvalidOptionError` for a name or value that cannot
   * be sent (upper case, control characters, non-latin1). `fields` should be
   * the same array across calls when it repeats: its encoding is cached.
   */
  encode(fields: readonly string[], extra?: readonly string[]): Buffer {
    const cached = this.blocks.get(fields);
    const hit = cached !== undefined && cached.version === this.table.version;
    // Check everything before the table changes: a field refused half-way would leave it out of step with the peer's.
    if (!hit) validateFields(fields);
    if (extra !== undefined) validateFields(extra);
    this.pos = 0;
    if (this.updateFinal >= 0) {
      if (this.updateMin < this.updateFinal) this.writeSizeUpdate(this.updateMin);
      this.writeSizeUpdate(this.updateFinal);
      this.updateMin = -1;
      this.updateFinal = -1;
    }
    if (hit) {
      this.ensure(cached.bytes.length);
      this.out.set(cached.bytes, this.pos);
      this.pos += cached.bytes.length;
    } else {
      const start = this.pos;
      const version = this.table.version;
      this.encodeFields(fields);
      // Cache only an encoding that did not change the table: it stays valid while nothing else does.
      if (this.table.version === version) this.blocks.set(fields, { version, bytes: Buffer.from(this.out.subarray(start, this.pos)) });
    }
    if (extra !== undefined) this.encodeFields(extra);
    return this.out.subarray(0, this.pos);
  }

  private encodeFields(fields: readonly string[]): void {
    for (let i = 0; i < fields.length; i += 2) this.field(fields[i]!, fields[i + 1]!);
  }

  private field(name: string, value: string): void {
    if (this.sensitive.has(name)) {
      this.literal(name, value, 0x10, 4);
      return;
    }
    const s = staticIndexOf(name, value);
    if (s !== 0) return this.indexed(s);
    const d = this.table.find(name, value);
    if (d !== 0) return this.indexed(d);
    const size = entrySize(name, value);
    if (size > this.table.maxSize * this.maxEntryShare) {
      this.bigLiteral(name, value);
      return;
    }
    // Literal with incremental indexing (pattern 01, 6-bit name index).
    this.literal(name, value, 0x40, 6);
    this.table.add(name, value);
  }

  private indexed(index: number): void {
    this.ensure(8);
    this.pos = writeInteger(this.out, this.pos, index, 7, 0x80);
  }

  /** A literal field: `pattern` and `prefixBits` select indexing, without indexing or never indexed. */
  private literal(name: string, value: string, pattern: number, prefixBits: number, dynamicName = true): void {
    const nameIndex = staticNameIndexOf(name) || (dynamicName ? this.table.findName(name) : 0);
    // Huffman codes take up to 30 bits per character.
    this.ensure(16 + 4 * (name.length + value.length));
    if (nameIndex !== 0) {
      this.pos = writeInteger(this.out, this.pos, nameIndex, prefixBits, pattern);
    } else {
      this.out[this.pos++] = pattern;
      this.string(name);
    }
    this.string(value);
  }

  /** A field too large to index: literal without indexing, its encoding cached by value. */
  private bigLiteral(name: string, value: string): void {
    let hit = this.literals.get(value);
    if (hit === undefined || hit.name !== name) {
      const start = this.pos;
      this.literal(name, value, 0x00, 4, false);
      hit = { name, bytes: Buffer.from(this.out.subarray(start, this.pos)) };
      if (this.literals.size >= LITERAL_CACHE_ENTRIES) this.literals.delete(this.literals.keys().next().value!);
      this.literals.set(value, hit);
      return;
    }
    // The cached bytes use a static name index or a literal name (a dynamic name index is never cached): both stay valid.
    this.ensure(hit.bytes.length);
    this.out.set(hit.bytes, this.pos);
    this.pos += hit.bytes.length;
  }

  private string(s: string): void {
    const raw = s.length;
    const mode = this.huffman;
    const h = mode === "never" ? raw + 1 : huffmanLength(s);
    if (mode === "always" || (mode === "shorter" && h < raw)) {
      this.pos = writeInteger(this.out, this.pos, h, 7, 0x80);
      this.pos = huffmanEncode(s, this.out, this.pos);
    } else {
      this.pos = writeInteger(this.out, this.pos, raw, 7, 0x00);
      this.pos += this.out.write(s, this.pos, raw, "latin1");
    }
  }

  private writeSizeUpdate(size: number): void {
    this.ensure(8);
    this.pos = writeInteger(this.out, this.pos, size, 5, 0x20);
  }

  private ensure(n: number): void {
    if (this.out.length - this.pos >= n + 16) return;
    const next = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + n + 16));
    this.out.copy(next, 0, 0, this.pos);
    this.out = next;
  }
}

/**
 * Checks a header list `[name, value, ...]`: names are lower-case tokens
 * (a leading ':' for pseudo-headers), values carry no CR, LF or NUL and only
 * latin1 characters. Throws `InvalidOptionError`.
 */
export function validateFields(fields: readonly string[]): void {
  if ((fields.length & 1) !== 0) throw new InvalidOptionError("header fields must be [name, value] pairs");
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    if (typeof name !== "string" || typeof value !== "string") throw new InvalidOptionError("header names and values must be strings");
    checkField(name, value);
  }
}

function checkField(name: string, value: string): void {
  if (name.length === 0) throw new InvalidOptionError("empty header name");
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // Lower-case letters, digits and the token symbols; ':' only as the first character (pseudo-headers).
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c === 0x3a && i === 0) || "!#$%&'*+-.^_`|~".includes(name[i]!);
    if (!ok) throw new InvalidOptionError(`invalid header name ${JSON.stringify(name)}: names must be lower-case tokens`);
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d || c > 0xff) throw new InvalidOptionError(`invalid character in the value of header ${JSON.stringify(name)}`);
  }
}
