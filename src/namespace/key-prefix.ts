/**
 * Key translation for namespaces, in one place: user keys and ranges get a
 * prefix on the way to the server, server keys lose it on the way back. Every
 * namespaced API (KV, transactions, and later watches, mirrors, leases' keys,
 * locks and elections) goes through a {@link KeyPrefix}.
 * @module
 */
import type {
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  TxnRequest,
  TxnResponse,
} from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { KeyValue } from "../../gen/etcd/api/mvccpb/kv_pb.js";
import { EMPTY } from "../kv/bytes.js";
import { prefixEnd } from "../kv/key-range.js";
import type { Op } from "../kv/op.js";
import type { OpResult } from "../kv/results.js";

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function isNul(end: Uint8Array): boolean {
  return end.length === 1 && end[0] === 0;
}

/**
 * A key prefix and the translations it implies.
 *
 * - A key `k` is stored as `prefix + k`.
 * - A range `[key, end)` becomes `[prefix + key, prefix + end)`; an end of
 *   `"\0"` (to the end of the keyspace, which is how "all keys" and `fromKey`
 *   are encoded) becomes the end of the prefix, so a namespaced "all keys"
 *   covers the namespace and nothing else. An empty end (one key) stays empty.
 * - Keys coming back (`kvs`, `prevKv`, nested transaction results) lose the prefix.
 *
 * Requests are copied, never changed (an `Op` may be reused elsewhere);
 * responses are fresh from the wire and are translated in place.
 */
export class KeyPrefix {
  /** The end of the prefix's range: the smallest key above every key with the prefix (`"\0"` when none). */
  readonly end: Uint8Array;

  constructor(
    /** The prefix as bytes; may be empty (no translation). */
    readonly prefix: Uint8Array,
  ) {
    this.end = prefixEnd(prefix);
  }

  /** The prefix of a namespace nested inside this one. */
  child(sub: Uint8Array): KeyPrefix {
    return new KeyPrefix(concat(this.prefix, sub));
  }

  /** A user key as the server stores it. */
  key(key: Uint8Array): Uint8Array {
    return this.prefix.length === 0 ? key : concat(this.prefix, key);
  }

  /** A range in user keys as a range in server keys (see the class description). */
  range(
    key: Uint8Array,
    rangeEnd: Uint8Array,
  ): {
    /** The prefixed start key. */
    key: Uint8Array;
    /** The prefixed end, kept inside the namespace. */
    rangeEnd: Uint8Array;
  } {
    if (rangeEnd.length === 0) return { key: this.key(key), rangeEnd: EMPTY };
    return { key: this.key(key), rangeEnd: isNul(rangeEnd) ? this.end : this.key(rangeEnd) };
  }

  /** A server key as the user sees it: without the prefix. Keys outside the prefix come back unchanged. */
  strip(key: Uint8Array): Uint8Array {
    const p = this.prefix;
    if (p.length === 0 || key.length < p.length) return key;
    for (let i = 0; i < p.length; i++) if (key[i] !== p[i]) return key;
    return key.subarray(p.length);
  }

  // Requests, user keys -> server keys (copies).

  /** A range request with server keys. */
  rangeRequest(req: RangeRequest): RangeRequest {
    return { ...req, ...this.range(req.key, req.rangeEnd) };
  }

  /** A put request with the server key. */
  putRequest(req: PutRequest): PutRequest {
    return { ...req, key: this.key(req.key) };
  }

  /** A delete request with server keys. */
  deleteRequest(req: DeleteRangeRequest): DeleteRangeRequest {
    return { ...req, ...this.range(req.key, req.rangeEnd) };
  }

  /** A comparison with server keys. */
  compare(c: Compare): Compare {
    return { ...c, ...this.range(c.key, c.rangeEnd) };
  }

  /** A transaction with server keys in every comparison and op, nested transactions included. */
  txnRequest(req: TxnRequest): TxnRequest {
    return {
      ...req,
      compare: req.compare.map((c) => this.compare(c)),
      success: req.success.map((o) => this.requestOp(o)),
      failure: req.failure.map((o) => this.requestOp(o)),
    };
  }

  /** An op with server keys. */
  op(op: Op): Op {
    switch (op.kind) {
      case "get":
        return { kind: "get", request: this.rangeRequest(op.request) };
      case "put":
        return { kind: "put", request: this.putRequest(op.request) };
      case "delete":
        return { kind: "delete", request: this.deleteRequest(op.request) };
      case "txn":
        return { kind: "txn", request: this.txnRequest(op.request) };
    }
  }

  private requestOp(o: RequestOp): RequestOp {
    const r = o.request;
    switch (r.case) {
      case "requestRange":
        return { ...o, request: { case: r.case, value: this.rangeRequest(r.value) } };
      case "requestPut":
        return { ...o, request: { case: r.case, value: this.putRequest(r.value) } };
      case "requestDeleteRange":
        return { ...o, request: { case: r.case, value: this.deleteRequest(r.value) } };
      case "requestTxn":
        return { ...o, request: { case: r.case, value: this.txnRequest(r.value) } };
      default:
        return o;
    }
  }

  // Responses, server keys -> user keys (in place; each response must pass here once).

  /** Strips the prefix from a pair's key. */
  keyValue<T extends KeyValue | undefined>(kv: T): T {
    if (kv !== undefined) kv.key = this.strip(kv.key);
    return kv;
  }

  /** Strips the prefix from every key of a range response. */
  rangeResponse(res: RangeResponse): RangeResponse {
    for (const kv of res.kvs) kv.key = this.strip(kv.key);
    return res;
  }

  /** Strips the prefix from a put's `prevKv`. */
  putResponse(res: PutResponse): PutResponse {
    this.keyValue(res.prevKv);
    return res;
  }

  /** Strips the prefix from a delete's `prevKvs`. */
  deleteResponse(res: DeleteRangeResponse): DeleteRangeResponse {
    for (const kv of res.prevKvs) kv.key = this.strip(kv.key);
    return res;
  }

  /** Strips the prefix from every key in a transaction's results, nested ones included. */
  txnResponse(res: TxnResponse): TxnResponse {
    for (const r of res.responses) {
      const x = r.response;
      switch (x.case) {
        case "responseRange":
          this.rangeResponse(x.value);
          break;
        case "responsePut":
          this.putResponse(x.value);
          break;
        case "responseDeleteRange":
          this.deleteResponse(x.value);
          break;
        case "responseTxn":
          this.txnResponse(x.value);
          break;
      }
    }
    return res;
  }

  /** Strips the prefix from the keys of an op's result (before anything read them). */
  result<R extends OpResult>(r: R): R {
    switch (r.kind) {
      case "get":
        this.rangeResponse(r.raw);
        break;
      case "put":
        this.putResponse(r.raw);
        break;
      case "delete":
        this.deleteResponse(r.raw);
        break;
      case "txn":
        this.txnResponse(r.raw);
        break;
    }
    return r;
  }
}
