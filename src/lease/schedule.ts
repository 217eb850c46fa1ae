/**
 * One timer for thousands of leases: wake-up times are rounded to slots of a
 * few tens of milliseconds, and a single timer runs for the earliest slot.
 * Leases that fall due in the same slot are handled, and their keep-alives
 * written, together. Rescheduling an item just records its new slot; the
 * entry left in the old slot is skipped when that slot comes (no search, no
 * removal cost on the hot path).
 * @module
 */

/** Something a {@link Schedule} can wake; the schedule keeps its slot in it. */
export interface Scheduled {
  /** Slot the item waits for, or -1 when it is not scheduled. Owned by the schedule. */
  wakeSlot: number;
}

/** Time and timers, injectable for tests. */
export interface Clock {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
  /** Runs `fn` once the I/O that is already waiting has been handled (`setImmediate`). */
  afterIo(fn: () => void): unknown;
  cancelAfterIo(handle: unknown): void;
}

/** `performance.now()` and Node's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  afterIo: (fn) => setImmediate(fn),
  cancelAfterIo: (h) => clearImmediate(h as NodeJS.Immediate),
};

/** A timer wheel of sorts: items wake in batches, per slot of `slotMs`. */
export class Schedule<T extends Scheduled> {
  private readonly slots = new Map<number, T[]>();
  /** Slot numbers that have entries, as a binary min-heap. */
  private readonly heap: number[] = [];
  private timer: unknown;
  private timerSlot = Infinity;

  constructor(
    private readonly slotMs: number,
    /** Called with every item whose slot has come, in one batch per timer run. */
    private readonly onDue: (items: T[], now: number) => void,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Wakes `item` near `time` (monotonic ms), replacing its earlier wake-up.
   * `early`: at most one slot before `time` (for work that may be done a
   * little early, like a refresh); `late`: never before `time` (for a
   * deadline), at most one slot after.
   */
  at(item: T, time: number, rounding: "early" | "late"): void {
    const q = time / this.slotMs;
    const slot = rounding === "early" ? Math.floor(q) : Math.ceil(q);
    item.wakeSlot = slot;
    let list = this.slots.get(slot);
    if (list === undefined) {
      list = [];
      this.slots.set(slot, list);
      heapPush(this.heap, slot);
    }
    list.push(item);
    if (slot < this.timerSlot) this.arm(slot);
  }

  /** Forgets `item`'s wake-up. */
  cancel(item: T): void {
    item.wakeSlot = -1;
  }

  /** Forgets everything and stops the timer. */
  clear(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerSlot = Infinity;
    for (const list of this.slots.values()) for (const it of list) it.wakeSlot = -1;
    this.slots.clear();
    this.heap.length = 0;
  }

  /** True while any wake-up is pending (stale entries included). */
  get armed(): boolean {
    return this.timer !== undefined;
  }

  private arm(slot: number): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerSlot = slot;
    const delay = Math.max(1, Math.ceil(slot * this.slotMs - this.clock.now()));
    this.timer = this.clock.setTimeout(this.fire, delay);
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerSlot = Infinity;
    const now = this.clock.now();
    const last = Math.floor(now / this.slotMs);
    const due: T[] = [];
    const heap = this.heap;
    while (heap.length > 0 && heap[0]! <= last) {
      const slot = heapPop(heap);
      const list = this.slots.get(slot)!;
      this.slots.delete(slot);
      for (let i = 0; i < list.length; i++) {
        const it = list[i]!;
        if (it.wakeSlot === slot) {
          it.wakeSlot = -1;
          due.push(it);
        }
      }
    }
    if (due.length > 0) this.onDue(due, now);
    // onDue may have scheduled later slots; an earlier one may still be waiting (the timer fired a little early).
    if (heap.length > 0 && heap[0]! < this.timerSlot) this.arm(heap[0]!);
  };
}

function heapPush(h: number[], v: number): void {
  let i = h.length;
  h.push(v);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (h[parent]! <= v) break;
    h[i] = h[parent]!;
    i = parent;
  }
  h[i] = v;
}

function heapPop(h: number[]): number {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length > 0) {
    let i = 0;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]! < h[l]! ? r : l;
      if (h[c]! >= last) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
  return top;
}
