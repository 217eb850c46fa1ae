/**
 * The queue behind locks and elections: contenders are the keys under one
 * prefix, ordered by create revision; the lowest holds the lock or leads.
 * Joining is one idempotent transaction; waiting watches only the key just
 * ahead, so a release wakes one contender, not all of them.
 * @module
 */
import type { CallOptions } from "../call-options.js";
import { Compare } from "../kv/compare.js";
import { Op, type GetOptions } from "../kv/op.js";
import type { GetResult, TxnResult } from "../kv/results.js";
import type { KeyValue } from "../kv/key-value.js";
import { AbortedError, ClientClosedError, CompactedError, OutcomeUnknownError } from "../errors.js";
import type { KeyView } from "./session.js";

/** Where a contender stands after joining. */
export interface Place {
  /** Create revision of the contender's key: its place in line, and its fencing token. */
  rev: bigint;
  /** Its value when the key existed already (joining again after a restart or a lost answer). */
  existing: KeyValue | undefined;
  /** The first in line (lowest create revision), if any. */
  first: KeyValue | undefined;
  /** The transaction's result. */
  result: TxnResult;
}

/** Most attempts of a join whose outcome was unknown (a broken connection). */
const JOIN_ATTEMPTS = 5;

/** Get options selecting the first in line under a prefix: the lowest create revision. */
export const FIRST = { prefix: true, sort: { target: "createRevision", order: "ascend" }, limit: 1 } satisfies GetOptions;

function firstOf(prefix: Uint8Array): Op {
  return Op.get(prefix, FIRST);
}

/**
 * Writes `key` (attached to `lease`, with `value`) unless it exists, and
 * reads the first in line, in one transaction. Safe to repeat: a repeat
 * finds the key and reads it back, so a join whose answer was lost (a broken
 * connection, a restarted server) is retried here instead of failing.
 */
export async function join(view: KeyView, prefix: Uint8Array, key: Uint8Array, lease: bigint, value: Uint8Array, options: CallOptions): Promise<Place> {
  for (let attempt = 1; ; attempt++) {
    let result: TxnResult;
    try {
      result = await view
        .txn()
        .if(Compare.createRevision(key, "=", 0))
        .then(Op.put(key, value, { lease }), firstOf(prefix))
        .else(Op.get(key), firstOf(prefix))
        .commit(options);
    } catch (e) {
      if (e instanceof OutcomeUnknownError && attempt < JOIN_ATTEMPTS && options.signal?.aborted !== true) continue;
      throw e;
    }
    const first = (result.results[1] as GetResult).first;
    if (result.succeeded) return { rev: result.revision, existing: undefined, first, result };
    const existing = (result.results[0] as GetResult).first;
    // The key vanished between the compare and the read: impossible in one txn; read as "just written".
    return { rev: existing?.createRevision ?? result.revision, existing, first, result };
  }
}

/**
 * Waits until no key under `prefix` was created at or before `maxRev`: each
 * round reads the last such key and watches it alone until it is deleted.
 * Resolves with the revision of the last read.
 */
export async function waitForPredecessors(view: KeyView, prefix: Uint8Array, maxRev: bigint, signal: AbortSignal): Promise<bigint> {
  for (;;) {
    const r = await view.get(prefix, { prefix: true, maxCreateRevision: maxRev, sort: { target: "createRevision", order: "descend" }, limit: 1, signal });
    const ahead = r.first;
    if (ahead === undefined) return r.revision;
    await waitForDelete(view, ahead.key, r.revision, signal);
  }
}

/** Waits for `key` to be deleted after `revision`. */
async function waitForDelete(view: KeyView, key: Uint8Array, revision: bigint, signal: AbortSignal): Promise<void> {
  const w = view.watch(key, { startRevision: revision + 1n, noPut: true, signal });
  try {
    for await (const b of w) if (b.events.some((e) => e.type === "delete")) return;
  } catch (e) {
    // History compacted past our read: read again (the key may be gone already).
    if (e instanceof CompactedError) return;
    throw e;
  } finally {
    void w.close();
  }
  // A watcher ends cleanly only by its signal or the client's close.
  if (signal.aborted) throw new AbortedError(signal.reason);
  throw new ClientClosedError();
}
