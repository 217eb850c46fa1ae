// Checks of what clients saw against the cluster's own history (see
// cluster-history.ts). Every put writes a value no other put writes, so a
// value names the operation that wrote it:
// - lost-write: an acknowledged write is not in the history at its revision;
// - applied-twice: a value was put at two revisions;
// - phantom-write: a value in the history that no operation wrote;
// - failed-but-applied: a write the client reported as certainly not applied is there;
// - unattributed-delete: more deletions of a key than delete operations could explain;
// - read-mismatch: a read's answer differs from the key's state at the read's header revision.
// Also resolves unknown writes: a put whose value is in the history was applied there; one whose
// value is not was never applied.
import type { ClusterHistory } from "./cluster-history.js";
import type { KvRecord, Operation } from "./history.js";
import { revisionOf } from "./revisions.js";
import { Violations } from "./violation.js";

/** The value a write operation puts, if it puts one. */
export function putValue(op: Operation): string | undefined {
  const i = op.input;
  if (i.kind === "put") return i.value;
  if (i.kind === "txn" && i.then.kind === "put") return i.then.value;
  return undefined;
}

/** True for operations that may delete their key. */
function mayDelete(op: Operation): boolean {
  return op.input.kind === "delete" || (op.input.kind === "txn" && op.input.then.kind === "delete");
}

/** Runs every check above. */
export function checkAgainstHistory(ops: readonly Operation[], history: ClusterHistory, v = new Violations()): Violations {
  const byValue = new Map<string, Operation>();
  for (const op of ops) {
    const val = putValue(op);
    if (val === undefined) continue;
    if (byValue.has(val)) throw new Error(`the workload wrote ${JSON.stringify(val)} twice (ops ${byValue.get(val)!.id} and ${op.id}): values must be unique`);
    byValue.set(val, op);
  }

  // Values in the history: each at most once, each from an operation that may have written it.
  const putAt = new Map<string, bigint[]>();
  for (const e of history.events) {
    if (e.type !== "put") continue;
    const l = putAt.get(e.value!);
    if (l === undefined) putAt.set(e.value!, [e.revision]);
    else l.push(e.revision);
  }
  for (const [val, revs] of putAt) {
    const op = byValue.get(val);
    if (revs.length > 1) v.add("applied-twice", `value ${JSON.stringify(val)} was put at revisions ${revs.join(", ")}`, op ? [op.id] : []);
    if (op === undefined) v.add("phantom-write", `value ${JSON.stringify(val)} at revision ${revs[0]} was written by no operation`);
    else if (op.outcome === "failed") {
      v.add("failed-but-applied", `${op.input.kind} #${op.id} (${op.client}) failed with "${op.error}" yet its value is at revision ${revs[0]}`, [op.id]);
    }
  }

  // Acknowledged writes are in the history, at the revision they were answered with.
  const claimed = new Set<bigint>();
  for (const op of ops) {
    if (op.outcome !== "ok") continue;
    const r = revisionOf(op);
    if (r === undefined || !r.wrote) continue;
    claimed.add(r.revision);
    if (!history.covers(r.revision)) {
      v.add("lost-write", `${op.input.kind} #${op.id} answered revision ${r.revision}, outside the history read (${history.from}..${history.to})`, [op.id]);
      continue;
    }
    const val = putValue(op);
    const ev = history.at(r.revision).find((e) => e.key === op.input.key);
    const ok = val !== undefined ? ev?.type === "put" && ev.value === val : ev?.type === "delete";
    if (!ok) {
      const what = val !== undefined ? `put of ${JSON.stringify(val)}` : "delete";
      const found = ev === undefined ? "nothing for that key" : `${ev.type}${ev.value !== undefined ? ` of ${JSON.stringify(ev.value)}` : ""}`;
      v.add("lost-write", `${what} on ${op.input.key} (#${op.id}, ${op.client}) was acknowledged at revision ${r.revision}, where the history has ${found}`, [op.id]);
    }
  }

  // Deletions nobody acknowledged must be explained by deletes with an unknown outcome on the same key.
  const unexplained = new Map<string, bigint[]>();
  for (const e of history.events) {
    if (e.type !== "delete" || claimed.has(e.revision)) continue;
    const l = unexplained.get(e.key);
    if (l === undefined) unexplained.set(e.key, [e.revision]);
    else l.push(e.revision);
  }
  for (const [key, revs] of unexplained) {
    const candidates = ops.filter((o) => o.outcome === "unknown" && o.input.key === key && mayDelete(o)).length;
    if (revs.length > candidates) {
      v.add("unattributed-delete", `${key} was deleted at revisions ${revs.join(", ")} with no acknowledged delete, and only ${candidates} delete(s) of unknown outcome`);
    }
  }

  // Every read saw the key as the history has it at the read's revision; every write saw (prevKv) the key as it was just before.
  for (const op of ops) {
    for (const [at, seen] of observations(op)) {
      const want = history.stateAt(op.input.key, at);
      if (want === undefined) {
        v.add("read-mismatch", `${op.input.kind} #${op.id} read at revision ${at}, outside the history read (${history.from}..${history.to})`, [op.id]);
      } else if (!sameRecord(seen, want)) {
        v.add("read-mismatch", `${op.input.kind} #${op.id} (${op.client}) on ${op.input.key} at revision ${at} saw ${show(seen)}; the history has ${show(want)}`, [op.id]);
      }
    }
  }
  return v;
}

/** What an answered operation saw of its key: (revision, record or null when absent) pairs. */
function observations(op: Operation): Array<[bigint, KvRecord | null]> {
  const o = op.output;
  if (op.outcome !== "ok" || o === undefined) return [];
  if (o.kind === "get") return [[o.revision, o.kv]];
  if (o.kind === "txn" && !o.succeeded) return o.kv === undefined ? [] : [[o.revision, o.kv]];
  // A write: the key just before its revision; a delete that found nothing: the key at its revision.
  if (revisionOf(op)?.wrote === true) return o.prev === undefined ? [] : [[o.revision - 1n, o.prev]];
  return [[o.revision, null]];
}

function sameRecord(a: KvRecord | null, b: KvRecord | null): boolean {
  if (a === null || b === null) return a === b;
  return a.value === b.value && a.modRevision === b.modRevision && a.createRevision === b.createRevision && a.version === b.version;
}

function show(r: KvRecord | null): string {
  return r === null ? "no key" : `${JSON.stringify(r.value)} (mod ${r.modRevision}, create ${r.createRevision}, version ${r.version})`;
}

/**
 * Marks each unknown put (or txn that puts) as applied, with the revision its
 * unique value has in the history, or as not applied when the value is not
 * there. The history must cover the whole run. Returns new operations; the
 * originals are not changed. Unknown deletes stay unknown (a deletion does not
 * name its operation).
 */
export function resolveUnknownWrites(ops: readonly Operation[], history: ClusterHistory): Operation[] {
  const putAt = new Map<string, bigint>();
  for (const e of history.events) if (e.type === "put" && !putAt.has(e.value!)) putAt.set(e.value!, e.revision);
  return ops.map((op) => {
    if (op.outcome !== "unknown") return op;
    const val = putValue(op);
    if (val === undefined) return op;
    const rev = putAt.get(val);
    if (rev === undefined) return { ...op, resolved: "not-applied" };
    const output = op.input.kind === "put" ? ({ kind: "put", revision: rev } as const) : ({ kind: "txn", revision: rev, succeeded: true } as const);
    return { ...op, resolved: "applied", output };
  });
}
