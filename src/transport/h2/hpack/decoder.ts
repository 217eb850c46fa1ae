/**
 * HPACK decoder for response headers and trailers. A hostile peer cannot make
 * it allocate without bound: every string length is checked against the bytes
 * left in the block before anything is read, the decoded header list is
 * bounded (each field counts its name, value and 32, as SETTINGS_MAX_HEADER_LIST_SIZE
 * does), so a block that references one large table entry many times (an HPACK
 * bomb) fails as soon as it passes the limit, and table size updates above
 * the size we declared, or after the first field, are refused. Errors are
 * {@link H2Error} connection errors: after a failed block the table is out of
 * step with the peer's, so the connection cannot go on.
 * @module
 */
import { ErrorCode, H2Error } from "../errors.js";
import { DynamicTable, ENTRY_OVERHEAD } from "./dynamic-table.js";
import { huffmanDecode, huffmanMaxDecodedLength } from "./huffman.js";
import { BlockReader, compression } from "./primitives.js";
import { STATIC_TABLE, STATIC_TABLE_LENGTH } from "./static-table.js";

/** Options of {@link HpackDecoder}. */
export interface HpackDecoderOptions {
  /** The SETTINGS_HEADER_TABLE_SIZE we declared: the peer may not use a larger table (default 4096). */
  maxTableSize?: number;
  /** The SETTINGS_MAX_HEADER_LIST_SIZE we declared (default 64 KiB). */
  maxHeaderListSize?: number;
}

export class HpackDecoder {
  readonly table: DynamicTable;
  readonly maxHeaderListSize: number;
  private readonly maxTableSize: number;
  private scratch = Buffer.allocUnsafe(256);
  private readonly r = new BlockReader(new Uint8Array(0), 0);
  private block: Buffer = Buffer.alloc(0);
  private listSize = 0;

  constructor(options: HpackDecoderOptions = {}) {
    this.maxTableSize = options.maxTableSize ?? 4096;
    this.maxHeaderListSize = options.maxHeaderListSize ?? 64 * 1024;
    this.table = new DynamicTable(this.maxTableSize, this.maxTableSize);
  }

  /**
   * Decodes one complete header block, appending `name, value` pairs to
   * `out`. Throws {@link H2Error} (COMPRESSION_ERROR or ENHANCE_YOUR_CALM).
   */
  decode(block: Buffer, out: string[]): void {
    const r = this.r;
    r.reset(block, block.length);
    this.block = block;
    this.listSize = 0;
    let fields = 0;
    let updates = 0;
    const end = block.length;
    while (r.pos < end) {
      const b = block[r.pos]!;
      if (b >= 0x80) {
        // Indexed field.
        const i = this.r.integer(7);
        this.emit(this.nameAt(i), this.valueAt(i), out);
      } else if (b >= 0x40) {
        // Literal with incremental indexing.
        const i = this.r.integer(6);
        const name = i === 0 ? this.string(0) : this.nameAt(i);
        const value = this.string(name.length);
        this.emit(name, value, out);
        this.table.add(name, value);
      } else if (b >= 0x20) {
        // Dynamic table size update: only before the first field (RFC 7541 §4.2), at most two.
        if (fields > 0) throw compression("dynamic table size update after a header field");
        if (++updates > 2) throw compression("more than two dynamic table size updates in one block");
        const size = this.r.integer(5);
        if (size > this.maxTableSize) throw compression(`dynamic table size update to ${size}, above the ${this.maxTableSize} we allow`);
        this.table.setMaxSize(size);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const i = this.r.integer(4);
        const name = i === 0 ? this.string(0) : this.nameAt(i);
        this.emit(name, this.string(name.length), out);
      }
      fields++;
    }
  }

  private emit(name: string, value: string, out: string[]): void {
    this.count(name.length + value.length);
    out.push(name, value);
  }

  /** Adds a field of `bytes` (name + value) to the list size; over the limit is an error. */
  private count(bytes: number): void {
    this.listSize += ENTRY_OVERHEAD + bytes;
    if (this.listSize > this.maxHeaderListSize) {
      throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, `HPACK: header list larger than ${this.maxHeaderListSize} bytes`);
    }
  }

  private nameAt(i: number): string {
    if (i === 0) throw compression("index 0");
    if (i <= STATIC_TABLE_LENGTH) return STATIC_TABLE[i - 1]![0];
    const d = i - STATIC_TABLE_LENGTH;
    if (d > this.table.length) throw compression(`index ${i} beyond the table (${STATIC_TABLE_LENGTH + this.table.length} entries)`);
    return this.table.name(d);
  }

  private valueAt(i: number): string {
    if (i <= STATIC_TABLE_LENGTH) return STATIC_TABLE[i - 1]![1];
    return this.table.value(i - STATIC_TABLE_LENGTH);
  }

  /**
   * Reads a string literal. `pending` is the length of a name already read for
   * this field: together they must fit the header list limit before the
   * string is materialised.
   */
  private string(pending: number): string {
    const r = this.r;
    if (r.pos >= r.end) throw compression("header block ends inside a field");
    const huffman = (this.block[r.pos]! & 0x80) !== 0;
    const len = r.integer(7);
    const start = r.pos;
    if (len > r.end - start) throw compression(`string of ${len} bytes with ${r.end - start} left in the block`);
    r.pos = start + len;
    if (!huffman) {
      this.precheck(pending + len);
      return this.block.toString("latin1", start, start + len);
    }
    const max = huffmanMaxDecodedLength(len);
    if (this.scratch.length < max) this.scratch = Buffer.allocUnsafe(Math.max(max, this.scratch.length * 2));
    const n = huffmanDecode(this.block, start, start + len, this.scratch);
    this.precheck(pending + n);
    return this.scratch.toString("latin1", 0, n);
  }

  /** Fails before a string is built when the field would already pass the header list limit. */
  private precheck(bytes: number): void {
    if (this.listSize + ENTRY_OVERHEAD + bytes > this.maxHeaderListSize) {
      throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, `HPACK: header list larger than ${this.maxHeaderListSize} bytes`);
    }
  }
}
