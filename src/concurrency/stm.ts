/**
 * Software transactional memory: run a function that reads and writes keys as
 * if it were alone, and commit its writes in one transaction that checks
 * nobody changed what it relied on. On a conflict the function runs again on
 * fresh data, up to a retry limit.
 *
 * The four isolation levels follow the design of Go's `concurrency.STM`:
 *
 * | level | reads in one attempt | the commit fails when |
 * |---|---|---|
 * | `serializable-snapshot` (default) | all at the revision of the attempt's first read | a key read, or a key written, changed after that revision |
 * | `serializable` | all at the revision of the attempt's first read | a key read changed since it was read |
 * | `repeatable-reads` | each key at its latest revision when first read (from the member, not a quorum read), then cached | a key read changed since it was read |
 * | `read-committed` | as `repeatable-reads` | never: the last writer wins |
 *
 * Under every level a key is read from the server at most once per attempt
 * (later reads of it return the same value), and reads of keys the attempt
 * wrote return the buffered write.
 * @module
 */
import type { KeyValue as RawKeyValue } from "../../gen/etcd/api/mvccpb/kv_pb.js";
import { toBytes, toText, type Bytes } from "../kv/bytes.js";
import { Compare } from "../kv/compare.js";
import { Op, type DeleteOp, type GetOptions, type PutOp } from "../kv/op.js";
import type { GetResult, TxnResult } from "../kv/results.js";
import type { Txn } from "../kv/txn.js";
import type { CallOptions } from "../call-options.js";
import { sleep } from "../deadline.js";
import { retryDelayMs } from "../cluster/retry.js";
import { AbortedError, DeadlineExceededError, InvalidKeyError, InvalidOptionError, StmConflictError } from "../errors.js";
import { describeValue } from "../describe-value.js";

/** Isolation level of a software transaction; see the table in this module's description. */
export type Isolation = "serializable-snapshot" | "serializable" | "repeatable-reads" | "read-committed";

const ISOLATIONS: ReadonlySet<string> = new Set<Isolation>(["serializable-snapshot", "serializable", "repeatable-reads", "read-committed"]);

/** Re-runs after a conflict when {@link StmOptions.retries} is not given. */
export const DEFAULT_STM_RETRIES = 10;

// Pause before re-running: a few ms of jitter, growing with the attempt, so contenders on a hot key spread out.
const RETRY_BASE_MS = 2;
const RETRY_CAP_MS = 200;

/** Options of `etcd.stm(fn, options)`. */
export interface StmOptions {
  /** Default `serializable-snapshot`. */
  isolation?: Isolation;
  /**
   * How many times `fn` may run again after a conflict before the STM gives up
   * with {@link StmConflictError}. Default {@link DEFAULT_STM_RETRIES}; 0 = one attempt only.
   */
  retries?: number;
  /**
   * Keys every attempt reads: fetched together in one round trip before `fn`
   * runs, so the reads in `fn` cost nothing. They join the read set (and its
   * conflict checks) whether `fn` reads them or not.
   */
  prefetch?: readonly Bytes[];
  /** Aborts the STM: between attempts, during reads and before the commit. */
  signal?: AbortSignal;
  /** Deadline of the whole STM, every attempt included, in milliseconds. */
  timeoutMs?: number;
}

/** What `etcd.stm` resolves to once an attempt committed. */
export interface StmResult<T> {
  /** What `fn` returned in the attempt that committed. */
  value: T;
  /** Store revision after the commit (the snapshot revision when nothing had to be committed). */
  revision: bigint;
  /** How many times `fn` ran (1 when the first attempt committed). */
  attempts: number;
  /** The commit transaction's result; undefined when the attempt wrote nothing and had nothing to check. */
  txn: TxnResult | undefined;
}

/**
 * The handle `fn` gets in each attempt. Reads go to etcd (once per key per
 * attempt); writes are buffered and sent only with the commit.
 */
export interface Stm {
  /** The key's value as UTF-8 text, or undefined when it does not exist (or this attempt deleted it). */
  get(key: Bytes): Promise<string | undefined>;
  /** The key's value as bytes, or undefined when it does not exist (or this attempt deleted it). */
  getBytes(key: Bytes): Promise<Uint8Array | undefined>;
  /** The key's modification revision as read by this attempt (0n when absent); ignores this attempt's own writes. */
  rev(key: Bytes): Promise<bigint>;
  /** Buffers a write of `key`; later reads in this attempt see it. */
  put(key: Bytes, value: Bytes, options?: { lease?: bigint }): void;
  /** Buffers a deletion of `key`; later reads in this attempt see it absent. */
  delete(key: Bytes): void;
  /** Fires when the STM is aborted or its deadline passes: pass it on to other work `fn` awaits. */
  readonly signal: AbortSignal;
  /** 1 for the first run of `fn`, 2 for the first re-run, ... */
  readonly attempt: number;
}

/** What an STM reads and commits through: the client's KV, or a namespace. */
export interface StmStore {
  /** Reads a key or range, as {@link Etcd.get}. */
  get(key: Bytes, options?: GetOptions & CallOptions): Promise<GetResult>;
  /** Starts a transaction, as {@link Etcd.txn}. */
  txn(): Txn;
}

/** One key as an attempt read it: its pair (undefined when absent) and the store revision of the read. */
interface Read {
  readonly key: Uint8Array;
  readonly kv: RawKeyValue | undefined;
  readonly revision: bigint;
}

interface Write {
  readonly op: PutOp | DeleteOp;
  /** The value later reads in the attempt see; undefined for a delete. */
  readonly value: Uint8Array | undefined;
}

/** Identity of a key's bytes, for maps (latin1 maps bytes to chars one to one). */
function keyId(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

function singleKey(key: Bytes): Uint8Array {
  const k = toBytes(key);
  if (k.length === 0) throw new InvalidKeyError("key is empty; etcd has no empty key");
  return k;
}

function snapshotLevel(iso: Isolation): boolean {
  return iso === "serializable-snapshot" || iso === "serializable";
}

/**
 * Runs `fn` as a software transaction over `store` (see the module
 * description). The commit is a write and is never retried by the transport
 * when its outcome is unknown: the STM then rejects with the transport's
 * `OutcomeUnknownError` (or `AbortedError` / `DeadlineExceededError` when the
 * abort or deadline fell during the commit) and does not run `fn` again,
 * because the commit may have been applied. `fn` may run several times: keep
 * side effects out of it, or make them idempotent.
 */
export async function runStm<T>(store: StmStore, fn: (stm: Stm) => T | Promise<T>, options: StmOptions = {}): Promise<StmResult<T>> {
  const runner = new StmRun(store, options);
  try {
    return await runner.run(fn);
  } finally {
    runner.dispose();
  }
}

class StmRun {
  readonly isolation: Isolation;
  private readonly retries: number;
  private readonly prefetch: Uint8Array[];
  private readonly deadline: number | undefined;
  readonly attemptSignal: AbortSignal;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: StmStore,
    private readonly options: StmOptions,
  ) {
    const iso = options.isolation ?? "serializable-snapshot";
    if (!ISOLATIONS.has(iso)) throw new InvalidOptionError(`unknown isolation ${describeValue(iso)}; use ${[...ISOLATIONS].join(", ")}`);
    this.isolation = iso;
    const retries = options.retries ?? DEFAULT_STM_RETRIES;
    if (!Number.isSafeInteger(retries) || retries < 0) throw new InvalidOptionError(`retries must be a non-negative integer, got ${String(retries)}`);
    this.retries = retries;
    const t = options.timeoutMs;
    if (t !== undefined && (!Number.isFinite(t) || t <= 0)) throw new InvalidOptionError(`timeoutMs must be a positive number, got ${String(t)}`);
    this.deadline = t === undefined ? undefined : Date.now() + t;
    this.prefetch = (options.prefetch ?? []).map(singleKey);
    // fn sees one signal that fires on the caller's abort or on the deadline.
    const signals: AbortSignal[] = [];
    if (options.signal !== undefined) signals.push(options.signal);
    if (t !== undefined) {
      const deadline = new AbortController();
      this.timer = setTimeout(() => deadline.abort(new DeadlineExceededError(t)), t);
      this.timer.unref();
      signals.push(deadline.signal);
    }
    this.attemptSignal = signals.length === 0 ? new AbortController().signal : signals.length === 1 ? signals[0]! : AbortSignal.any(signals);
  }

  /** Clears the deadline timer. */
  dispose(): void {
    clearTimeout(this.timer);
  }

  async run<T>(fn: (stm: Stm) => T | Promise<T>): Promise<StmResult<T>> {
    let prefetched: Map<string, Read> | undefined;
    for (let attempt = 1; ; attempt++) {
      this.check();
      const a = new Attempt(this, attempt, prefetched);
      if (this.prefetch.length > 0) await a.read(this.prefetch);
      let value: T;
      try {
        value = await fn(a);
      } finally {
        a.finish();
      }
      this.check();
      const out = await this.commit(a);
      if (out.committed) return { value, revision: out.revision, attempts: attempt, txn: out.txn };
      if (attempt > this.retries) throw new StmConflictError(attempt);
      prefetched = out.prefetched;
      await sleep(retryDelayMs(attempt, RETRY_BASE_MS, RETRY_CAP_MS), this.attemptSignal).catch(() => this.check());
    }
  }

  /** Throws when the caller aborted or the deadline passed. */
  check(): void {
    const s = this.options.signal;
    if (s?.aborted) throw new AbortedError(s.reason);
    if (this.deadline !== undefined && Date.now() >= this.deadline) throw new DeadlineExceededError(this.options.timeoutMs!);
  }

  /** Per-call options: the caller's signal and what is left of the deadline. */
  callOptions(): CallOptions {
    this.check();
    const o: CallOptions = {};
    if (this.options.signal !== undefined) o.signal = this.options.signal;
    if (this.deadline !== undefined) o.timeoutMs = this.deadline - Date.now();
    return o;
  }

  /**
   * Reads `keys` in one round trip: a get for one key, a read-only transaction
   * for several. The transaction writes nothing, so the transport may resend it.
   */
  async readKeys(keys: readonly Uint8Array[], at: { revision?: bigint; serializable: boolean }): Promise<{ reads: Read[]; revision: bigint }> {
    const opts: GetOptions = { serializable: at.serializable };
    if (at.revision !== undefined) opts.revision = at.revision;
    if (keys.length === 1) {
      const res = await this.store.get(keys[0]!, { ...opts, ...this.callOptions() });
      return { reads: [{ key: keys[0]!, kv: res.raw.kvs[0], revision: res.revision }], revision: res.revision };
    }
    const res = await this.store
      .txn()
      .then(...keys.map((k) => Op.get(k, opts)))
      .commit({ ...this.callOptions(), retryWrites: true });
    return { reads: readsOf(keys, res), revision: res.revision };
  }

  private async commit(a: Attempt): Promise<
    | { committed: true; revision: bigint; txn: TxnResult | undefined }
    | { committed: false; prefetched: Map<string, Read> | undefined }
  > {
    const reads = await Promise.all(a.reads.values());
    const writes = [...a.writes.values()];
    const snapshot = snapshotLevel(this.isolation);
    // Reads from one snapshot are consistent as they are, and read-committed checks nothing: with no writes, nothing to send.
    if (writes.length === 0 && (snapshot || this.isolation === "read-committed" || reads.length === 0)) {
      return { committed: true, revision: reads.reduce((m, r) => (r.revision > m ? r.revision : m), 0n), txn: undefined };
    }
    const compares: Compare[] = [];
    if (this.isolation !== "read-committed") {
      for (const r of reads) compares.push(Compare.modRevision(r.key, "=", r.kv?.modRevision ?? 0n));
    }
    if (this.isolation === "serializable-snapshot" && reads.length > 0) {
      // Written keys must not have changed after the snapshot either (first committer wins).
      const base = reads.reduce((m, r) => (r.revision < m ? r.revision : m), reads[0]!.revision);
      for (const w of writes) compares.push(Compare.modRevision(w.op.request.key, "<", base + 1n));
    }
    const txn = this.store
      .txn()
      .if(...compares)
      .then(...writes.map((w) => w.op));
    // On a conflict, the else branch reads every key again, so the next attempt starts without a round trip.
    const keys = reads.map((r) => r.key);
    if (snapshot) txn.else(...keys.map((k) => Op.get(k)));
    // The commit writes: never resent when its outcome is unknown, whatever the client's retryWrites says.
    const res = await txn.commit({ ...this.callOptions(), retryWrites: false });
    if (res.succeeded) return { committed: true, revision: res.revision, txn: res };
    if (!snapshot) return { committed: false, prefetched: undefined };
    const prefetched = new Map<string, Read>();
    for (const r of readsOf(keys, res)) prefetched.set(keyId(r.key), r);
    return { committed: false, prefetched };
  }
}

/** The pairs of a transaction made only of single-key gets, one per key, at the transaction's revision. */
function readsOf(keys: readonly Uint8Array[], res: TxnResult): Read[] {
  return keys.map((key, i) => {
    const r = res.results[i];
    if (r?.kind !== "get") throw new TypeError("read transaction answered without a range response");
    return { key, kv: r.raw.kvs[0], revision: res.revision };
  });
}

/** One run of `fn`: its read set, its buffered writes and its read revision. */
class Attempt implements Stm {
  readonly reads = new Map<string, Promise<Read>>();
  readonly writes = new Map<string, Write>();
  /** Snapshot levels: the revision every read of this attempt uses, once known. */
  private pin: Promise<bigint> | undefined;
  private over = false;

  constructor(
    private readonly run: StmRun,
    readonly attempt: number,
    /** Keys the last conflict's commit read again, all at one revision. */
    private readonly prefetched: Map<string, Read> | undefined,
  ) {
    if (prefetched !== undefined && prefetched.size > 0) {
      this.pin = Promise.resolve(prefetched.values().next().value!.revision);
    }
  }

  get signal(): AbortSignal {
    return this.run.attemptSignal;
  }

  async get(key: Bytes): Promise<string | undefined> {
    const v = await this.getBytes(key);
    return v === undefined ? undefined : toText(v);
  }

  async getBytes(key: Bytes): Promise<Uint8Array | undefined> {
    this.live();
    const k = singleKey(key);
    const w = this.writes.get(keyId(k));
    if (w !== undefined) return w.value;
    const [r] = await this.read([k]);
    return r!.kv?.value;
  }

  async rev(key: Bytes): Promise<bigint> {
    this.live();
    const [r] = await this.read([singleKey(key)]);
    return r!.kv?.modRevision ?? 0n;
  }

  put(key: Bytes, value: Bytes, options?: { lease?: bigint }): void {
    this.live();
    const op = Op.put(key, value, options?.lease !== undefined ? { lease: options.lease } : undefined);
    this.writes.set(keyId(op.request.key), { op, value: op.request.value });
  }

  delete(key: Bytes): void {
    this.live();
    const op = Op.delete(singleKey(key));
    this.writes.set(keyId(op.request.key), { op, value: undefined });
  }

  /** Ends the attempt: a handle kept past its run must not change the next one. */
  finish(): void {
    this.over = true;
  }

  /** The read of each key, fetching the ones this attempt has not read yet in one round trip. */
  read(keys: readonly Uint8Array[]): Promise<Read[]> {
    const missing: Uint8Array[] = [];
    const seen = new Set<string>();
    for (const k of keys) {
      const id = keyId(k);
      if (!this.reads.has(id) && !seen.has(id)) {
        seen.add(id);
        missing.push(k);
      }
    }
    if (missing.length > 0) {
      const fetched = this.fetch(missing);
      missing.forEach((k, i) => this.reads.set(keyId(k), fetched.then((r) => r[i]!)));
    }
    return Promise.all(keys.map((k) => this.reads.get(keyId(k))!));
  }

  private async fetch(keys: Uint8Array[]): Promise<Read[]> {
    if (!snapshotLevel(this.run.isolation)) return (await this.run.readKeys(keys, { serializable: true })).reads;
    if (this.pin === undefined) {
      // The first read fixes the attempt's revision: a quorum read; reads started meanwhile wait for it.
      const first = this.run.readKeys(keys, { serializable: false });
      const pin = first.then((r) => r.revision);
      this.pin = pin;
      pin.catch(() => {
        if (this.pin === pin) this.pin = undefined;
      });
      return (await first).reads;
    }
    const revision = await this.pin;
    const out = new Array<Read | undefined>(keys.length);
    const rest: Uint8Array[] = [];
    keys.forEach((k, i) => {
      const p = this.prefetched?.get(keyId(k));
      if (p !== undefined) out[i] = p;
      else rest.push(k);
    });
    if (rest.length > 0) {
      // Served by the member at the pinned revision: the same snapshot, without another quorum round.
      const { reads } = await this.run.readKeys(rest, { revision, serializable: true });
      let j = 0;
      for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = reads[j++];
    }
    return out as Read[];
  }

  private live(): void {
    if (this.over) throw new InvalidOptionError("this STM attempt is over: use the handle only inside the function, while it runs");
  }
}
