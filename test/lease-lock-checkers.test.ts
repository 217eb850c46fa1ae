// The lease and lock checkers without a server: losses explained by an outage
// pass, losses with a quorum in reach and silent losses fail; lock holders in
// sequence pass, overlapping ones (by revision or in real time) fail.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkLeases, mergeOutages, type LeaseRecord } from "./robustness/lease-checker.js";
import { checkLockHolds, type LockHold } from "./robustness/lock-checker.js";

const lease = (o: Partial<LeaseRecord>): LeaseRecord => ({ id: "L1", ttlMs: 3000, keptAliveFrom: 0, keptAliveUntil: 60_000, ...o });
const leaseChecks = (ls: LeaseRecord[], outages: Array<{ from: number; to: number }> = []) => [...checkLeases(ls, outages).counts.keys()];

describe("lease checker", () => {
  test("a lease kept alive to the end and still there passes", () => {
    assert.deepEqual(leaseChecks([lease({ existsAtEnd: true })]), []);
  });

  test("a loss while a quorum was reachable is a violation", () => {
    assert.deepEqual(leaseChecks([lease({ lostAt: 20_000, lostReason: "expired" })]), ["lease-lost-with-quorum"]);
    // An outage long before the loss does not explain it; a short one just before neither.
    assert.deepEqual(leaseChecks([lease({ lostAt: 20_000 })], [{ from: 1000, to: 9000 }]), ["lease-lost-with-quorum"]);
    assert.deepEqual(leaseChecks([lease({ lostAt: 20_000 })], [{ from: 19_000, to: 19_500 }]), ["lease-lost-with-quorum"]);
  });

  test("a loss after an outage of most of the TTL is explained", () => {
    assert.deepEqual(leaseChecks([lease({ lostAt: 20_000 })], [{ from: 17_000, to: 19_000 }]), []);
    // Two overlapping outages count as one.
    assert.deepEqual(leaseChecks([lease({ lostAt: 20_000 })], [{ from: 17_000, to: 18_000 }, { from: 17_500, to: 19_000 }]), []);
    assert.deepEqual(mergeOutages([{ from: 5, to: 8 }, { from: 1, to: 3 }, { from: 2, to: 4 }]), [{ from: 1, to: 4 }, { from: 5, to: 8 }]);
  });

  test("a lease gone on the server that the client never reported lost", () => {
    assert.deepEqual(leaseChecks([lease({ existsAtEnd: false })]), ["lease-lost-silently"]);
    assert.deepEqual(leaseChecks([lease({ existsAtEnd: false, revoked: true })]), []);
  });
});

const hold = (holder: string, acquired: number, released: number | undefined, o: Partial<LockHold> = {}): LockHold => ({
  holder,
  acquiredRevision: BigInt(acquired),
  acquiredAt: acquired * 10,
  ...(released !== undefined ? { releasedRevision: BigInt(released), releaseCalledAt: released * 10 - 1 } : {}),
  ...o,
});
const lockChecks = (hs: LockHold[]) => [...checkLockHolds(hs).counts.keys()];

describe("lock checker", () => {
  test("holders one after another pass", () => {
    assert.deepEqual(lockChecks([hold("a", 5, 7), hold("b", 7, 9), hold("c", 12, undefined)]), []);
  });

  test("a holder acquiring before the previous one released overlaps", () => {
    // (these also overlap in real time, as the helper derives times from revisions)
    assert.ok(lockChecks([hold("a", 5, 8), hold("b", 7, 9)]).includes("lock-overlap"));
    assert.ok(lockChecks([hold("a", 5, 6), hold("b", 5, 9)]).includes("lock-overlap"));
  });

  test("a holder that never released, unless it lost its session", () => {
    assert.deepEqual(lockChecks([hold("a", 5, undefined), hold("b", 9, 10)]), ["lock-overlap"]);
    assert.deepEqual(lockChecks([hold("a", 5, undefined, { lost: true }), hold("b", 9, 10)]), []);
  });

  test("overlap in real time: the next holder's answer came before the previous one called Unlock", () => {
    assert.deepEqual(lockChecks([hold("a", 5, 7, { releaseCalledAt: 200 }), hold("b", 7, 9, { acquiredAt: 150 })]), ["lock-overlap-time"]);
  });
});
