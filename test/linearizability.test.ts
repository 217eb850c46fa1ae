// The robustness checkers without a server: hand-made histories that must be
// rejected (stale read, lost write, write applied twice, read going back in
// time, revision reuse, two winners of one compare-and-swap) or accepted
// (overlapping operations, unknown outcomes that did or did not apply), and
// property tests: histories cut from a sequential run of a reference store
// are accepted; changing one observed value gets them rejected.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { checkLinearizable, checkPartitioned, type Model } from "./robustness/linearizability.js";
import { kvModel, toCheckOperations } from "./robustness/kv-model.js";
import { ClusterHistory, diffSnapshots, HistoryArchiver, type Snapshot } from "./robustness/cluster-history.js";
import { checkAgainstHistory, resolveUnknownWrites } from "./robustness/history-checks.js";
import { checkRevisionOrder, checkUniqueWriteRevisions } from "./robustness/revisions.js";
import { outcomeOfError, type KvInput, type KvOutput, type KvRecord, type Operation, type TxnCondition } from "./robustness/history.js";
import {
  AbortedError,
  DeadlineExceededError,
  EndpointUnavailableError,
  EtcdError,
  NoLeaderError,
  OutcomeUnknownError,
  ProposalDroppedError,
  ServerTimeoutError,
} from "../src/index.js";
import { Code } from "@connectrpc/connect";

// ---------------------------------------------------------------------------
// Building histories by hand.

let ids = 0;
const put = (key: string, value: string): KvInput => ({ kind: "put", key, value });
const get = (key: string): KvInput => ({ kind: "get", key });
const del = (key: string): KvInput => ({ kind: "delete", key });
const cas = (key: string, cond: TxnCondition, then: { kind: "put"; value: string } | { kind: "delete" }): KvInput => ({ kind: "txn", key, cond, then });
const rec = (value: string, modRevision: number, createRevision: number, version: number): KvRecord => ({
  value,
  modRevision: BigInt(modRevision),
  createRevision: BigInt(createRevision),
  version,
});
const putOk = (revision: number): KvOutput => ({ kind: "put", revision: BigInt(revision) });
const getOk = (revision: number, kv: KvRecord | null): KvOutput => ({ kind: "get", revision: BigInt(revision), kv });
const delOk = (revision: number, deleted: number): KvOutput => ({ kind: "delete", revision: BigInt(revision), deleted });
const txnOk = (revision: number, succeeded: boolean, extra: { kv?: KvRecord | null; deleted?: number } = {}): KvOutput => ({
  kind: "txn",
  revision: BigInt(revision),
  succeeded,
  ...extra,
});

/** An answered operation. */
function ok(client: string, call: number, ret: number, input: KvInput, output: KvOutput): Operation {
  return { id: ids++, client, call, ret, input, outcome: "ok", output };
}
/** An operation whose outcome is unknown (it may take effect any time after `call`, or never). */
function unknown(client: string, call: number, input: KvInput): Operation {
  return { id: ids++, client, call, ret: Infinity, input, outcome: "unknown", error: "OutcomeUnknownError" };
}

function verdict(ops: Operation[], maxSteps = 100_000): string {
  return checkPartitioned(kvModel, toCheckOperations(ops), (o) => o.key, { maxSteps, maxMs: 10_000 }).verdict;
}

function checks(ops: Operation[]): string[] {
  const v = checkRevisionOrder(ops, checkUniqueWriteRevisions(ops));
  return [...v.counts.keys()].sort();
}

describe("linearizability checker: rejects", () => {
  test("a stale read: the value before an acknowledged write, at the new header revision", () => {
    const h = [
      ok("c1", 0, 10, put("a", "1"), putOk(2)),
      ok("c1", 20, 30, put("a", "2"), putOk(3)),
      ok("c2", 40, 50, get("a"), getOk(3, rec("1", 2, 2, 1))),
    ];
    assert.equal(verdict(h), "not-linearizable");
    assert.deepEqual(checks(h), []); // the revisions alone look fine: only the model sees it
  });

  test("a stale read served at an old revision: also a revision going back in real time", () => {
    const h = [
      ok("c1", 0, 10, put("a", "1"), putOk(2)),
      ok("c1", 20, 30, put("a", "2"), putOk(3)),
      ok("c2", 40, 50, get("a"), getOk(2, rec("1", 2, 2, 1))),
    ];
    assert.equal(verdict(h), "not-linearizable");
    assert.deepEqual(checks(h), ["real-time-revision"]);
  });

  test("a lost write: an acknowledged put, then the key is absent", () => {
    const h = [ok("c1", 0, 10, put("a", "1"), putOk(2)), ok("c2", 20, 30, get("a"), getOk(2, null))];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("a write applied twice: its value reappears at a later revision", () => {
    const h = [
      ok("c1", 0, 10, put("a", "x"), putOk(2)),
      ok("c1", 20, 30, put("a", "y"), putOk(3)),
      ok("c2", 40, 50, get("a"), getOk(4, rec("x", 4, 2, 3))),
    ];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("a write applied twice, even when the put's outcome was unknown", () => {
    const h = [
      unknown("c1", 0, put("a", "x")),
      ok("c2", 5, 15, get("a"), getOk(2, rec("x", 2, 2, 1))),
      ok("c2", 20, 30, put("a", "y"), putOk(3)),
      ok("c2", 40, 50, get("a"), getOk(4, rec("x", 4, 2, 3))),
    ];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("a read going back in time for one client", () => {
    const h = [
      ok("c1", 0, 5, put("a", "1"), putOk(2)),
      ok("c1", 6, 9, put("a", "2"), putOk(3)),
      ok("c2", 10, 20, get("a"), getOk(3, rec("2", 3, 2, 2))),
      ok("c2", 30, 40, get("a"), getOk(2, rec("1", 2, 2, 1))),
    ];
    assert.equal(verdict(h), "not-linearizable");
    assert.deepEqual(checks(h), ["client-revision-monotonic", "real-time-revision"]);
  });

  test("revision reuse: two writes on different keys with one revision", () => {
    const h = [ok("c1", 0, 10, put("a", "1"), putOk(5)), ok("c2", 0, 10, put("b", "2"), putOk(5))];
    assert.equal(verdict(h), "linearizable"); // each key alone is fine
    assert.deepEqual(checks(h), ["unique-write-revision"]);
  });

  test("revision reuse on one key: the model refuses it too", () => {
    const h = [ok("c1", 0, 10, put("a", "1"), putOk(5)), ok("c2", 0, 10, put("a", "2"), putOk(5))];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("a later write with a smaller revision than an earlier one (other keys)", () => {
    const h = [ok("c1", 0, 10, put("a", "1"), putOk(7)), ok("c2", 20, 30, put("b", "2"), putOk(6))];
    assert.deepEqual(checks(h), ["real-time-revision"]);
  });

  test("a write invoked after a read at revision 5 completed cannot itself be revision 5", () => {
    const h = [ok("c1", 0, 10, get("b"), getOk(5, null)), ok("c2", 20, 30, put("a", "1"), putOk(5))];
    assert.deepEqual(checks(h), ["real-time-revision"]);
    // A read after a write may share its revision.
    assert.deepEqual(checks([ok("c2", 0, 10, put("a", "1"), putOk(5)), ok("c1", 20, 30, get("b"), getOk(5, null))]), []);
  });

  test("two winners of one compare-and-swap", () => {
    const h = [
      ok("c0", 0, 5, put("a", "0"), putOk(2)),
      ok("c1", 10, 30, cas("a", { target: "mod", modRevision: 2n }, { kind: "put", value: "1" }), txnOk(3, true)),
      ok("c2", 10, 30, cas("a", { target: "mod", modRevision: 2n }, { kind: "put", value: "2" }), txnOk(4, true)),
    ];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("a compare on the value that failed although the value matched", () => {
    const h = [
      ok("c0", 0, 5, put("a", "0"), putOk(2)),
      ok("c1", 10, 30, cas("a", { target: "value", value: "0" }, { kind: "put", value: "1" }), txnOk(2, false, { kv: rec("0", 2, 2, 1) })),
    ];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("a delete that reports a deletion of an absent key", () => {
    const h = [ok("c1", 0, 10, del("a"), delOk(2, 1))];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("a write whose previous pair (prevKv) never was the key's state", () => {
    const h = [
      ok("c1", 0, 10, put("a", "1"), putOk(2)),
      ok("c2", 20, 30, put("a", "2"), { kind: "put", revision: 3n, prev: rec("0", 1, 1, 1) }),
    ];
    assert.equal(verdict(h), "not-linearizable");
    const fine = [ok("c1", 0, 10, put("a", "1"), putOk(2)), ok("c2", 20, 30, put("a", "2"), { kind: "put", revision: 3n, prev: rec("1", 2, 2, 1) })];
    assert.equal(verdict(fine), "linearizable");
  });

  test("a read of a value nobody wrote", () => {
    const h = [ok("c1", 0, 10, get("a"), getOk(1, rec("ghost", 1, 1, 1)))];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("the report names the longest linearizable prefix and the operations that could not follow", () => {
    const h = [ok("c1", 0, 10, put("a", "1"), putOk(2)), ok("c2", 20, 30, get("a"), getOk(2, null))];
    const r = checkLinearizable(kvModel, toCheckOperations(h));
    assert.equal(r.verdict, "not-linearizable");
    if (r.verdict !== "not-linearizable") return;
    assert.deepEqual(r.longest, [h[0]!.id]);
    assert.ok(r.stuckAt.includes(h[1]!.id));
    assert.match(r.stateAfterLongest, /"1"/);
  });
});

describe("linearizability checker: accepts", () => {
  test("overlapping operations in an order other than their invocation", () => {
    const h = [
      ok("c1", 0, 100, put("a", "1"), putOk(3)),
      ok("c2", 0, 100, put("a", "2"), putOk(2)),
      ok("c3", 50, 60, get("a"), getOk(2, rec("2", 2, 2, 1))),
      ok("c3", 110, 120, get("a"), getOk(3, rec("1", 3, 2, 2))),
    ];
    assert.equal(verdict(h), "linearizable");
    assert.deepEqual(checks(h), []);
  });

  test("a read overlapping a write may see either side", () => {
    for (const seen of [null, rec("1", 2, 2, 1)]) {
      const h = [ok("c1", 0, 100, put("a", "1"), putOk(2)), ok("c2", 10, 20, get("a"), getOk(seen === null ? 1 : 2, seen))];
      assert.equal(verdict(h), "linearizable");
    }
  });

  test("an unknown put that applied (seen later) and one that did not (never seen)", () => {
    const h = [
      ok("c1", 0, 10, put("a", "1"), putOk(2)),
      unknown("c1", 20, put("a", "2")),
      unknown("c2", 25, put("a", "3")),
      ok("c3", 30, 40, get("a"), getOk(3, rec("2", 3, 2, 2))),
      ok("c3", 50, 60, get("a"), getOk(3, rec("2", 3, 2, 2))),
    ];
    assert.equal(verdict(h), "linearizable");
  });

  test("an unknown put that applied long after it was sent, after other writes", () => {
    const h = [
      unknown("c1", 0, put("a", "late")),
      ok("c2", 10, 20, put("a", "x"), putOk(2)),
      ok("c2", 30, 40, get("a"), getOk(2, rec("x", 2, 2, 1))),
      ok("c2", 50, 60, get("a"), getOk(3, rec("late", 3, 2, 2))),
    ];
    assert.equal(verdict(h), "linearizable");
  });

  test("but an unknown put cannot apply before it was invoked", () => {
    const h = [ok("c2", 0, 10, get("a"), getOk(2, rec("early", 2, 2, 1))), unknown("c1", 20, put("a", "early"))];
    assert.equal(verdict(h), "not-linearizable");
  });

  test("an unknown delete that applied, and a CAS that saw its effect", () => {
    const h = [
      ok("c1", 0, 10, put("a", "1"), putOk(2)),
      unknown("c2", 20, del("a")),
      ok("c3", 30, 40, cas("a", { target: "mod", modRevision: 0n }, { kind: "put", value: "2" }), txnOk(4, true)),
      ok("c3", 50, 60, get("a"), getOk(4, rec("2", 4, 4, 1))),
    ];
    assert.equal(verdict(h), "linearizable");
  });

  test("an unknown CAS whose revision a later compare reveals", () => {
    const h = [
      ok("c1", 0, 10, put("a", "1"), putOk(2)),
      unknown("c2", 20, cas("a", { target: "value", value: "1" }, { kind: "put", value: "2" })),
      ok("c3", 30, 40, cas("a", { target: "mod", modRevision: 5n }, { kind: "delete" }), txnOk(6, true, { deleted: 1 })),
      ok("c3", 50, 60, get("a"), getOk(6, null)),
    ];
    assert.equal(verdict(h), "linearizable");
  });

  test("deletes of an absent key and a failed compare read like reads", () => {
    const h = [
      ok("c1", 0, 10, del("a"), delOk(1, 0)),
      ok("c1", 20, 30, put("a", "1"), putOk(2)),
      ok("c2", 40, 50, cas("a", { target: "value", value: "nope" }, { kind: "delete" }), txnOk(2, false, { kv: rec("1", 2, 2, 1) })),
      ok("c2", 60, 70, cas("a", { target: "value", value: "1" }, { kind: "delete" }), txnOk(3, true, { deleted: 1 })),
      ok("c2", 80, 90, cas("a", { target: "mod", modRevision: 0n }, { kind: "delete" }), txnOk(3, true, { deleted: 0 })),
    ];
    assert.equal(verdict(h), "linearizable");
    assert.deepEqual(checks(h), []);
  });
});

test("the search is bounded: past its step budget the verdict is undecided", () => {
  // Many concurrent unknown puts and a read nobody could have produced: a big search space.
  const h: Operation[] = [];
  for (let i = 0; i < 10; i++) h.push(unknown(`c${i}`, i, put("a", `v${i}`)));
  h.push(ok("r", 100, 110, get("a"), getOk(50, rec("v3", 49, 2, 20)))); // version 20 after 10 puts: impossible
  const r = checkLinearizable(kvModel, toCheckOperations(h), { maxSteps: 500 });
  assert.equal(r.verdict, "undecided");
  // With room to finish it is rejected.
  assert.equal(checkLinearizable(kvModel, toCheckOperations(h), { maxSteps: 5_000_000 }).verdict, "not-linearizable");
});

test("the search is bounded in time too", () => {
  // A slow model that never reaches a dead end: only the clock stops the search.
  const slow: Model<number, number, number> = {
    init: () => 0,
    step: (s) => {
      const until = performance.now() + 1;
      while (performance.now() < until);
      return [s + 1];
    },
    key: (s) => String(s),
  };
  const ops = Array.from({ length: 1000 }, (_, i) => ({ id: i, call: 0, ret: 1, input: 0, output: 0 }));
  const r = checkLinearizable(slow, ops, { maxMs: 100 });
  assert.equal(r.verdict, "undecided");
  if (r.verdict === "undecided") assert.equal(r.reason, "time");
});

// ---------------------------------------------------------------------------
// Checks against the cluster's own history.

/** A history of key `a`: put x at 2, put y at 3, delete at 4, put z at 5. */
function sampleHistory(): ClusterHistory {
  const h = new ClusterHistory(1n, new Map());
  h.append(2n, [{ type: "put", key: "a", revision: 2n, value: "x", createRevision: 2n, version: 1 }]);
  h.append(3n, [{ type: "put", key: "a", revision: 3n, value: "y", createRevision: 2n, version: 2 }]);
  h.append(4n, [{ type: "delete", key: "a", revision: 4n }]);
  h.append(5n, [{ type: "put", key: "a", revision: 5n, value: "z", createRevision: 5n, version: 1 }]);
  return h;
}

function historyChecks(ops: Operation[], h = sampleHistory()): string[] {
  return [...checkAgainstHistory(ops, h).counts.keys()].sort();
}

describe("checks against the cluster's history", () => {
  const good = (): Operation[] => [
    ok("c1", 0, 10, put("a", "x"), putOk(2)),
    ok("c1", 20, 30, put("a", "y"), putOk(3)),
    ok("c2", 40, 50, get("a"), getOk(3, rec("y", 3, 2, 2))),
    ok("c2", 60, 70, del("a"), delOk(4, 1)),
    ok("c2", 80, 90, put("a", "z"), putOk(5)),
    ok("c2", 100, 110, get("a"), getOk(5, rec("z", 5, 5, 1))),
  ];

  test("a consistent run passes", () => {
    assert.deepEqual(historyChecks(good()), []);
  });

  test("an acknowledged write missing at its revision is a lost write", () => {
    const ops = good();
    ops[1] = ok("c1", 20, 30, put("a", "y2"), putOk(3));
    assert.ok(historyChecks(ops).includes("lost-write"));
  });

  test("a value at two revisions was applied twice", () => {
    const h = sampleHistory();
    h.append(6n, [{ type: "put", key: "a", revision: 6n, value: "x", createRevision: 5n, version: 2 }]);
    assert.deepEqual(historyChecks(good(), h), ["applied-twice"]);
  });

  test("a value nobody wrote is a phantom; a failed write that is there was applied after all", () => {
    const ops = good();
    ops[4] = { ...ops[4]!, outcome: "failed", output: undefined, error: "NoLeaderError" } as Operation;
    const checksFound = historyChecks(ops);
    assert.ok(checksFound.includes("failed-but-applied"));
    const h = sampleHistory();
    h.append(6n, [{ type: "put", key: "a", revision: 6n, value: "ghost", createRevision: 5n, version: 2 }]);
    assert.deepEqual(historyChecks(good(), h), ["phantom-write"]);
  });

  test("a read that differs from the history at its revision", () => {
    const ops = good();
    ops.push(ok("c3", 120, 130, get("a"), getOk(3, rec("x", 2, 2, 1))));
    assert.deepEqual(historyChecks(ops), ["read-mismatch"]);
  });

  test("a deletion no delete explains", () => {
    const ops = good().filter((o) => o.input.kind !== "delete");
    assert.deepEqual(historyChecks(ops), ["unattributed-delete"]);
    ops.push(unknown("c9", 55, del("a")));
    assert.deepEqual(historyChecks(ops), []);
  });

  test("unknown puts resolve from the history: applied at the value's revision, or not applied", () => {
    const ops = [unknown("c1", 0, put("a", "y")), unknown("c1", 0, put("a", "never")), unknown("c1", 0, del("a"))];
    const r = resolveUnknownWrites(ops, sampleHistory());
    assert.equal(r[0]!.resolved, "applied");
    assert.deepEqual(r[0]!.output, { kind: "put", revision: 3n });
    assert.equal(r[1]!.resolved, "not-applied");
    assert.equal(r[2]!.resolved, undefined);
    assert.equal(ops[0]!.resolved, undefined, "the input is not changed");
  });

  test("snapshots at consecutive revisions give the events between them", () => {
    const s1: Snapshot = new Map([["a", rec("x", 2, 2, 1)], ["b", rec("q", 1, 1, 1)]]);
    const s2: Snapshot = new Map([["a", rec("y", 3, 2, 2)]]);
    assert.deepEqual(diffSnapshots(s1, s2, 3n), [
      { type: "put", key: "a", revision: 3n, value: "y", createRevision: 2n, version: 2 },
      { type: "delete", key: "b", revision: 3n },
    ]);
    assert.throws(() => diffSnapshots(s1, new Map([["a", rec("other", 2, 2, 1)]]), 3n), /inconsistent/);
  });

  test("the archiver reads every revision up to a target and answers state queries", async () => {
    const states: Snapshot[] = [new Map(), new Map(), new Map([["a", rec("x", 2, 2, 1)]]), new Map([["a", rec("y", 3, 2, 2)]]), new Map()];
    const archiver = new HistoryArchiver(async (r) => states[Number(r)]!, 2);
    await archiver.start(1n);
    await Promise.all([archiver.catchUp(2n), archiver.catchUp(4n)]);
    const h = archiver.history;
    assert.equal(h.to, 4n);
    assert.deepEqual(h.stateAt("a", 3n), rec("y", 3, 2, 2));
    assert.equal(h.stateAt("a", 4n), null);
    assert.equal(h.stateAt("a", 1n), null);
    assert.equal(h.stateAt("a", 9n), undefined);
    const copy = ClusterHistory.fromJSON(h.toJSON());
    assert.deepEqual(copy.events, h.events);
  });
});

describe("error classification", () => {
  const w = put("a", "1");
  test("writes: unknown after a lost connection, a deadline, an abort, or an unmapped error", () => {
    const lost = new OutcomeUnknownError("etcdserverpb.KV/Put", new EndpointUnavailableError("x:1", "connection-lost"));
    assert.equal(outcomeOfError(w, lost), "unknown");
    assert.equal(outcomeOfError(w, new DeadlineExceededError(100)), "unknown");
    assert.equal(outcomeOfError(w, new AbortedError()), "unknown");
    assert.equal(outcomeOfError(w, new ServerTimeoutError("etcdserver: request timed out", Code.Unavailable)), "unknown");
    assert.equal(outcomeOfError(w, new EtcdError("some unmapped failure", Code.Unknown)), "unknown");
    assert.equal(outcomeOfError(w, new TypeError("boom")), "unknown");
  });
  test("writes: failed when refused before a proposal or never sent", () => {
    assert.equal(outcomeOfError(w, new NoLeaderError("etcdserver: no leader", Code.Unavailable)), "failed");
    assert.equal(outcomeOfError(w, new EndpointUnavailableError("x:1", "refused")), "failed");
    assert.equal(outcomeOfError(w, new ProposalDroppedError("raft proposal dropped", Code.Unknown)), "failed");
  });
  test("reads: always failed (no effect)", () => {
    assert.equal(outcomeOfError(get("a"), new DeadlineExceededError(100)), "failed");
  });
});

// ---------------------------------------------------------------------------
// Property tests: a reference store runs a random sequence; operations get
// random intervals around their place in it.

interface RefKey {
  value: string;
  mod: bigint;
  create: bigint;
  version: number;
}

/** A plain etcd store for a few keys: one global revision, written separately from the model under test. */
class RefStore {
  rev = 1n;
  keys = new Map<string, RefKey>();

  private read(key: string): KvRecord | null {
    const k = this.keys.get(key);
    return k === undefined ? null : { value: k.value, modRevision: k.mod, createRevision: k.create, version: k.version };
  }

  private write(key: string, value: string): void {
    this.rev++;
    const k = this.keys.get(key);
    this.keys.set(key, { value, mod: this.rev, create: k?.create ?? this.rev, version: (k?.version ?? 0) + 1 });
  }

  apply(input: KvInput): KvOutput {
    const prev = this.read(input.key);
    switch (input.kind) {
      case "get":
        return { kind: "get", revision: this.rev, kv: prev };
      case "put":
        this.write(input.key, input.value);
        return { kind: "put", revision: this.rev, prev };
      case "delete": {
        if (prev === null) return { kind: "delete", revision: this.rev, deleted: 0, prev };
        this.rev++;
        this.keys.delete(input.key);
        return { kind: "delete", revision: this.rev, deleted: 1, prev };
      }
      case "txn": {
        const holds = input.cond.target === "value" ? prev !== null && prev.value === input.cond.value : (prev?.modRevision ?? 0n) === input.cond.modRevision;
        if (!holds) return { kind: "txn", revision: this.rev, succeeded: false, kv: prev };
        if (input.then.kind === "put") {
          this.write(input.key, input.then.value);
          return { kind: "txn", revision: this.rev, succeeded: true, prev };
        }
        const out = this.apply({ kind: "delete", key: input.key }) as { deleted: number; revision: bigint };
        return { kind: "txn", revision: out.revision, succeeded: true, deleted: out.deleted, prev };
      }
    }
  }
}

type OpSpec = { kind: "put" | "get" | "delete" | "casValue" | "casMod"; key: number; pick: number; before: number; after: number; unknown: boolean };

const opSpec = fc.record({
  kind: fc.constantFrom("put", "get", "delete", "casValue", "casMod"),
  key: fc.integer({ min: 0, max: 1 }),
  pick: fc.nat(),
  before: fc.integer({ min: 0, max: 35 }),
  after: fc.integer({ min: 0, max: 35 }),
  unknown: fc.boolean(),
}) as fc.Arbitrary<OpSpec>;

/**
 * Runs the specs on the reference store. Each operation takes effect at time
 * 10*i and gets an interval around it; writes flagged unknown lose their answer,
 * and some become writes that never happened at all.
 */
function generate(specs: OpSpec[], unknownRate: number): Operation[] {
  const store = new RefStore();
  const written: string[] = [];
  const ops: Operation[] = [];
  specs.forEach((s, i) => {
    const key = `k${s.key}`;
    const at = i * 10;
    const value = `v${i}`;
    const seenValue = written.length > 0 ? written[s.pick % written.length]! : "none";
    let input: KvInput;
    switch (s.kind) {
      case "put":
        input = put(key, value);
        break;
      case "get":
        input = get(key);
        break;
      case "delete":
        input = del(key);
        break;
      case "casValue":
        input = cas(key, { target: "value", value: seenValue }, s.pick % 2 === 0 ? { kind: "put", value } : { kind: "delete" });
        break;
      case "casMod": {
        const cur = store.keys.get(key)?.mod ?? 0n;
        input = cas(key, { target: "mod", modRevision: s.pick % 3 === 0 ? cur + 1n : cur }, { kind: "put", value });
        break;
      }
    }
    const isUnknownWrite = input.kind !== "get" && s.unknown && s.pick % 100 < unknownRate * 100;
    // Half of the unknown writes never reached the store.
    if (isUnknownWrite && s.pick % 2 === 1) {
      ops.push({ id: i, client: `c${i}`, call: at - s.before, ret: Infinity, input, outcome: "unknown" });
      return;
    }
    const output = store.apply(input);
    if (input.kind === "put") written.push(input.value);
    if (input.kind === "txn" && input.then.kind === "put") written.push(input.then.value);
    if (isUnknownWrite) ops.push({ id: i, client: `c${i}`, call: at - s.before, ret: Infinity, input, outcome: "unknown" });
    else ops.push({ id: i, client: `c${i}`, call: at - s.before, ret: at + s.after, input, outcome: "ok", output });
  });
  return ops;
}

/** Changes one observed value of an answered read; returns undefined when there is none. */
function mutate(ops: Operation[], pick: number, how: number): Operation[] | undefined {
  const readers = ops.filter((o) => o.outcome === "ok" && (o.output?.kind === "get" || (o.output?.kind === "txn" && !o.output.succeeded)));
  if (readers.length === 0) return undefined;
  const victim = readers[pick % readers.length]!;
  const out = victim.output as { kv?: KvRecord | null };
  const kv = out.kv ?? null;
  let changed: KvRecord | null;
  if (kv === null) changed = rec("v-never-written", Number((victim.output as { revision: bigint }).revision), 1, 1);
  else if (how % 4 === 0) changed = null;
  else if (how % 4 === 1) changed = { ...kv, value: kv.value + "'" };
  else if (how % 4 === 2) changed = { ...kv, modRevision: kv.modRevision - 1n };
  else changed = { ...kv, version: kv.version + 1 };
  return ops.map((o) => (o === victim ? { ...o, output: { ...o.output!, kv: changed } as KvOutput } : o));
}

describe("property tests", () => {
  test("histories cut from a sequential run, with random overlaps and unknown outcomes, are linearizable", () => {
    fc.assert(
      fc.property(fc.array(opSpec, { minLength: 1, maxLength: 40, size: "max" }), (specs) => {
        const ops = generate(specs, 0.3);
        const r = checkPartitioned(kvModel, toCheckOperations(ops), (o) => o.key, { maxSteps: 2_000_000, maxMs: 20_000 });
        assert.equal(r.verdict, "linearizable", JSON.stringify([...r.partitions]));
        // Operations on a sequential run never break the revision checks either.
        assert.deepEqual(checks(ops), []);
      }),
      { numRuns: 300 },
    );
  });

  test("changing one observed value gets the history rejected (or left undecided)", () => {
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(opSpec, { minLength: 2, maxLength: 40, size: "max" }), fc.nat(), fc.nat(), (specs, pick, how) => {
        // Every answer known: revisions then pin each read to one state, so any change is impossible.
        const ops = mutate(generate(specs, 0), pick, how);
        if (ops === undefined) return;
        const r = checkPartitioned(kvModel, toCheckOperations(ops), (o) => o.key, { maxSteps: 200_000, maxMs: 5_000 });
        assert.notEqual(r.verdict, "linearizable");
        if (r.verdict === "not-linearizable") rejected++;
      }),
      { numRuns: 300 },
    );
    assert.ok(rejected > 200, `most mutations are rejected outright (${rejected})`);
  });
});
