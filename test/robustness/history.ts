// The record of a run: every KV operation with its invocation and completion
// times (monotonic), its client, its input, and its output or how it failed.
// Failures are split by what they tell about the write: "failed" (it was
// certainly not applied) or "unknown" (it may or may not have taken effect).
import { writeFileSync, readFileSync } from "node:fs";
import {
  AbortedError,
  ClientClosedError,
  DeadlineExceededError,
  EndpointUnavailableError,
  EtcdError,
  InvalidKeyError,
  InvalidOptionError,
  LeaderChangedError,
  NoEndpointAvailableError,
  OutcomeUnknownError,
  RequestTooLargeError,
  ServerError,
  ServerStoppedError,
  ServerTimeoutError,
  TooManyOpsError,
} from "../../src/index.js";

/** A key-value pair as a read returned it. */
export interface KvRecord {
  value: string;
  modRevision: bigint;
  createRevision: bigint;
  version: number;
}

/** What a transaction compares: the key's value, or its mod revision (0 = the key is absent). */
export type TxnCondition = { target: "value"; value: string } | { target: "mod"; modRevision: bigint };

/** One KV operation on one key. Every put writes a value no other operation writes. */
export type KvInput =
  | { kind: "put"; key: string; value: string }
  | { kind: "get"; key: string }
  | { kind: "delete"; key: string }
  /** `if cond then <then> else get(key)`. */
  | { kind: "txn"; key: string; cond: TxnCondition; then: { kind: "put"; value: string } | { kind: "delete" } };

/**
 * What the server answered; `revision` is the response header's revision.
 * Writes ask for the previous pair (`prevKv`), so each write also shows the
 * key as it was just before it: `prev` (null: absent). It is left out when
 * not known (e.g. an unknown write resolved from the cluster's history).
 */
export type KvOutput =
  | { kind: "put"; revision: bigint; prev?: KvRecord | null }
  | { kind: "get"; revision: bigint; kv: KvRecord | null }
  | { kind: "delete"; revision: bigint; deleted: number; prev?: KvRecord | null }
  /** `deleted` and `prev` when the then-branch wrote; `kv` when the else-branch read. */
  | { kind: "txn"; revision: bigint; succeeded: boolean; deleted?: number; prev?: KvRecord | null; kv?: KvRecord | null };

/**
 * How an operation ended.
 * - `ok`: the server answered; `output` holds the answer.
 * - `failed`: the client says the operation certainly had no effect.
 * - `unknown`: it may or may not have taken effect; it may be linearized
 *   anywhere after its invocation, or not at all.
 */
export type Outcome = "ok" | "failed" | "unknown";

/** One recorded operation. Times are milliseconds on a monotonic clock from the start of the run. */
export interface Operation {
  id: number;
  /**
   * Who issued it: `<client instance>/<worker>`, e.g. `c1/w0`. One worker's
   * operations never overlap; the workers of one instance share its connections.
   */
  client: string;
  call: number;
  /** Completion time; `Infinity` while unknown (the operation may take effect at any later time). */
  ret: number;
  input: KvInput;
  outcome: Outcome;
  output?: KvOutput;
  /** `ClassName: message` of the error, for failed and unknown operations. */
  error?: string;
  /** True when the error was not an `EtcdError` (the client promises it always is). */
  untypedError?: boolean;
  /** Set when an unknown write was resolved from the cluster's history (see cluster-history.ts). */
  resolved?: "applied" | "not-applied";
}

/** True for operations that can change the store. */
export function isWrite(input: KvInput): boolean {
  return input.kind !== "get";
}

/**
 * Decides what a failed call tells about its effect. Reads have no effect
 * either way, so they are simply "failed". For writes, "failed" is kept for
 * errors after which the client (src/cluster/cluster-transport.ts, with
 * src/cluster/retry.ts and src/transport/failure.ts) or etcd guarantees the
 * write was never applied:
 *
 * - `EndpointUnavailableError` and `NoEndpointAvailableError`: the cluster
 *   transport only lets these out for a write when every attempt was marked
 *   unsent (`markUnsent`: refused dial, REFUSED_STREAM, a stream whose headers
 *   were never written); a write lost with its connection
 *   (`markConnectionLost`) becomes `OutcomeUnknownError` instead.
 * - Server answers given before a proposal (every `ServerError` except the
 *   three of `mayHaveBeenApplied` in retry.ts): "no leader", "too many
 *   requests", "not capable", validation errors.
 * - Client-side refusals before sending (bad key, option, size).
 * - `ProposalDroppedError` (a `ServerError`): raft refused it before logging it
 *   (the client resends it; it surfaces only when the deadline runs out).
 *
 * Everything else is "unknown":
 * - `OutcomeUnknownError`: the client's own verdict (connection lost after
 *   sending, or the member timed out / lost its leader / stopped with the
 *   proposal in raft).
 * - `ServerTimeoutError`, `LeaderChangedError`, `ServerStoppedError` should
 *   arrive wrapped in `OutcomeUnknownError`; bare they still mean "may apply".
 * - `DeadlineExceededError`: the deadline can fire after the request was sent,
 *   and the error does not say whether it was.
 * - `AbortedError` and `ClientClosedError`: the call was cut on our side,
 *   possibly after the request left.
 * - `ResponseTooLargeError`: the server answered, so the write was applied,
 *   but the answer was not read.
 * - A plain `EtcdError` (an unmapped server or transport error) and anything
 *   that is not an `EtcdError`: nothing proves the write did not happen.
 *
 * Calling a write "failed" is a claim the checks then verify: a failed put
 * whose unique value shows up in the cluster's history is a violation.
 */
export function outcomeOfError(input: KvInput, err: unknown): "failed" | "unknown" {
  if (!isWrite(input)) return "failed";
  if (!(err instanceof EtcdError)) return "unknown";
  if (err instanceof OutcomeUnknownError) return "unknown";
  if (err instanceof DeadlineExceededError || err instanceof AbortedError || err instanceof ClientClosedError) return "unknown";
  if (err instanceof ServerTimeoutError || err instanceof LeaderChangedError || err instanceof ServerStoppedError) return "unknown";
  if (err instanceof EndpointUnavailableError || err instanceof NoEndpointAvailableError) return "failed";
  if (err instanceof ServerError) return "failed";
  if (err instanceof InvalidKeyError || err instanceof InvalidOptionError || err instanceof RequestTooLargeError || err instanceof TooManyOpsError) {
    return "failed";
  }
  return "unknown";
}

/** A short text for an error: `ClassName: message`. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.constructor.name}: ${err.message}`;
  return String(err);
}

/** Collects operations as they are invoked and complete. */
export class History {
  readonly operations: Operation[] = [];
  private readonly t0: number;

  constructor(t0 = performance.now()) {
    this.t0 = t0;
  }

  /** Milliseconds since the history began, on the monotonic clock. */
  now(): number {
    return performance.now() - this.t0;
  }

  /**
   * Runs one operation and records it: invocation time just before `run`
   * starts, completion time as soon as its promise settles (event loop delays
   * only widen the interval, which is safe for the checkers).
   */
  async record(client: string, input: KvInput, run: () => Promise<KvOutput>): Promise<Operation> {
    const op: Operation = { id: this.operations.length, client, call: this.now(), ret: Infinity, input, outcome: "unknown" };
    this.operations.push(op);
    try {
      const output = await run();
      op.ret = this.now();
      op.output = output;
      op.outcome = "ok";
    } catch (e) {
      const at = this.now();
      op.error = describeError(e);
      if (!(e instanceof EtcdError)) op.untypedError = true;
      op.outcome = outcomeOfError(input, e);
      // A failed operation had no effect: its interval is known. An unknown one may take effect later.
      if (op.outcome === "failed") op.ret = at;
    }
    return op;
  }
}

// ---------------------------------------------------------------------------
// History files: JSON with bigints as strings ending in "n" and Infinity as null.

/** Writes `data` as JSON, keeping bigints and Infinity. */
export function saveJson(path: string, data: unknown): void {
  writeFileSync(
    path,
    JSON.stringify(data, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v === Infinity ? "Infinity" : v), 1),
  );
}

/** Reads a file written by {@link saveJson}. */
export function loadJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8"), (_k, v: unknown) => {
    if (typeof v === "string" && /^-?\d+n$/.test(v)) return BigInt(v.slice(0, -1));
    if (v === "Infinity") return Infinity;
    return v;
  }) as T;
}
