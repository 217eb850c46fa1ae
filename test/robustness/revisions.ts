// Checks that use etcd's revisions, across keys: every acknowledged write
// created its own revision; revisions follow real time (an operation that
// completed before another was invoked never carries a larger revision, and a
// later write always a larger one); one client's revisions never go back.
import type { Operation } from "./history.js";
import { Violations } from "./violation.js";

/** The header revision of an answered operation, and whether the operation created that revision. */
export function revisionOf(op: Operation): { revision: bigint; wrote: boolean } | undefined {
  const o = op.output;
  if (o === undefined) return undefined;
  switch (o.kind) {
    case "put":
      return { revision: o.revision, wrote: true };
    case "get":
      return { revision: o.revision, wrote: false };
    case "delete":
      return { revision: o.revision, wrote: o.deleted > 0 };
    case "txn":
      return {
        revision: o.revision,
        wrote: o.succeeded && op.input.kind === "txn" && (op.input.then.kind === "put" || (o.deleted ?? 0) > 0),
      };
  }
}

/** No two writes (acknowledged, or resolved as applied) share a revision. */
export function checkUniqueWriteRevisions(ops: readonly Operation[], v = new Violations()): Violations {
  const byRevision = new Map<bigint, Operation>();
  for (const op of ops) {
    const r = revisionOf(op);
    if (r === undefined || !r.wrote) continue;
    const other = byRevision.get(r.revision);
    if (other !== undefined) {
      v.add("unique-write-revision", `writes ${other.id} (${other.client}) and ${op.id} (${op.client}) both report revision ${r.revision}`, [other.id, op.id]);
    } else byRevision.set(r.revision, op);
  }
  return v;
}

/**
 * Real-time order of revisions among answered operations: if A completed
 * before B was invoked, B's revision is at least A's, and greater when B
 * wrote. Checked over all operations (`check` = `real-time-revision`), and
 * per client instance (`client-revision-monotonic`: the part of `client`
 * before "/"), which names the narrower promise that one client's
 * linearizable reads never go back in time.
 */
export function checkRevisionOrder(ops: readonly Operation[], v = new Violations()): Violations {
  sweep(ops, "real-time-revision", v);
  const byClient = new Map<string, Operation[]>();
  for (const op of ops) {
    const instance = op.client.split("/")[0]!;
    let l = byClient.get(instance);
    if (l === undefined) byClient.set(instance, (l = []));
    l.push(op);
  }
  for (const l of byClient.values()) sweep(l, "client-revision-monotonic", v);
  return v;
}

function sweep(ops: readonly Operation[], check: string, v: Violations): void {
  const answered = ops.filter((o) => o.outcome === "ok" && revisionOf(o) !== undefined);
  const byCall = [...answered].sort((a, b) => a.call - b.call);
  const byRet = [...answered].sort((a, b) => a.ret - b.ret);
  let j = 0;
  let maxRev = -1n;
  let maxOp: Operation | undefined;
  for (const op of byCall) {
    while (j < byRet.length && byRet[j]!.ret < op.call) {
      const done = byRet[j++]!;
      const r = revisionOf(done)!.revision;
      if (r > maxRev) {
        maxRev = r;
        maxOp = done;
      }
    }
    if (maxOp === undefined) continue;
    const { revision, wrote } = revisionOf(op)!;
    if (wrote ? revision <= maxRev : revision < maxRev) {
      v.add(
        check,
        `${describe(op)} invoked at ${op.call.toFixed(1)} ms has revision ${revision}, but ${describe(maxOp)} completed before it (at ${maxOp.ret.toFixed(1)} ms) with revision ${maxRev}`,
        [maxOp.id, op.id],
      );
    }
  }
}

function describe(op: Operation): string {
  return `${op.input.kind} #${op.id} (${op.client}, ${op.input.key})`;
}
