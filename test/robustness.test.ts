// A short robustness run inside the normal suite (about 45 s of workload,
// under 2 minutes in all): 3 members, 4 clients (some through fault-injecting
// proxies) with watchers, kept leases and lock holders, faults from a fresh
// seed (printed; ROBUSTNESS_SEED replays it), then every checker. The
// longer run is `npm run robustness` (ROBUSTNESS_SECONDS).
import { test } from "node:test";
import assert from "node:assert/strict";
import { runRobustness } from "./robustness/run.js";

test("KV stays linearizable, loses or duplicates no write, watchers miss nothing, leases and locks hold, under kills, stops, blackholes, resets, leader moves and compaction", { timeout: 240_000 }, async (t) => {
  const lines: string[] = [];
  const seed = process.env.ROBUSTNESS_SEED ? Number(process.env.ROBUSTNESS_SEED) : undefined;
  const r = await runRobustness({
    ...(seed !== undefined ? { seed } : {}),
    seconds: 45,
    maxOps: 40_000,
    budget: { maxSteps: 1_000_000, maxMs: 15_000 },
    log: (l) => {
      lines.push(l);
      process.stderr.write(`${l}\n`); // progress as it happens
    },
  });
  // The summary table (the last thing logged) in the test report.
  const summary = lines[lines.length - 1]!;
  for (const l of summary.split("\n")) t.diagnostic(l);
  // The run did real work under real faults, or passing would mean nothing.
  const total = Object.values(r.opsByKind).reduce((n, c) => n + c.ok + c.failed + c.unknown, 0);
  assert.ok(total >= 2000, `only ${total} operations\n${summary}`);
  const kinds = new Set(r.faults.filter((f) => f.ok).map((f) => f.kind));
  assert.ok(r.faults.length >= 8 && kinds.size >= 4, `only ${r.faults.length} faults of ${kinds.size} kinds\n${summary}`);
  // Watchers, kept leases and lock holders ran across those faults too.
  assert.ok(r.watch.watchers >= 3 && r.watch.events >= total / 4, `watchers saw only ${r.watch.events} events\n${summary}`);
  assert.ok(r.lease.leases >= 3, summary);
  assert.ok(r.lock.holds >= 10, `only ${r.lock.holds} lock holds\n${summary}`);
  assert.deepEqual(r.violationCounts, {}, summary);
  assert.equal(r.linearizability.verdict, "linearizable", summary);
  assert.ok(r.passed, summary);
});
