/**
 * Key-value operations: get, put, delete, compact, transactions and paging.
 * @module
 */
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { CompactionRequestSchema, KV as KVService, type RangeRequest, type TxnRequest } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { Bytes } from "./bytes.js";
import { toConnectOptions, type CallOptions } from "../call-options.js";
import { toInt64, type Int64 } from "./int64.js";
import type { KeyValue } from "./key-value.js";
import { checkTxn, deleteRequest, putRequest, rangeRequest, type DeleteOptions, type GetOptions, type Op, type PutOptions } from "./op.js";
import { paginate, type PaginateOptions } from "./paginate.js";
import { CompactResult, DeleteResult, GetResult, PutResult, TxnResult, type OpResult } from "./results.js";
import { Txn } from "./txn.js";

/** Options of a compaction. */
export interface CompactOptions extends CallOptions {
  /** Wait until the compacted revisions are physically removed from the backend. */
  physical?: boolean;
}

/** Limits the KV layer checks before sending. */
export interface KVLimits {
  /**
   * Most compares, or ops per branch, in one transaction (etcd's `--max-txn-ops`,
   * default 128); a nested transaction gets what its enclosing levels leave.
   */
  maxTxnOps: number;
}

/** The key-value API. `Etcd` exposes these same methods; use this class to hold just the KV part. */
export class KV {
  constructor(
    /** The typed connect client of the KV service, for anything not wrapped here. */
    readonly raw: Client<typeof KVService>,
    private readonly limits: KVLimits,
  ) {}

  /**
   * Reads a key, or a range with `prefix`, `fromKey` or `rangeEnd`.
   *
   * ```ts
   * const name = (await etcd.get("user/1/name")).text;
   * const all = (await etcd.get("user/", { prefix: true })).kvs;
   * ```
   */
  async get(key: Bytes, options?: GetOptions & CallOptions): Promise<GetResult> {
    return new GetResult(await this.raw.range(rangeRequest(key, options), toConnectOptions(options)));
  }

  /** Writes a key. Not retried once it may have reached the server, unless `retryWrites`. */
  async put(key: Bytes, value: Bytes, options?: PutOptions & CallOptions): Promise<PutResult> {
    return new PutResult(await this.raw.put(putRequest(key, value, options), toConnectOptions(options)));
  }

  /** Deletes a key, or a range with `prefix`, `fromKey` or `rangeEnd`. */
  async delete(key: Bytes, options?: DeleteOptions & CallOptions): Promise<DeleteResult> {
    return new DeleteResult(await this.raw.deleteRange(deleteRequest(key, options), toConnectOptions(options)));
  }

  /** Discards history before `revision`; older revisions can no longer be read or watched. */
  async compact(revision: Int64, options?: CompactOptions): Promise<CompactResult> {
    const rev = toInt64(revision, "compact revision", 1n);
    return new CompactResult(await this.raw.compact(create(CompactionRequestSchema, { revision: rev, physical: options?.physical === true }), toConnectOptions(options)));
  }

  /** Starts a transaction: `txn().if(...).then(...).else(...).commit()`. */
  txn(): Txn {
    return new Txn((req, options) => this.commit(req, options));
  }

  /** Runs one op on its own (the KV methods do this). */
  async do(op: Op, options?: CallOptions): Promise<OpResult> {
    const o = toConnectOptions(options);
    switch (op.kind) {
      case "get":
        return new GetResult(await this.raw.range(op.request, o));
      case "put":
        return new PutResult(await this.raw.put(op.request, o));
      case "delete":
        return new DeleteResult(await this.raw.deleteRange(op.request, o));
      case "txn":
        return this.commit(op.request, options);
    }
  }

  /**
   * Iterates over a range of any size page by page, at one revision:
   *
   * ```ts
   * for await (const kv of etcd.paginate("logs/", { prefix: true, pageSize: 500 })) use(kv);
   * ```
   */
  paginate(key: Bytes, options?: PaginateOptions): AsyncGenerator<KeyValue, void, undefined> {
    return paginate((req: RangeRequest, o) => this.raw.range(req, toConnectOptions(o)), key, options);
  }

  private async commit(req: TxnRequest, options: CallOptions | undefined): Promise<TxnResult> {
    checkTxn(req, this.limits.maxTxnOps);
    return new TxnResult(await this.raw.txn(req, toConnectOptions(options)));
  }
}
