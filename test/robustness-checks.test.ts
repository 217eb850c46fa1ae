// The robustness run's checks take in what its watchers, kept leases and lock
// holders recorded: checkRun (test/robustness/run.ts) must report their
// violations next to the KV ones, and pass a clean run. Hand-made data, no server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClusterHistory } from "./robustness/cluster-history.js";
import type { Operation } from "./robustness/history.js";
import { checkRun, type Observations } from "./robustness/run.js";
import type { WatcherLog } from "./robustness/watch-checker.js";

// Two acknowledged puts, at revisions 2 and 3.
const ops: Operation[] = [
  { id: 0, client: "c0/w0", call: 0, ret: 10, input: { kind: "put", key: "k", value: "a" }, outcome: "ok", output: { kind: "put", revision: 2n, prev: null } },
  {
    id: 1,
    client: "c0/w0",
    call: 20,
    ret: 30,
    input: { kind: "put", key: "k", value: "b" },
    outcome: "ok",
    output: { kind: "put", revision: 3n, prev: { value: "a", modRevision: 2n, createRevision: 2n, version: 1 } },
  },
];

function history(): ClusterHistory {
  const h = new ClusterHistory(1n, new Map());
  h.append(2n, [{ type: "put", key: "k", revision: 2n, value: "a", createRevision: 2n, version: 1 }]);
  h.append(3n, [{ type: "put", key: "k", revision: 3n, value: "b", createRevision: 2n, version: 2 }]);
  return h;
}

const batch = (revision: bigint, value: string) => ({ kind: "batch" as const, at: 0, revision, events: [{ type: "put" as const, key: "k", revision, value }] });

function observations(bad: boolean): Observations {
  const log: WatcherLog = {
    id: "watch0.0",
    range: { prefix: "k" },
    startRevision: 2n,
    // Bad: revision 2 never delivered, 3 delivered twice.
    entries: bad ? [batch(3n, "b"), batch(3n, "b"), { kind: "end", at: 50, reason: "closed" }] : [batch(2n, "a"), batch(3n, "b"), { kind: "end", at: 50, reason: "closed" }],
  };
  return {
    watchers: [{ log, reach: 3n }],
    // Bad: lost with no outage at all.
    leases: [{ id: "lease0", ttlMs: 10_000, keptAliveFrom: 0, keptAliveUntil: 100, ...(bad ? { lostAt: 50, lostReason: "keepalive-failed" } : { existsAtEnd: true }) }],
    locks: {
      holds: [
        { holder: "h0", acquiredRevision: 10n, acquiredAt: 0, releasedRevision: 12n, releaseCalledAt: 20 },
        // Bad: acquired (revision 11, time 10) while h0 still held the lock.
        bad ? { holder: "h1", acquiredRevision: 11n, acquiredAt: 10, releasedRevision: 14n, releaseCalledAt: 40 } : { holder: "h1", acquiredRevision: 13n, acquiredAt: 30, releasedRevision: 14n, releaseCalledAt: 40 },
      ],
      failedLocks: 0,
      uncertainReleases: 0,
      unverified: 0,
    },
  };
}

test("a clean run's watchers, leases and locks pass, and are counted", () => {
  const r = checkRun(ops, history(), {}, observations(false));
  assert.deepEqual(r.violationCounts, {});
  assert.deepEqual(r.watch, { watchers: 1, logs: 1, batches: 2, events: 2, progress: 0, resumes: 0, compacted: 0 });
  assert.deepEqual(r.lease, { leases: 1, lost: 0, goneAtEnd: 0 });
  assert.equal(r.lock.holds, 2);
});

test("a watch gap and duplicate, a lease lost with a quorum up, and overlapping lock holders are violations", () => {
  const r = checkRun(ops, history(), {}, observations(true));
  const found = Object.keys(r.violationCounts).sort();
  for (const check of ["watch-duplicate", "watch-gap", "watch-lost-write", "lease-lost-with-quorum", "lock-overlap", "lock-overlap-time"]) {
    assert.ok(found.includes(check), `${check} missing from ${found.join(", ")}`);
  }
  // The KV history itself is fine: only the observations fail.
  assert.equal(r.linearizability.verdict, "linearizable");
});
