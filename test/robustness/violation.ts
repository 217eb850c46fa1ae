// What every checker returns: the violations it found, each naming its check.

/** One broken guarantee, with the operations (or watch entries) that show it. */
export interface Violation {
  /** The check that failed, e.g. `lost-write`. */
  check: string;
  message: string;
  /** Ids of the operations involved, when there are any. */
  ops?: number[];
}

/** Most violations kept per check, so a badly broken run still prints a readable report. */
export const MAX_PER_CHECK = 20;

/** Collects violations, keeping at most {@link MAX_PER_CHECK} per check but counting all. */
export class Violations {
  readonly list: Violation[] = [];
  readonly counts = new Map<string, number>();

  add(check: string, message: string, ops?: number[]): void {
    const n = (this.counts.get(check) ?? 0) + 1;
    this.counts.set(check, n);
    if (n <= MAX_PER_CHECK) this.list.push(ops === undefined ? { check, message } : { check, message, ops });
  }

  get total(): number {
    let t = 0;
    for (const n of this.counts.values()) t += n;
    return t;
  }
}
