/**
 * Operations: get, put, delete and nested transactions, as values. The KV
 * methods build one and run it; a transaction runs several atomically.
 * @module
 */
import { create } from "@bufbuild/protobuf";
import {
  DeleteRangeRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  RequestOpSchema,
  TxnRequestSchema,
  type DeleteRangeRequest,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  type TxnRequest,
} from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { toBytes, type Bytes } from "./bytes.js";
import type { Compare } from "./compare.js";
import { InvalidKeyError, InvalidOptionError, TooManyOpsError } from "../errors.js";
import { toInt64, type Int64 } from "./int64.js";
import { resolveRange, type RangeSelector } from "./key-range.js";
import { describeValue } from "../describe-value.js";

/** What to sort a range by. */
export type SortTarget = "key" | "version" | "createRevision" | "modRevision" | "value";
/** Sort direction; `none` leaves etcd's natural key order. */
export type SortOrder = "none" | "ascend" | "descend";

/** Options of a get (a Range request). */
export interface GetOptions extends RangeSelector {
  /** At most this many pairs (0 = no limit). `more` tells when there were more. */
  limit?: Int64;
  /** Read the store as it was at this revision (0 = now). Fails when compacted. */
  revision?: Int64;
  /**
   * Sort order of the result. etcd returns keys in ascending key order anyway,
   * so `{ target: "key", order: "ascend" }` is sent as "no sort" (sorting makes
   * etcd read the whole rest of the range, even with a `limit`).
   */
  sort?: {
    /** What to sort by (default `key`). */
    target?: SortTarget;
    /** `ascend`, `descend` or `none`. */
    order?: SortOrder;
  };
  /** Serve from the member's local state without a quorum read: faster, possibly stale. */
  serializable?: boolean;
  /** Return keys and metadata without values. */
  keysOnly?: boolean;
  /** Return only the count of keys in the range. */
  countOnly?: boolean;
  /** Only pairs last modified at or after this revision. */
  minModRevision?: Int64;
  /** Only pairs last modified at or before this revision. */
  maxModRevision?: Int64;
  /** Only pairs created at or after this revision. */
  minCreateRevision?: Int64;
  /** Only pairs created at or before this revision. */
  maxCreateRevision?: Int64;
}

/** Options of a put. */
export interface PutOptions {
  /** Attach the key to this lease; the key is deleted when the lease expires. */
  lease?: Int64;
  /** Return the previous pair in the result's `prevKv`. */
  prevKv?: boolean;
  /** Keep the current value, only update the lease (the value argument must be empty). Fails if the key is absent. */
  ignoreValue?: boolean;
  /** Keep the current lease, only update the value (no `lease` allowed). Fails if the key is absent. */
  ignoreLease?: boolean;
}

/** Options of a delete. */
export interface DeleteOptions extends RangeSelector {
  /** Return the deleted pairs in the result's `prevKvs`. */
  prevKv?: boolean;
}

/** A get, as a value. */
export interface GetOp {
  /** Tells the op kinds apart. */
  readonly kind: "get";
  /** The request as it will be sent. */
  readonly request: RangeRequest;
}
/** A put, as a value. */
export interface PutOp {
  /** Tells the op kinds apart. */
  readonly kind: "put";
  /** The request as it will be sent. */
  readonly request: PutRequest;
}
/** A delete, as a value. */
export interface DeleteOp {
  /** Tells the op kinds apart. */
  readonly kind: "delete";
  /** The request as it will be sent. */
  readonly request: DeleteRangeRequest;
}
/** A nested transaction, as a value. */
export interface TxnOp {
  /** Tells the op kinds apart. */
  readonly kind: "txn";
  /** The nested transaction as it will be sent. */
  readonly request: TxnRequest;
}
/** Any operation a transaction can hold. */
export type Op = GetOp | PutOp | DeleteOp | TxnOp;

const SORT_TARGETS: Record<SortTarget, RangeRequest_SortTarget> = {
  key: RangeRequest_SortTarget.KEY,
  version: RangeRequest_SortTarget.VERSION,
  createRevision: RangeRequest_SortTarget.CREATE,
  modRevision: RangeRequest_SortTarget.MOD,
  value: RangeRequest_SortTarget.VALUE,
};
const SORT_ORDERS: Record<SortOrder, RangeRequest_SortOrder> = {
  none: RangeRequest_SortOrder.NONE,
  ascend: RangeRequest_SortOrder.ASCEND,
  descend: RangeRequest_SortOrder.DESCEND,
};

function nonNegative(v: Int64 | undefined, what: string): bigint {
  return v === undefined ? 0n : toInt64(v, what, 0n);
}

/** Builds a RangeRequest. */
export function rangeRequest(key: Bytes, o: GetOptions | undefined): RangeRequest {
  const { key: k, rangeEnd } = resolveRange(key, o);
  if (o === undefined) return create(RangeRequestSchema, { key: k });
  let sortTarget = RangeRequest_SortTarget.KEY;
  let sortOrder = RangeRequest_SortOrder.NONE;
  if (o.sort !== undefined) {
    const target = o.sort.target ?? "key";
    const order = o.sort.order ?? "ascend";
    const t = typeof target === "string" && Object.hasOwn(SORT_TARGETS, target) ? SORT_TARGETS[target] : undefined;
    const ord = typeof order === "string" && Object.hasOwn(SORT_ORDERS, order) ? SORT_ORDERS[order] : undefined;
    if (t === undefined) throw new InvalidOptionError(`sort.target ${describeValue(target)} is not one of ${Object.keys(SORT_TARGETS).join(", ")}`);
    if (ord === undefined) throw new InvalidOptionError(`sort.order ${describeValue(order)} is not one of ${Object.keys(SORT_ORDERS).join(", ")}`);
    // Keys come back in ascending key order unsorted; asking for that sort makes etcd sort the whole rest of the range.
    if (!(t === RangeRequest_SortTarget.KEY && ord === RangeRequest_SortOrder.ASCEND)) {
      sortTarget = t;
      sortOrder = ord;
    }
  }
  return create(RangeRequestSchema, {
    key: k,
    rangeEnd,
    limit: nonNegative(o.limit, "limit"),
    revision: nonNegative(o.revision, "revision"),
    sortOrder,
    sortTarget,
    serializable: o.serializable === true,
    keysOnly: o.keysOnly === true,
    countOnly: o.countOnly === true,
    minModRevision: nonNegative(o.minModRevision, "minModRevision"),
    maxModRevision: nonNegative(o.maxModRevision, "maxModRevision"),
    minCreateRevision: nonNegative(o.minCreateRevision, "minCreateRevision"),
    maxCreateRevision: nonNegative(o.maxCreateRevision, "maxCreateRevision"),
  });
}

/** Builds a PutRequest. */
export function putRequest(key: Bytes, value: Bytes, o: PutOptions | undefined): PutRequest {
  const k = toBytes(key);
  if (k.length === 0) throw new InvalidKeyError("key is empty; etcd has no empty key");
  const v = toBytes(value, "value");
  if (o === undefined) return create(PutRequestSchema, { key: k, value: v });
  const lease = o.lease === undefined ? 0n : toInt64(o.lease, "lease", 0n);
  if (o.ignoreValue && v.length > 0) throw new InvalidOptionError("ignoreValue: pass an empty value; the stored one is kept");
  if (o.ignoreLease && lease !== 0n) throw new InvalidOptionError("ignoreLease: do not pass a lease; the attached one is kept");
  return create(PutRequestSchema, {
    key: k,
    value: v,
    lease,
    prevKv: o.prevKv === true,
    ignoreValue: o.ignoreValue === true,
    ignoreLease: o.ignoreLease === true,
  });
}

/** Builds a DeleteRangeRequest. */
export function deleteRequest(key: Bytes, o: DeleteOptions | undefined): DeleteRangeRequest {
  const { key: k, rangeEnd } = resolveRange(key, o);
  return create(DeleteRangeRequestSchema, { key: k, rangeEnd, prevKv: o?.prevKv === true });
}

/** Builds a TxnRequest. */
export function txnRequest(compare: readonly Compare[], success: readonly Op[], failure: readonly Op[]): TxnRequest {
  for (const c of compare) {
    if (c.raw.key.length === 0) throw new InvalidKeyError("a comparison has an empty key");
  }
  return create(TxnRequestSchema, {
    compare: compare.map((c) => c.raw),
    success: success.map(requestOp),
    failure: failure.map(requestOp),
  });
}

/** Wraps an op for a TxnRequest. */
export function requestOp(op: Op): RequestOp {
  switch (op.kind) {
    case "get":
      return create(RequestOpSchema, { request: { case: "requestRange", value: op.request } });
    case "put":
      return create(RequestOpSchema, { request: { case: "requestPut", value: op.request } });
    case "delete":
      return create(RequestOpSchema, { request: { case: "requestDeleteRange", value: op.request } });
    case "txn":
      return create(RequestOpSchema, { request: { case: "requestTxn", value: op.request } });
    default:
      throw new InvalidOptionError(`not an op: ${describeValue(op)}`);
  }
}

/**
 * Factories of ops for transactions:
 * `etcd.txn().if(...).then(Op.put("k", "v"), Op.get("other")).commit()`.
 * Each takes the same arguments and options as the KV method of the same name.
 */
export const Op = {
  /** A get of a key or range. */
  get(key: Bytes, options?: GetOptions): GetOp {
    return { kind: "get", request: rangeRequest(key, options) };
  },
  /** A put of one key. */
  put(key: Bytes, value: Bytes, options?: PutOptions): PutOp {
    return { kind: "put", request: putRequest(key, value, options) };
  },
  /** A delete of a key or range. */
  delete(key: Bytes, options?: DeleteOptions): DeleteOp {
    return { kind: "delete", request: deleteRequest(key, options) };
  },
  /** A nested transaction (etcd 3.3+). */
  txn(compare: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): TxnOp {
    return { kind: "txn", request: txnRequest(compare, success, failure) };
  },
};

/**
 * Checks a transaction as etcd will before it runs it, so bad input is
 * refused before anything is sent: at most `maxOps` compares or ops per
 * branch, where a nested transaction gets what its parent level leaves
 * (`maxOps` minus the parent's largest of compares, success and failure),
 * and at every level no empty key, no value with `ignoreValue`, no lease with
 * `ignoreLease`, and only known sort options.
 *
 * @throws TooManyOpsError, InvalidKeyError or InvalidOptionError.
 */
export function checkTxn(req: TxnRequest, maxOps: number): void {
  const n = Math.max(req.compare.length, req.success.length, req.failure.length);
  if (n > maxOps) throw new TooManyOpsError(n, maxOps);
  for (const c of req.compare) if (c.key.length === 0) throw new InvalidKeyError("a comparison has an empty key");
  for (const branch of [req.success, req.failure]) {
    for (const op of branch) checkRequestOp(op, maxOps - n);
  }
}

function checkRequestOp(op: RequestOp, maxOps: number): void {
  const r = op.request;
  switch (r.case) {
    case "requestRange":
      if (r.value.key.length === 0) throw new InvalidKeyError("a get in a transaction has an empty key");
      if (RangeRequest_SortOrder[r.value.sortOrder] === undefined || RangeRequest_SortTarget[r.value.sortTarget] === undefined) {
        throw new InvalidOptionError("a get in a transaction has an unknown sort order or target");
      }
      return;
    case "requestPut":
      if (r.value.key.length === 0) throw new InvalidKeyError("a put in a transaction has an empty key");
      if (r.value.ignoreValue && r.value.value.length > 0) throw new InvalidOptionError("a put in a transaction has ignoreValue and a value");
      if (r.value.ignoreLease && r.value.lease !== 0n) throw new InvalidOptionError("a put in a transaction has ignoreLease and a lease");
      return;
    case "requestDeleteRange":
      if (r.value.key.length === 0) throw new InvalidKeyError("a delete in a transaction has an empty key");
      return;
    case "requestTxn":
      checkTxn(r.value, maxOps);
      return;
    default:
      throw new InvalidOptionError("a transaction holds an op of no known kind");
  }
}
