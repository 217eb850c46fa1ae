// The fault schedule is a pure function of the seed (so ROBUSTNESS_SEED replays
// a run's faults), draws every kind with its weight, and stays within bounds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DEFAULT_FAULT_WEIGHTS, planFaults, type FaultKind } from "./robustness/faults.js";
import { Random } from "./robustness/random.js";

test("the same seed gives the same schedule; another seed another one", () => {
  assert.deepEqual(planFaults(42, 50), planFaults(42, 50));
  assert.notDeepEqual(planFaults(42, 50), planFaults(43, 50));
  // A longer schedule starts with the shorter one.
  assert.deepEqual(planFaults(42, 80).slice(0, 50), planFaults(42, 50));
});

test("every kind appears, in proportion to its weight, with bounded gaps and durations", () => {
  const plan = planFaults(7, 5000);
  const counts = new Map<FaultKind, number>();
  for (const f of plan) {
    counts.set(f.kind, (counts.get(f.kind) ?? 0) + 1);
    assert.ok(f.gapMs >= 300 && f.gapMs <= 2000 && f.durationMs >= 500 && f.durationMs <= 4000, JSON.stringify(f));
  }
  const total = Object.values(DEFAULT_FAULT_WEIGHTS).reduce((a, b) => a + b, 0);
  for (const [kind, w] of Object.entries(DEFAULT_FAULT_WEIGHTS) as Array<[FaultKind, number]>) {
    const share = (counts.get(kind) ?? 0) / plan.length;
    assert.ok(Math.abs(share - w / total) < 0.03, `${kind}: ${share} vs ${w / total}`);
  }
  const onlyCompact = planFaults(7, 100, { ...DEFAULT_FAULT_WEIGHTS, kill: 0, "kill-leader": 0, pause: 0, "pause-leader": 0, blackhole: 0, reset: 0, "move-leader": 0 });
  assert.ok(onlyCompact.every((f) => f.kind === "compact"));
});

test("the generator is deterministic and derived generators are independent of use", () => {
  const a = new Random(1);
  const b = new Random(1);
  const xs = Array.from({ length: 10 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 10 }, () => b.next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.equal(new Random(5).derive(3).next(), new Random(5).derive(3).next());
  const used = new Random(5);
  used.next();
  assert.equal(used.derive(3).next(), new Random(5).derive(3).next());
  assert.notEqual(new Random(5).derive(3).next(), new Random(5).derive(4).next());
});
