// A manual clock for pure-logic tests: time moves only when the test says so.
import type { Clock } from "../src/lease/schedule.js";

interface FakeTimer {
  at: number;
  fn: () => void;
  seq: number;
}

/** A {@link Clock} whose time and timers move only through {@link FakeClock.advance}. */
export class FakeClock implements Clock {
  private t = 1000;
  private seq = 0;
  private timers = new Set<FakeTimer>();

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { at: this.t + Math.max(1, ms), fn, seq: this.seq++ };
    this.timers.add(timer);
    return timer;
  }

  clearTimeout(timer: unknown): void {
    this.timers.delete(timer as FakeTimer);
  }

  /** No I/O is ever waiting here: runs right after the timer being handled, at the same time. */
  afterIo(fn: () => void): unknown {
    const timer = { at: this.t, fn, seq: this.seq++ };
    this.timers.add(timer);
    return timer;
  }

  cancelAfterIo(handle: unknown): void {
    this.timers.delete(handle as FakeTimer);
  }

  /** Timers pending now. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order, at its own time. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const x of this.timers) if (x.at <= end && (next === undefined || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      if (next === undefined) break;
      this.timers.delete(next);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  /** Moves time without firing anything (a stalled event loop). */
  jump(ms: number): void {
    this.t += ms;
  }
}
