// The KV workload of a run: workers that each issue one operation at a time
// (put, get, delete, or a compare-and-swap txn) on a small set of keys, every
// put with a value no other operation writes, and record each in the history.
import { Compare, Op, type Etcd, type GetResult, type KeyValue } from "../../src/index.js";
import type { History, KvInput, KvOutput, KvRecord, Operation } from "./history.js";
import type { Random } from "./random.js";

/** Relative frequency of each operation. */
export interface OpMix {
  get: number;
  put: number;
  delete: number;
  casValue: number;
  casMod: number;
}

export const DEFAULT_MIX: OpMix = { get: 30, put: 30, delete: 8, casValue: 16, casMod: 16 };

function record(kv: KeyValue | undefined): KvRecord | null {
  return kv === undefined ? null : { value: kv.text, modRevision: kv.modRevision, createRevision: kv.createRevision, version: Number(kv.version) };
}

/** Sends one operation with the client; the answer as the history records it. */
export async function execute(etcd: Etcd, input: KvInput, timeoutMs: number): Promise<KvOutput> {
  const o = { timeoutMs };
  switch (input.kind) {
    case "put": {
      const r = await etcd.put(input.key, input.value, { ...o, prevKv: true });
      return { kind: "put", revision: r.revision, prev: record(r.prevKv) };
    }
    case "get": {
      const r = await etcd.get(input.key, o);
      return { kind: "get", revision: r.revision, kv: record(r.first) };
    }
    case "delete": {
      const r = await etcd.delete(input.key, { ...o, prevKv: true });
      return { kind: "delete", revision: r.revision, deleted: Number(r.deleted), prev: record(r.prevKvs[0]) };
    }
    case "txn": {
      const cond = input.cond.target === "value" ? Compare.value(input.key, "=", input.cond.value) : Compare.modRevision(input.key, "=", input.cond.modRevision);
      const then = input.then.kind === "put" ? Op.put(input.key, input.then.value, { prevKv: true }) : Op.delete(input.key, { prevKv: true });
      const r = await etcd.txn().if(cond).then(then).else(Op.get(input.key)).commit(o);
      const first = r.results[0];
      if (!r.succeeded) {
        if (first?.kind !== "get") throw new Error("txn else-branch answered without its get");
        return { kind: "txn", revision: r.revision, succeeded: false, kv: record((first as GetResult).first) };
      }
      if (input.then.kind === "delete") {
        if (first?.kind !== "delete") throw new Error("txn then-branch answered without its delete");
        return { kind: "txn", revision: r.revision, succeeded: true, deleted: Number(first.deleted), prev: record(first.prevKvs[0]) };
      }
      if (first?.kind !== "put") throw new Error("txn then-branch answered without its put");
      return { kind: "txn", revision: r.revision, succeeded: true, prev: record(first.prevKv) };
    }
  }
}

/** Shared stop conditions of all workers. */
export interface WorkBounds {
  /** Operations left to issue, across all workers. */
  remaining: number;
  /** Stop issuing at this time (run clock, ms). */
  until: number;
}

/** One sequential worker: its operations never overlap each other. */
export async function worker(
  name: string,
  etcd: Etcd,
  history: History,
  rnd: Random,
  keys: readonly string[],
  bounds: WorkBounds,
  opts: { timeoutMs: number; mix?: OpMix },
): Promise<void> {
  const mix = opts.mix ?? DEFAULT_MIX;
  // What this worker last saw of each key, for its compare-and-swaps.
  const seen = new Map<string, KvRecord | null>();
  let seq = 0;
  while (bounds.remaining > 0 && history.now() < bounds.until) {
    bounds.remaining--;
    const key = rnd.pick(keys);
    const value = `${name}.${seq++}`;
    const last = seen.get(key);
    let input: KvInput;
    switch (rnd.weighted(mix as unknown as Record<keyof OpMix, number>)) {
      case "get":
        input = { kind: "get", key };
        break;
      case "put":
        input = { kind: "put", key, value };
        break;
      case "delete":
        input = { kind: "delete", key };
        break;
      case "casValue":
        input = { kind: "txn", key, cond: { target: "value", value: last?.value ?? "none" }, then: { kind: "put", value } };
        break;
      case "casMod":
        input = {
          kind: "txn",
          key,
          cond: { target: "mod", modRevision: last?.modRevision ?? 0n },
          then: rnd.chance(0.8) ? { kind: "put", value } : { kind: "delete" },
        };
        break;
    }
    const op: Operation = await history.record(name, input, () => execute(etcd, input, opts.timeoutMs));
    learn(seen, op);
  }
}

/** Updates what a worker knows of a key from an answered operation. */
function learn(seen: Map<string, KvRecord | null>, op: Operation): void {
  const o = op.output;
  if (op.outcome !== "ok" || o === undefined) return;
  const key = op.input.key;
  if (o.kind === "get") seen.set(key, o.kv);
  else if (o.kind === "txn" && !o.succeeded && o.kv !== undefined) seen.set(key, o.kv);
  else if (o.kind === "delete" && o.deleted > 0) seen.set(key, null);
  else if (o.kind === "put" && op.input.kind === "put") {
    const prev = seen.get(key);
    seen.set(key, { value: op.input.value, modRevision: o.revision, createRevision: prev?.createRevision ?? o.revision, version: (prev?.version ?? 0) + 1 });
  }
}
