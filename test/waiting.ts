// Bounded waits shared by the concurrency tests.

/** Resolves after `ms`. */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves true when `p` settles (either way) within `ms`, false otherwise. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (t = setTimeout(() => r(false), ms)));
  const r = await Promise.race([p.then(() => true, () => true), timeout]);
  clearTimeout(t);
  return r;
}

/** Polls `cond` every 10 ms; throws when it is still false after `ms`. */
export async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await delay(10);
  }
}
