// Shared by the watch tests: reading batches with deadlines, server-side watcher counts.
import assert from "node:assert/strict";
import type { Watcher, WatchBatch } from "../src/index.js";

/** Rejects after `ms` with a message naming what was awaited. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), Math.max(0, ms));
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Reads `n` batches (fewer if the watcher ends), all within `timeoutMs`. */
export async function take(w: Watcher, n: number, timeoutMs = 10_000): Promise<WatchBatch[]> {
  const out: WatchBatch[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const r = await within(w.next(), deadline - Date.now(), `batch ${out.length + 1} of ${n}`);
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

/** Reads batches until one with events is found (skipping progress notifications). */
export async function nextEvents(w: Watcher, timeoutMs = 10_000): Promise<WatchBatch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await within(w.next(), deadline - Date.now(), "a batch with events");
    assert.ok(!r.done, "the watcher ended");
    if (!r.value.progress) return r.value;
  }
}

/** Watchers the member has right now, from its metrics. */
export async function serverWatchers(endpoint: string): Promise<number> {
  const text = await (await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  const m = /^etcd_debugging_mvcc_watcher_total (\d+)/m.exec(text);
  assert.ok(m, "the member reports etcd_debugging_mvcc_watcher_total");
  return Number(m[1]);
}

/** Polls until `cond` holds, or fails after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A compact view of batches for assertions: `rev:type key=value,...`. */
export function describeBatches(batches: readonly WatchBatch[]): string[] {
  return batches.map((b) =>
    b.progress ? `${b.revision}:progress` : `${b.revision}:` + b.events.map((e) => `${e.type} ${e.keyText}=${e.text}`).join(","),
  );
}
