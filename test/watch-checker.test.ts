// The watch checker without a server: a correct log passes; logs with a gap, a
// duplicate, a revision split across batches, events out of order, progress
// going back, a resume that skips, a wrong event, a stalled watcher are each
// rejected with the right check; random correct logs pass and random
// corruptions of them are caught.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ClusterHistory, type KvEvent } from "./robustness/cluster-history.js";
import { checkWatcher, type WatchEventRecord, type WatcherLog, type WatchLogEntry, type WatchExpectations } from "./robustness/watch-checker.js";

/** w/a=1 @2; w/b=2 @3; w/a=3 and delete w/b @4 (one txn); other/x @5 (out of range); delete w/a @6. */
function history(): ClusterHistory {
  const h = new ClusterHistory(1n, new Map());
  h.append(2n, [{ type: "put", key: "w/a", revision: 2n, value: "1", createRevision: 2n, version: 1 }]);
  h.append(3n, [{ type: "put", key: "w/b", revision: 3n, value: "2", createRevision: 3n, version: 1 }]);
  h.append(4n, [
    { type: "put", key: "w/a", revision: 4n, value: "3", createRevision: 2n, version: 2 },
    { type: "delete", key: "w/b", revision: 4n },
  ]);
  h.append(5n, [{ type: "put", key: "other/x", revision: 5n, value: "9", createRevision: 5n, version: 1 }]);
  h.append(6n, [{ type: "delete", key: "w/a", revision: 6n }]);
  return h;
}

const ev = (e: KvEvent): WatchEventRecord => ({ type: e.type, key: e.key, revision: e.revision, ...(e.value !== undefined ? { value: e.value } : {}) });
const batch = (revision: number, ...revs: number[]): WatchLogEntry => ({
  kind: "batch",
  at: revision,
  revision: BigInt(revision),
  events: revs.flatMap((r) => history().at(BigInt(r)).filter((e) => e.key.startsWith("w/")).map(ev)),
});
const progress = (revision: number): WatchLogEntry => ({ kind: "progress", at: revision, revision: BigInt(revision) });

function log(entries: WatchLogEntry[], startRevision = 2n): WatcherLog {
  return { id: "w1", range: { prefix: "w/" }, startRevision, entries };
}

function found(l: WatcherLog, expect: WatchExpectations = {}, h = history()): string[] {
  return [...checkWatcher(l, h, expect).counts.keys()].sort();
}

const goodEntries = (): WatchLogEntry[] => [batch(2, 2), batch(4, 3, 4), progress(5), batch(6, 6), progress(6)];

describe("watch checker", () => {
  test("a correct log passes, also with a resume at the right revision", () => {
    assert.deepEqual(found(log(goodEntries()), { reach: 6n }), []);
    const resumed = goodEntries();
    resumed.splice(2, 0, { kind: "resume", at: 4.5, fromRevision: 5n });
    assert.deepEqual(found(log(resumed)), []);
  });

  test("a gap: a revision never delivered", () => {
    assert.deepEqual(found(log([batch(2, 2), batch(4, 4), progress(5), batch(6, 6)])), ["watch-gap"]);
  });

  test("a duplicate: a revision delivered twice", () => {
    assert.deepEqual(found(log([batch(2, 2), batch(3, 3), batch(4, 3, 4), batch(6, 6)])), ["watch-duplicate"]);
  });

  test("a split revision: one transaction's events in two batches", () => {
    const h = history();
    const [p, d] = h.at(4n).map(ev);
    const entries: WatchLogEntry[] = [
      batch(2, 2),
      batch(3, 3),
      { kind: "batch", at: 4, revision: 4n, events: [p!] },
      { kind: "batch", at: 4.1, revision: 4n, events: [d!] },
      batch(6, 6),
    ];
    assert.deepEqual(found(log(entries)), ["watch-split-revision"]);
    // Half of it and never the rest is caught too.
    assert.deepEqual(found(log(entries.filter((_, i) => i !== 3))), ["watch-split-revision"]);
  });

  test("out of order: a later revision before an earlier one", () => {
    assert.ok(found(log([batch(2, 2), batch(4, 4), batch(3, 3), batch(6, 6)])).includes("watch-order"));
    // Within one batch too.
    const b = batch(4, 3, 4) as Extract<WatchLogEntry, { kind: "batch" }>;
    b.events.reverse();
    assert.ok(found(log([batch(2, 2), b, batch(6, 6)])).includes("watch-order"));
  });

  test("progress going back, and progress promising events that never came", () => {
    assert.deepEqual(found(log([batch(2, 2), batch(4, 3, 4), progress(5), progress(4), batch(6, 6)])), ["watch-progress"]);
    assert.deepEqual(found(log([batch(2, 2), progress(4), batch(4, 3, 4), batch(6, 6)])).sort(), ["watch-gap", "watch-progress"]);
  });

  test("a resume that skips past undelivered revisions, or goes back", () => {
    const skip = [batch(2, 2), { kind: "resume", at: 3, fromRevision: 4n } as WatchLogEntry, batch(4, 4), batch(6, 6)];
    assert.deepEqual(found(log(skip)), ["watch-gap", "watch-resume"]);
    const back = [batch(2, 2), batch(4, 3, 4), { kind: "resume", at: 5, fromRevision: 3n } as WatchLogEntry, batch(6, 6)];
    assert.deepEqual(found(log(back)), ["watch-resume"]);
    // After a progress notification past the last event, resuming anywhere from just after
    // that event to just after the notification re-delivers nothing; at the event it would.
    const resumeAt = (from: bigint): WatchLogEntry[] => [batch(2, 2), batch(4, 3, 4), progress(5), { kind: "resume", at: 5.5, fromRevision: from }, batch(6, 6)];
    assert.deepEqual(found(log(resumeAt(5n))), []);
    assert.deepEqual(found(log(resumeAt(6n))), []);
    assert.deepEqual(found(log(resumeAt(4n))), ["watch-resume"]);
    assert.deepEqual(found(log(resumeAt(7n))), ["watch-resume"]);
  });

  test("a wrong or invented event", () => {
    const wrong = batch(3, 3) as Extract<WatchLogEntry, { kind: "batch" }>;
    wrong.events[0]!.value = "not-2";
    assert.deepEqual(found(log([batch(2, 2), wrong, batch(4, 4), batch(6, 6)])), ["watch-wrong-event"]);
    const invented: WatchLogEntry = { kind: "batch", at: 5, revision: 5n, events: [{ type: "put", key: "w/z", revision: 5n, value: "?" }] };
    assert.deepEqual(found(log([batch(2, 2), batch(4, 3, 4), invented, batch(6, 6)])), ["watch-phantom-event"]);
  });

  test("a watcher that went silent, and an acknowledged write it never delivered", () => {
    assert.deepEqual(found(log([batch(2, 2), batch(3, 3)]), { reach: 6n }), ["watch-stalled"]);
    // The history lost the write too, so only the writer's acknowledgement shows it.
    const h = new ClusterHistory(1n, new Map());
    h.append(2n, []);
    h.append(3n, []);
    const l = log([progress(3)]);
    assert.deepEqual(found(l, { acknowledged: [{ key: "w/a", type: "put", revision: 2n, value: "1" }] }, h), ["watch-lost-write"]);
  });

  test("filters and ranges: filtered events are not expected", () => {
    const noDelete: WatcherLog = {
      id: "nd",
      range: { from: "w/a", end: "w/b" },
      startRevision: 2n,
      filters: { noDelete: true },
      entries: [
        { kind: "batch", at: 2, revision: 2n, events: [{ type: "put", key: "w/a", revision: 2n, value: "1" }] },
        { kind: "batch", at: 4, revision: 4n, events: [{ type: "put", key: "w/a", revision: 4n, value: "3" }] },
        progress(6),
      ],
    };
    assert.deepEqual(found(noDelete), []);
  });

  test("entries after the watcher ended are refused", () => {
    assert.deepEqual(found(log([batch(2, 2), { kind: "compacted", at: 3, compactRevision: 3n }, batch(4, 3, 4)])), ["watch-after-end"]);
  });
});

// ---------------------------------------------------------------------------
// Random histories and logs.

const historySpec = fc.array(
  fc.record({ keys: fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }), del: fc.boolean(), outside: fc.boolean() }),
  { minLength: 3, maxLength: 30 },
);

/** A history from the specs and the perfect log of a prefix watcher on it, cut into batches at `cuts`. */
function perfect(specs: Array<{ keys: number[]; del: boolean; outside: boolean }>, cuts: boolean[], progressAt: boolean[]): { h: ClusterHistory; l: WatcherLog } {
  const h = new ClusterHistory(1n, new Map());
  specs.forEach((s, i) => {
    const rev = BigInt(i + 2);
    h.append(
      rev,
      s.keys.map((k) => {
        const key = `${s.outside ? "o" : "w"}/${k}`;
        return s.del ? { type: "delete" as const, key, revision: rev } : { type: "put" as const, key, revision: rev, value: `v${i}-${k}`, createRevision: rev, version: 1 };
      }),
    );
  });
  const entries: WatchLogEntry[] = [];
  let pending: WatchEventRecord[] = [];
  specs.forEach((_, i) => {
    const rev = BigInt(i + 2);
    pending.push(...h.at(rev).filter((e) => e.key.startsWith("w/")).map(ev));
    if ((cuts[i] ?? true) && pending.length > 0) {
      entries.push({ kind: "batch", at: i, revision: rev, events: pending });
      pending = [];
    }
    if (progressAt[i] && pending.length === 0) entries.push({ kind: "progress", at: i + 0.5, revision: rev });
  });
  if (pending.length > 0) entries.push({ kind: "batch", at: specs.length, revision: h.to, events: pending });
  entries.push({ kind: "progress", at: specs.length + 1, revision: h.to });
  return { h, l: { id: "p", range: { prefix: "w/" }, startRevision: 2n, entries } };
}

describe("watch checker: properties", () => {
  test("perfect logs of random histories, cut into batches at random, pass", () => {
    fc.assert(
      fc.property(historySpec, fc.array(fc.boolean(), { maxLength: 30 }), fc.array(fc.boolean(), { maxLength: 30 }), (specs, cuts, prog) => {
        const { h, l } = perfect(specs, cuts, prog);
        assert.deepEqual([...checkWatcher(l, h, { reach: h.to }).counts.keys()], []);
      }),
      { numRuns: 300 },
    );
  });

  test("dropping, repeating, swapping or splitting a batch is caught", () => {
    fc.assert(
      fc.property(historySpec, fc.array(fc.boolean(), { maxLength: 30 }), fc.nat(), fc.integer({ min: 0, max: 3 }), (specs, cuts, pick, how) => {
        const { h, l } = perfect(specs, cuts, []);
        const batches = l.entries.map((e, i) => [e, i] as const).filter(([e]) => e.kind === "batch");
        if (batches.length < 2) return;
        const [victim, at] = batches[pick % batches.length]!;
        const entries = [...l.entries];
        const b = victim as Extract<WatchLogEntry, { kind: "batch" }>;
        if (how === 0) entries.splice(at, 1);
        else if (how === 1) entries.splice(at + 1, 0, { ...b, events: b.events.map((e) => ({ ...e })) });
        else if (how === 2) {
          const j = batches[(pick + 1) % batches.length]![1];
          [entries[at], entries[j]] = [entries[j]!, entries[at]!];
        } else {
          // Split one revision's events over two batches, when some revision has more than one.
          const multi = b.events.findIndex((e, i) => b.events.some((o, k) => k !== i && o.revision === e.revision));
          if (multi < 0) return;
          const rev = b.events[multi]!.revision;
          const first = b.events.filter((e, i) => e.revision !== rev || i === multi);
          const rest = b.events.filter((e, i) => e.revision === rev && i !== multi);
          entries.splice(at, 1, { ...b, events: first }, { ...b, events: rest });
        }
        assert.notDeepEqual([...checkWatcher({ ...l, entries }, h, { reach: h.to }).counts.keys()], []);
      }),
      { numRuns: 300 },
    );
  });
});
