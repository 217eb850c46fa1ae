/**
 * Comparisons for the `if` part of a transaction.
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  CompareSchema,
  Compare_CompareResult,
  Compare_CompareTarget,
  type Compare as RawCompare,
} from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { toBytes, type Bytes } from "./bytes.js";
import { InvalidOptionError } from "../errors.js";
import { toInt64, type Int64 } from "./int64.js";
import { NUL, prefixEnd } from "./key-range.js";
import { describeValue } from "../describe-value.js";

/** How a key's attribute is compared with the given operand. */
export type CompareOperator = "=" | "!=" | "<" | ">";

const RESULTS: Record<CompareOperator, Compare_CompareResult> = {
  "=": Compare_CompareResult.EQUAL,
  "!=": Compare_CompareResult.NOT_EQUAL,
  "<": Compare_CompareResult.LESS,
  ">": Compare_CompareResult.GREATER,
};

function result(op: CompareOperator): Compare_CompareResult {
  // Only the table's own string keys: anything else (an object, "toString") is not an operator.
  const r = typeof op === "string" && Object.hasOwn(RESULTS, op) ? RESULTS[op] : undefined;
  if (r === undefined) throw new InvalidOptionError(`unknown compare operator ${describeValue(op)}; use =, !=, < or >`);
  return r;
}

/**
 * One comparison of a transaction, e.g. `Compare.modRevision("k", "=", rev)`.
 * Immutable: `withPrefix()` and friends return a new comparison.
 *
 * A comparison against a missing key compares against zero values: version,
 * createRevision and modRevision 0, lease 0, an empty value. So
 * `Compare.createRevision(k, "=", 0)` means "k does not exist".
 *
 * ```ts
 * // Compare-and-swap: write only if nobody changed the key since it was read.
 * const cur = await etcd.get("config");
 * const { succeeded } = await etcd
 *   .txn()
 *   .if(Compare.modRevision("config", "=", cur.first!.modRevision))
 *   .then(Op.put("config", "new"))
 *   .commit();
 * // Create-if-absent.
 * await etcd.txn().if(Compare.createRevision("once", "=", 0)).then(Op.put("once", "1")).commit();
 * ```
 */
export class Compare {
  private constructor(
    /** The wire message. */
    readonly raw: RawCompare,
  ) {}

  /** Compare the key's value with `value` (bytewise). */
  static value(key: Bytes, op: CompareOperator, value: Bytes): Compare {
    return Compare.make(key, op, Compare_CompareTarget.VALUE, { case: "value", value: toBytes(value, "value") });
  }

  /** Compare the key's version (changes since creation; 0 when absent). */
  static version(key: Bytes, op: CompareOperator, version: Int64): Compare {
    return Compare.make(key, op, Compare_CompareTarget.VERSION, { case: "version", value: toInt64(version, "version") });
  }

  /** Compare the revision at which the key was created (0 when absent). */
  static createRevision(key: Bytes, op: CompareOperator, revision: Int64): Compare {
    return Compare.make(key, op, Compare_CompareTarget.CREATE, {
      case: "createRevision",
      value: toInt64(revision, "createRevision"),
    });
  }

  /** Compare the revision of the key's last change (0 when absent). */
  static modRevision(key: Bytes, op: CompareOperator, revision: Int64): Compare {
    return Compare.make(key, op, Compare_CompareTarget.MOD, { case: "modRevision", value: toInt64(revision, "modRevision") });
  }

  /** Compare the ID of the lease attached to the key (0 for none). */
  static lease(key: Bytes, op: CompareOperator, leaseId: Int64): Compare {
    return Compare.make(key, op, Compare_CompareTarget.LEASE, { case: "lease", value: toInt64(leaseId, "lease") });
  }

  /** Apply the comparison to every key with this key as prefix (all must match). */
  withPrefix(): Compare {
    return this.withRangeEnd(this.raw.key.length === 0 ? NUL : prefixEnd(this.raw.key), true);
  }

  /** Apply the comparison to every key in `[key, end)`. */
  withRange(end: Bytes): Compare {
    return this.withRangeEnd(toBytes(end, "range end"), false);
  }

  /** Apply the comparison to every key from this key on. */
  withFromKey(): Compare {
    return this.withRangeEnd(NUL, true);
  }

  private withRangeEnd(rangeEnd: Uint8Array, emptyKeyMeansAll: boolean): Compare {
    const key = this.raw.key.length === 0 && emptyKeyMeansAll ? NUL : this.raw.key;
    return new Compare(create(CompareSchema, { ...this.raw, key, rangeEnd }));
  }

  private static make(key: Bytes, op: CompareOperator, target: Compare_CompareTarget, targetUnion: RawCompare["targetUnion"]): Compare {
    return new Compare(create(CompareSchema, { key: toBytes(key), result: result(op), target, targetUnion }));
  }
}
