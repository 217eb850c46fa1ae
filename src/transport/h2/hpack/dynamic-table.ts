/**
 * The HPACK dynamic table (RFC 7541 §2.3.2, §4): a FIFO of header fields,
 * newest at index 62, bounded by a size in bytes (each entry counts its name,
 * its value and 32). Adding an entry evicts the oldest until it fits; an entry
 * larger than the whole table empties it. The encoder's table also keeps
 * lookups by name and by name + value, keyed by insertion number, so that an
 * entry's index is computed (it shifts as entries are added), never stored.
 * @module
 */
import { STATIC_TABLE_LENGTH } from "./static-table.js";

/** Per-entry overhead counted by the table size (RFC 7541 §4.1). */
export const ENTRY_OVERHEAD = 32;

/** Size of an entry; names and values are latin1 strings, one byte per character. */
export function entrySize(name: string, value: string): number {
  return ENTRY_OVERHEAD + name.length + value.length;
}

export class DynamicTable {
  protected names: string[];
  protected values: string[];
  /** Ring position of the oldest entry. */
  protected head = 0;
  /** Entries in the table. */
  length = 0;
  /** Current size in bytes. */
  size = 0;
  /** Entries ever inserted (the newest entry's insertion number is `inserted - 1`). */
  inserted = 0;

  constructor(
    /** Current maximum size in bytes. */
    public maxSize: number,
    /** The largest maximum size this table may ever be given (sizes the ring). */
    readonly capacity: number,
  ) {
    const slots = Math.floor(capacity / ENTRY_OVERHEAD) + 1;
    this.names = new Array<string>(slots).fill("");
    this.values = new Array<string>(slots).fill("");
  }

  /** Name of the entry at dynamic index `i` (1 = newest). The caller checks `1 <= i <= length`. */
  name(i: number): string {
    return this.names[this.slot(i)]!;
  }

  /** Value of the entry at dynamic index `i` (1 = newest). */
  value(i: number): string {
    return this.values[this.slot(i)]!;
  }

  /** Adds an entry at the front, evicting as needed. */
  add(name: string, value: string): void {
    const size = entrySize(name, value);
    if (size > this.maxSize) {
      // RFC 7541 §4.4: not an error; the table ends up empty.
      this.evictTo(0);
      this.inserted++;
      return;
    }
    this.evictTo(this.maxSize - size);
    const slot = (this.head + this.length) % this.names.length;
    this.names[slot] = name;
    this.values[slot] = value;
    this.length++;
    this.size += size;
    this.onAdd(name, value, this.inserted++);
  }

  /** Sets the maximum size (a dynamic table size update), evicting as needed. */
  setMaxSize(maxSize: number): void {
    this.maxSize = maxSize;
    this.evictTo(maxSize);
  }

  /** Entries newest first, as `[name, value]` (for tests and debugging). */
  entries(): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (let i = 1; i <= this.length; i++) out.push([this.name(i), this.value(i)]);
    return out;
  }

  private slot(i: number): number {
    return (this.head + this.length - i) % this.names.length;
  }

  private evictTo(limit: number): void {
    while (this.size > limit && this.length > 0) {
      const slot = this.head;
      const name = this.names[slot]!;
      const value = this.values[slot]!;
      this.names[slot] = "";
      this.values[slot] = "";
      this.head = (slot + 1) % this.names.length;
      this.length--;
      this.size -= entrySize(name, value);
      this.onEvict(name, value, this.inserted - this.length - 1);
    }
  }

  /** Hook: an entry with insertion number `seq` was added. */
  protected onAdd(_name: string, _value: string, _seq: number): void {}
  /** Hook: the entry with insertion number `seq` was evicted. */
  protected onEvict(_name: string, _value: string, _seq: number): void {}
}

/** The encoder's copy of the table, with lookups. `version` changes whenever the table does. */
export class EncoderTable extends DynamicTable {
  private readonly byName = new Map<string, number>();
  private readonly byNameValue = new Map<string, Map<string, number>>();
  /** Changes on every add, eviction or resize: cached encodings made at another version are stale. */
  version = 0;

  /** HPACK index (62 and up) of an entry with this name and value, or 0. */
  find(name: string, value: string): number {
    const seq = this.byNameValue.get(name)?.get(value);
    return seq === undefined ? 0 : this.indexOf(seq);
  }

  /** HPACK index (62 and up) of the newest entry with this name, or 0. */
  findName(name: string): number {
    const seq = this.byName.get(name);
    return seq === undefined ? 0 : this.indexOf(seq);
  }

  override setMaxSize(maxSize: number): void {
    this.version++;
    super.setMaxSize(maxSize);
  }

  private indexOf(seq: number): number {
    // The newest entry (seq = inserted - 1) is index 62.
    return STATIC_TABLE_LENGTH + this.inserted - seq;
  }

  protected override onAdd(name: string, value: string, seq: number): void {
    this.version++;
    this.byName.set(name, seq);
    let values = this.byNameValue.get(name);
    if (values === undefined) this.byNameValue.set(name, (values = new Map()));
    values.set(value, seq);
  }

  protected override onEvict(name: string, value: string, seq: number): void {
    this.version++;
    if (this.byName.get(name) === seq) this.byName.delete(name);
    const values = this.byNameValue.get(name);
    if (values !== undefined && values.get(value) === seq) {
      values.delete(value);
      if (values.size === 0) this.byNameValue.delete(name);
    }
  }
}
