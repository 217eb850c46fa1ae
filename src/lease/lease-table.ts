/**
 * The leases a client keeps alive, by ID. Answers on the keep-alive stream
 * come by the thousand each second; finding each one's lease through a
 * `bigint` key costs a `bigint` built per answer and a slow hash, so the
 * table also indexes leases by the low 32 bits of their ID (a small integer
 * key), checked against the high bits. Two kept leases whose IDs share the
 * low bits are rare; the second is then found through the full ID.
 * @module
 */
import { leaseIdOf } from "./keep-alive-codec.js";

/** What the table needs of an entry. */
export interface TableEntry {
  readonly id: bigint;
  /** The ID's high and low 32 bits, unsigned. */
  readonly idHi: number;
  readonly idLo: number;
  /** True while the entry is in a table (owned by the table). */
  kept: boolean;
}

/** Kept leases by ID, findable by the ID's two halves without a `bigint`. */
export class LeaseTable<E extends TableEntry> {
  private readonly byId = new Map<bigint, E>();
  private readonly byLow = new Map<number, E>();

  get size(): number {
    return this.byId.size;
  }

  get(id: bigint): E | undefined {
    return this.byId.get(id);
  }

  /** The entry whose ID has these halves (as a keep-alive answer carries them). */
  find(hi: number, lo: number): E | undefined {
    const e = this.byLow.get(lo | 0);
    if (e !== undefined && e.idHi === hi) return e;
    // Equal sizes: every entry is in the low-bits index, so a miss there is a miss.
    return this.byId.size === this.byLow.size ? undefined : this.byId.get(leaseIdOf(hi, lo));
  }

  /** Adds `e` unless its ID is taken; returns the entry now under that ID. */
  add(e: E): E {
    const existing = this.byId.get(e.id);
    if (existing !== undefined) return existing;
    this.byId.set(e.id, e);
    const low = e.idLo | 0;
    if (!this.byLow.has(low)) this.byLow.set(low, e);
    e.kept = true;
    return e;
  }

  /** Removes `e`; false when it was not in the table. */
  delete(e: E): boolean {
    if (!e.kept) return false;
    e.kept = false;
    this.byId.delete(e.id);
    const low = e.idLo | 0;
    if (this.byLow.get(low) === e) this.byLow.delete(low);
    return true;
  }

  values(): IterableIterator<E> {
    return this.byId.values();
  }

  /** Empties the table, returning what it held. */
  clear(): E[] {
    const all = [...this.byId.values()];
    for (const e of all) e.kept = false;
    this.byId.clear();
    this.byLow.clear();
    return all;
  }
}
