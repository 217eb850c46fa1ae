/**
 * The transaction builder: `if` comparisons, `then` ops when all hold, `else`
 * ops otherwise, applied atomically in one revision.
 * @module
 */
import type { TxnRequest } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { CallOptions } from "../call-options.js";
import type { Compare } from "./compare.js";
import { InvalidOptionError } from "../errors.js";
import { txnRequest, type Op } from "./op.js";
import type { TxnResult } from "./results.js";

/**
 * A transaction under construction. Get one from `etcd.txn()`:
 *
 * ```ts
 * const res = await etcd.txn()
 *   .if(Compare.modRevision("config", "=", seen.modRevision))
 *   .then(Op.put("config", next))
 *   .else(Op.get("config"))
 *   .commit();
 * ```
 *
 * `if`, `then` and `else` may each be called more than once (they append),
 * but in that order. Nothing is sent before {@link Txn.commit}.
 */
export class Txn {
  private readonly compares: Compare[] = [];
  private readonly success: Op[] = [];
  private readonly failure: Op[] = [];
  private stage = 0;

  constructor(private readonly run: (request: TxnRequest, options?: CallOptions) => Promise<TxnResult>) {}

  /** Adds comparisons; the transaction succeeds when all of them hold. */
  if(...compares: Compare[]): this {
    this.advance(0, "if");
    this.compares.push(...compares);
    return this;
  }

  /**
   * Adds ops to run when every comparison holds.
   *
   * Named like the Go client's `Then`; a `Txn` is not a promise, so `await` it
   * only through {@link Txn.commit}.
   */
  then(...ops: Op[]): this {
    // `await txn` without commit() would call then(resolve, reject): refuse it loudly.
    if (typeof ops[0] === "function") {
      const reject = ops[1] as unknown as ((e: unknown) => void) | undefined;
      const err = new InvalidOptionError("a Txn is not a promise: call .commit() to run it");
      if (typeof reject === "function") {
        reject(err);
        return this;
      }
      throw err;
    }
    this.advance(1, "then");
    this.success.push(...ops);
    return this;
  }

  /** Adds ops to run when some comparison fails. */
  else(...ops: Op[]): this {
    this.advance(2, "else");
    this.failure.push(...ops);
    return this;
  }

  /** The request this transaction sends. */
  toRequest(): TxnRequest {
    return txnRequest(this.compares, this.success, this.failure);
  }

  /** Sends the transaction. Never retried unless the caller opted into retrying writes. */
  commit(options?: CallOptions): Promise<TxnResult> {
    let req: TxnRequest;
    try {
      req = this.toRequest();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.run(req, options);
  }

  private advance(stage: number, name: string): void {
    if (stage < this.stage) throw new InvalidOptionError(`${name}() must come before ${["if", "then", "else"][this.stage]}()`);
    this.stage = stage;
  }
}
