// A linearizability checker in the style of Wing and Gong, with Lowe's
// memoisation (as porcupine does it): a depth-first search for an order of the
// operations that respects real time and that a sequential model accepts.
//
// - Real time: an operation may be placed next only if it was invoked before
//   the earliest completion among the operations not yet placed ("minimal"
//   operations); a pending operation (`ret = Infinity`, outcome unknown) may
//   be placed anywhere after its invocation.
// - Memoisation: a (set of placed operations, model state) pair reached once
//   is never explored again; the set is kept as a 64-bit Zobrist hash.
// - Non-determinism: the model returns every state an operation can lead to.
// - Unknown outcomes: a pending operation may take effect at any point after
//   its invocation, or never. "Never" needs no search: such an operation may
//   simply be left out, so the search succeeds once every completed operation
//   is placed, and pending ones are only placed when they help.
// - Bounded: a step or time budget; past it the verdict is "undecided".
// - P-compositionality: histories of independent objects (keys) are checked
//   one partition at a time (see checkPartitioned).
import { Random } from "./random.js";

/** A sequential specification. */
export interface Model<S, I, O> {
  /** The state before any operation. */
  init(): S;
  /**
   * Every state the operation can lead to from `state`, given what it
   * answered. With `output` undefined (outcome unknown): every state it can
   * lead to if it takes effect here; the checker itself covers "never".
   * An empty list means the answer is impossible here.
   */
  step(state: S, input: I, output: O | undefined): S[];
  /** A string identifying the state, for memoisation (equal states, equal keys). */
  key(state: S): string;
  /** Readable form of a state, for reports. */
  describe?(state: S): string;
  /**
   * Optional hint: among the operations that may come next, those with a
   * lower number are tried first. Only the speed of the search depends on it
   * (a good hint avoids dead ends), never the verdict.
   */
  priority?(input: I, output: O): number;
}

/** An operation as the checker sees it. `ret` is `Infinity` for a pending / unknown one. */
export interface CheckOperation<I, O> {
  id: number;
  call: number;
  ret: number;
  input: I;
  output?: O;
}

/** Bounds of one search. */
export interface Budget {
  /** Most model steps. Default 2,000,000. */
  maxSteps?: number;
  /** Most milliseconds. Default 30,000. */
  maxMs?: number;
}

/** The verdict on one history. */
export type CheckResult =
  /** `order`: the operations placed, in order; pending ones left out never took effect. */
  | { verdict: "linearizable"; steps: number; order: number[] }
  | {
      verdict: "not-linearizable";
      steps: number;
      /** The longest prefix of a linearization found (operation ids). */
      longest: number[];
      /** The state after that prefix. */
      stateAfterLongest: string;
      /** Operations that could not come next (none of the minimal ones fit): ids. */
      stuckAt: number[];
    }
  | { verdict: "undecided"; steps: number; reason: "steps" | "time"; longest: number[] };

interface Node {
  /** Index of the operation in the partition's list. */
  op: number;
  isCall: boolean;
  /** For a call entry: its return entry. */
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

interface Level<S> {
  candidates: Node[];
  ci: number;
  outcomes: S[] | undefined;
  oi: number;
  prevState: S;
  /** The earliest remaining return entry: every candidate was invoked before it. */
  blocking: Node | undefined;
}

/** Checks one history (one object) against `model`. */
export function checkLinearizable<S, I, O>(model: Model<S, I, O>, ops: ReadonlyArray<CheckOperation<I, O>>, budget: Budget = {}): CheckResult {
  const maxSteps = budget.maxSteps ?? 2_000_000;
  const deadline = performance.now() + (budget.maxMs ?? 30_000);
  const n = ops.length;
  if (n === 0) return { verdict: "linearizable", steps: 0, order: [] };

  // Entries sorted by time; at equal times calls come first, so touching operations count as concurrent.
  type Entry = { time: number; node: Node };
  const entries: Entry[] = [];
  ops.forEach((o, i) => {
    if (!(o.ret >= o.call)) throw new RangeError(`operation ${o.id} completes (${o.ret}) before it is invoked (${o.call})`);
    const ret: Node = { op: i, isCall: false, match: undefined, prev: undefined, next: undefined };
    const call: Node = { op: i, isCall: true, match: ret, prev: undefined, next: undefined };
    entries.push({ time: o.call, node: call }, { time: o.ret, node: ret });
  });
  entries.sort((a, b) => a.time - b.time || (a.node.isCall === b.node.isCall ? 0 : a.node.isCall ? -1 : 1));
  const head: Node = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  let last = head;
  for (const { node } of entries) {
    last.next = node;
    node.prev = last;
    last = node;
  }

  // Placing an operation takes its call and return entries out of the list; undoing puts them back (stack order).
  const lift = (call: Node): void => {
    call.prev!.next = call.next;
    call.next!.prev = call.prev;
    const r = call.match!;
    r.prev!.next = r.next;
    if (r.next !== undefined) r.next.prev = r.prev;
  };
  const unlift = (call: Node): void => {
    const r = call.match!;
    r.prev!.next = r;
    if (r.next !== undefined) r.next.prev = r;
    call.prev!.next = call;
    call.next!.prev = call;
  };

  // Zobrist hashing of the placed set: two 32-bit words per operation, XORed in and out.
  const rnd = new Random(0x5eed);
  const z1 = new Uint32Array(n);
  const z2 = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    z1[i] = Math.floor(rnd.next() * 0x100000000);
    z2[i] = Math.floor(rnd.next() * 0x100000000);
  }
  let h1 = 0;
  let h2 = 0;
  const seen = new Set<string>();

  const priority = model.priority;
  const rank = priority === undefined ? undefined : ops.map((o) => (o.output === undefined ? 0 : priority(o.input, o.output)));
  const newLevel = (prevState: S): Level<S> => {
    // Minimal operations: calls before the first remaining return. Completed ones are tried before
    // pending ones, which usually fit anywhere and are best placed late.
    const known: Node[] = [];
    const pending: Node[] = [];
    let e = head.next;
    for (; e !== undefined && e.isCall; e = e.next) (ops[e.op]!.ret === Infinity ? pending : known).push(e);
    if (rank !== undefined && known.length > 1) known.sort((a, b) => rank[a.op]! - rank[b.op]!);
    return { candidates: known.concat(pending), ci: 0, outcomes: undefined, oi: 0, prevState, blocking: e };
  };

  let state = model.init();
  const stack: Array<Level<S>> = [];
  // Pending operations may stay out of the linearization: done once every completed one is placed.
  const mustPlace = ops.filter((o) => o.ret !== Infinity).length;
  let placed = 0;
  let level = newLevel(state);
  let steps = 0;
  let bestLen = -1;
  let best: number[] = [];
  let bestState = "";
  let bestStuck: number[] = [];
  const recordBest = (): void => {
    if (stack.length <= bestLen) return;
    bestLen = stack.length;
    best = stack.map((l) => ops[l.candidates[l.ci]!.op]!.id);
    bestState = model.describe?.(state) ?? model.key(state);
    // The earliest-completing operation left, and every minimal one: none of them could be placed next.
    const stuck = new Set(level.candidates.map((c) => ops[c.op]!.id));
    if (level.blocking !== undefined) stuck.add(ops[level.blocking.op]!.id);
    bestStuck = [...stuck];
  };

  for (;;) {
    if (placed === mustPlace) return { verdict: "linearizable", steps, order: stack.map((l) => ops[l.candidates[l.ci]!.op]!.id) };
    let descended = false;
    while (level.ci < level.candidates.length) {
      const node = level.candidates[level.ci]!;
      const o = ops[node.op]!;
      if (level.outcomes === undefined) {
        if (++steps > maxSteps) return { verdict: "undecided", steps, reason: "steps", longest: best };
        if ((steps & 255) === 0 && performance.now() > deadline) return { verdict: "undecided", steps, reason: "time", longest: best };
        level.outcomes = model.step(state, o.input, o.output);
        level.oi = 0;
      }
      while (level.oi < level.outcomes.length) {
        const next = level.outcomes[level.oi++]!;
        const k = `${(h1 ^ z1[node.op]!) >>> 0},${(h2 ^ z2[node.op]!) >>> 0},${model.key(next)}`;
        if (seen.has(k)) continue;
        seen.add(k);
        h1 = (h1 ^ z1[node.op]!) >>> 0;
        h2 = (h2 ^ z2[node.op]!) >>> 0;
        level.oi--; // remember which outcome this level took; it moves on past it when we come back
        stack.push(level);
        lift(node);
        if (o.ret !== Infinity) placed++;
        state = next;
        level = newLevel(state);
        descended = true;
        break;
      }
      if (descended) break;
      level.ci++;
      level.outcomes = undefined;
    }
    if (descended) continue;
    recordBest();
    // Nothing fits here: undo the last placement and try its next alternative.
    const parent = stack.pop();
    if (parent === undefined) {
      return { verdict: "not-linearizable", steps, longest: best, stateAfterLongest: bestState, stuckAt: bestStuck };
    }
    const node = parent.candidates[parent.ci]!;
    unlift(node);
    if (ops[node.op]!.ret !== Infinity) placed--;
    h1 = (h1 ^ z1[node.op]!) >>> 0;
    h2 = (h2 ^ z2[node.op]!) >>> 0;
    state = parent.prevState;
    parent.oi++;
    level = parent;
  }
}

/** The verdict on each partition, and overall. */
export interface PartitionedResult {
  verdict: "linearizable" | "not-linearizable" | "undecided";
  partitions: Map<string, CheckResult>;
}

/**
 * Checks each partition (e.g. each key) on its own: a history of independent
 * objects is linearizable exactly when each object's history is. Each
 * partition gets its own budget.
 */
export function checkPartitioned<S, I, O, T extends CheckOperation<I, O>>(
  model: Model<S, I, O>,
  ops: readonly T[],
  partitionOf: (op: T) => string,
  budget: Budget = {},
): PartitionedResult {
  const groups = new Map<string, T[]>();
  for (const o of ops) {
    const k = partitionOf(o);
    let g = groups.get(k);
    if (g === undefined) groups.set(k, (g = []));
    g.push(o);
  }
  const partitions = new Map<string, CheckResult>();
  let verdict: PartitionedResult["verdict"] = "linearizable";
  for (const [k, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const r = checkLinearizable(model, g, budget);
    partitions.set(k, r);
    if (r.verdict === "not-linearizable") verdict = "not-linearizable";
    else if (r.verdict === "undecided" && verdict === "linearizable") verdict = "undecided";
  }
  return { verdict, partitions };
}
