// The sequential model of one etcd key, for the linearizability checker:
// put (answers the new revision), get (value, mod/create revision, version,
// at a header revision), delete (deleted count), and a txn that compares the
// value or the mod revision and puts or deletes in `then`, reading in `else`.
//
// Besides values the model tracks revisions, which makes the check much
// sharper than a plain register: each change of the key has a revision above
// every earlier change and above the header revision of every read placed
// before it, and a read at header revision H sees the key's last change at or
// before H. A write whose outcome is unknown, if applied, has an unknown
// revision: the model keeps a lower bound and narrows it to the exact value
// when a later read or compare reveals it.
import type { CheckOperation, Model } from "./linearizability.js";
import type { KvInput, KvOutput, KvRecord, Operation, TxnCondition } from "./history.js";

/** The state of one key. */
export interface KeyState {
  /** The value, or null while the key is absent. */
  readonly value: string | null;
  /** etcd's version: changes since creation, 0 when absent. */
  readonly version: number;
  /** Revision of the last change (the mod revision, or the deletion's revision once deleted). */
  readonly last: bigint;
  /** False when only a lower bound is known: the last change's revision is greater than `last`. */
  readonly lastExact: boolean;
  /** Create revision while present (0 when absent). */
  readonly create: bigint;
  readonly createExact: boolean;
  /** Every later change of the key has a revision greater than this (the last change, or a later read's header revision). */
  readonly floor: bigint;
}

const INITIAL: KeyState = { value: null, version: 0, last: 0n, lastExact: true, create: 0n, createExact: true, floor: 0n };

/** `s` narrowed to agree with a record seen of the key (null: absent); undefined when it cannot. */
function match(s: KeyState, kv: KvRecord | null): KeyState | undefined {
  if (kv === null) return s.value === null ? s : undefined;
  if (s.value !== kv.value || s.version !== kv.version) return undefined;
  if (s.lastExact ? s.last !== kv.modRevision : kv.modRevision <= s.last) return undefined;
  if (s.createExact ? s.create !== kv.createRevision : kv.createRevision <= s.create) return undefined;
  if (s.lastExact && s.createExact) return s;
  return { ...s, last: kv.modRevision, lastExact: true, create: kv.createRevision, createExact: true };
}

/** A read at header revision `at` that saw `kv` (or nothing); undefined when impossible from `s`. */
function observe(s: KeyState, at: bigint, kv: KvRecord | null): KeyState | undefined {
  const t = match(s, kv);
  if (t === undefined) return undefined;
  // The key's last change (its deletion, or nothing at 0, when absent) happened at or before the read's revision.
  if (kv === null ? (t.lastExact ? t.last > at : t.last >= at) : kv.modRevision > at) return undefined;
  return t.floor >= at ? t : { ...t, floor: at };
}

/** `s` narrowed by what a write saw just before it (`prev`), when the answer says. */
function before(s: KeyState, prev: KvRecord | null | undefined): KeyState | undefined {
  return prev === undefined ? s : match(s, prev);
}

/** A put answered with revision `rev`, or applied at an unknown revision (`rev` undefined). */
function put(s: KeyState, value: string, rev: bigint | undefined): KeyState | undefined {
  const present = s.value !== null;
  if (rev === undefined) {
    return {
      value,
      version: present ? s.version + 1 : 1,
      last: s.floor,
      lastExact: false,
      create: present ? s.create : s.floor,
      createExact: present ? s.createExact : false,
      floor: s.floor,
    };
  }
  if (rev <= s.floor) return undefined;
  return {
    value,
    version: present ? s.version + 1 : 1,
    last: rev,
    lastExact: true,
    create: present ? s.create : rev,
    createExact: present ? s.createExact : true,
    floor: rev,
  };
}

/** A delete that removed the key at revision `rev` (or at an unknown one). */
function remove(s: KeyState, rev: bigint | undefined): KeyState | undefined {
  if (s.value === null) return undefined;
  if (rev === undefined) return { value: null, version: 0, last: s.floor, lastExact: false, create: 0n, createExact: true, floor: s.floor };
  if (rev <= s.floor) return undefined;
  return { value: null, version: 0, last: rev, lastExact: true, create: 0n, createExact: true, floor: rev };
}

/** Whether the txn's comparison holds in `s`; when it depends on an unknown revision, both, each with what it implies. */
function compare(s: KeyState, cond: TxnCondition): Array<[boolean, KeyState]> {
  if (cond.target === "value") return [[s.value !== null && s.value === cond.value, s]];
  // etcd compares an absent key's mod revision as 0.
  if (s.value === null) return [[cond.modRevision === 0n, s]];
  if (s.lastExact) return [[s.last === cond.modRevision, s]];
  if (cond.modRevision <= s.last) return [[false, s]];
  return [
    [true, { ...s, last: cond.modRevision, lastExact: true }],
    [false, s],
  ];
}

function step(s: KeyState, input: KvInput, output: KvOutput | undefined): KeyState[] {
  const out: Array<KeyState | undefined> = [];
  switch (input.kind) {
    case "get":
      if (output === undefined) return [s];
      if (output.kind !== "get") return [];
      out.push(observe(s, output.revision, output.kv));
      break;
    case "put":
      if (output === undefined) out.push(put(s, input.value, undefined));
      else if (output.kind === "put") {
        const t = before(s, output.prev);
        if (t !== undefined) out.push(put(t, input.value, output.revision));
      }
      break;
    case "delete":
      if (output === undefined) out.push(s.value === null ? s : remove(s, undefined));
      else if (output.kind === "delete") {
        const t = before(s, output.prev);
        if (t !== undefined) out.push(output.deleted === 1 ? remove(t, output.revision) : output.deleted === 0 ? observe(t, output.revision, null) : undefined);
      }
      break;
    case "txn": {
      if (output !== undefined && output.kind !== "txn") return [];
      for (const [holds, t] of compare(s, input.cond)) {
        if (output === undefined) {
          // Applied with an unknown answer: only a successful write changes anything.
          if (!holds) out.push(s);
          else out.push(input.then.kind === "put" ? put(t, input.then.value, undefined) : t.value === null ? t : remove(t, undefined));
          continue;
        }
        if (holds !== output.succeeded) continue;
        if (!holds) {
          out.push(observe(t, output.revision, output.kv ?? null));
          continue;
        }
        const u = before(t, output.prev);
        if (u === undefined) continue;
        if (input.then.kind === "put") out.push(put(u, input.then.value, output.revision));
        else if (output.deleted === 1) out.push(remove(u, output.revision));
        else if (output.deleted === 0) out.push(observe(u, output.revision, null));
      }
      break;
    }
  }
  const seen = new Set<string>();
  return out.filter((x): x is KeyState => {
    if (x === undefined) return false;
    const k = key(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function key(s: KeyState): string {
  return `${s.value === null ? "-" : JSON.stringify(s.value)}|${s.version}|${s.last}${s.lastExact ? "" : "+"}|${s.create}${s.createExact ? "" : "+"}|${s.floor}`;
}

function describe(s: KeyState): string {
  const rev = (r: bigint, exact: boolean) => (exact ? `${r}` : `>${r}`);
  if (s.value === null) return `absent (deleted at ${rev(s.last, s.lastExact)}; next change > ${s.floor})`;
  return `${JSON.stringify(s.value)} (version ${s.version}, mod ${rev(s.last, s.lastExact)}, create ${rev(s.create, s.createExact)}; next change > ${s.floor})`;
}

/**
 * Revision order is almost always the linearization order: a write at R goes
 * before reads at header R (which see it), which go before the write at R + 1.
 */
function priority(_input: KvInput, output: KvOutput): number {
  return Number(output.revision) * 2 + (changes(output) ? 0 : 1);
}

function changes(o: KvOutput): boolean {
  if (o.kind === "put") return true;
  if (o.kind === "delete") return o.deleted > 0;
  if (o.kind === "txn") return o.succeeded && (o.deleted === undefined || o.deleted > 0);
  return false;
}

/** The model of one etcd key. */
export const kvModel: Model<KeyState, KvInput, KvOutput> = { init: () => INITIAL, step, key, describe, priority };

/**
 * The operations the checker sees: answered ones as they are, unknown ones as
 * pending (placed anywhere after their invocation, or never) unless resolved
 * from the cluster's history, certainly-failed ones dropped (no effect).
 */
export function toCheckOperations(ops: readonly Operation[]): Array<CheckOperation<KvInput, KvOutput> & { key: string }> {
  const out: Array<CheckOperation<KvInput, KvOutput> & { key: string }> = [];
  for (const o of ops) {
    if (o.outcome === "failed" || o.resolved === "not-applied") continue;
    const c: CheckOperation<KvInput, KvOutput> & { key: string } = { id: o.id, call: o.call, ret: o.outcome === "ok" ? o.ret : Infinity, input: o.input, key: o.input.key };
    if (o.output !== undefined) c.output = o.output;
    out.push(c);
  }
  return out;
}
