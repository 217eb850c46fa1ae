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
import { resolveRange, type RangeSelector } from "./key-range.js";

/** What to sort a range by. */
export type SortTarget = "key" | "version" | "createRevision" | "modRevision" | "value";
/** Sort direction; `none` leaves etcd's natural key order. */
export type SortOrder = "none" | "ascend" | "descend";

/** Options of a get (a Range request). */
export interface GetOptions extends RangeSelector {
  /** At most this many pairs (0 = no limit). `more` tells when there were more. */
  limit?: number | bigint;
  /** Read the store as it was at this revision (0 = now). Fails when compacted. */
  revision?: bigint;
  /** Sort order of the result. */
  sort?: { target?: SortTarget; order?: SortOrder };
  /** Serve from the member's local state without a quorum read: faster, possibly stale. */
  serializable?: boolean;
  /** Return keys and metadata without values. */
  keysOnly?: boolean;
  /** Return only the count of keys in the range. */
  countOnly?: boolean;
  /** Only pairs last modified at or after this revision. */
  minModRevision?: bigint;
  /** Only pairs last modified at or before this revision. */
  maxModRevision?: bigint;
  /** Only pairs created at or after this revision. */
  minCreateRevision?: bigint;
  /** Only pairs created at or before this revision. */
  maxCreateRevision?: bigint;
}

/** Options of a put. */
export interface PutOptions {
  /** Attach the key to this lease; the key is deleted when the lease expires. */
  lease?: bigint;
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
  readonly kind: "get";
  readonly request: RangeRequest;
}
/** A put, as a value. */
export interface PutOp {
  readonly kind: "put";
  readonly request: PutRequest;
}
/** A delete, as a value. */
export interface DeleteOp {
  readonly kind: "delete";
  readonly request: DeleteRangeRequest;
}
/** A nested transaction, as a value. */
export interface TxnOp {
  readonly kind: "txn";
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

function nonNegative(v: number | bigint | undefined, what: string): bigint {
  if (v === undefined) return 0n;
  const n = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : NaN;
  if (typeof n !== "bigint" || n < 0n) throw new InvalidOptionError(`${what} must be a non-negative integer, got ${String(v)}`);
  return n;
}

/** Builds a RangeRequest. */
export function rangeRequest(key: Bytes, o: GetOptions | undefined): RangeRequest {
  const { key: k, rangeEnd } = resolveRange(key, o);
  if (o === undefined) return create(RangeRequestSchema, { key: k });
  let sortTarget = RangeRequest_SortTarget.KEY;
  let sortOrder = RangeRequest_SortOrder.NONE;
  if (o.sort !== undefined) {
    const t = SORT_TARGETS[o.sort.target ?? "key"];
    const ord = SORT_ORDERS[o.sort.order ?? "ascend"];
    if (t === undefined || ord === undefined) throw new InvalidOptionError(`invalid sort ${JSON.stringify(o.sort)}`);
    sortTarget = t;
    sortOrder = ord;
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
  if (o.ignoreValue && v.length > 0) throw new InvalidOptionError("ignoreValue: pass an empty value; the stored one is kept");
  if (o.ignoreLease && o.lease !== undefined && o.lease !== 0n) {
    throw new InvalidOptionError("ignoreLease: do not pass a lease; the attached one is kept");
  }
  return create(PutRequestSchema, {
    key: k,
    value: v,
    lease: o.lease ?? 0n,
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
      throw new InvalidOptionError(`not an op: ${JSON.stringify(op)}`);
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

/** Throws when any level of a transaction holds more than `maxOps` compares or ops in a branch. */
export function checkTxnSize(req: TxnRequest, maxOps: number): void {
  const n = Math.max(req.compare.length, req.success.length, req.failure.length);
  if (n > maxOps) throw new TooManyOpsError(n, maxOps);
  for (const branch of [req.success, req.failure]) {
    for (const op of branch) {
      if (op.request.case === "requestTxn") checkTxnSize(op.request.value, maxOps);
    }
  }
}

