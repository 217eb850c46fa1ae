/**
 * A namespace: a view of the client in which every key lives under a prefix.
 * @module
 */
import type { RangeRequest } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { Int64 } from "../kv/int64.js";
import type { CallOptions } from "../call-options.js";
import type { Etcd } from "../client.js";
import { runStm, type Stm, type StmOptions, type StmResult } from "../concurrency/stm.js";
import { toBytes, type Bytes } from "../kv/bytes.js";
import type { KeyValue } from "../kv/key-value.js";
import type { CompactOptions, KV } from "../kv/kv.js";
import { deleteRequest, putRequest, rangeRequest, type DeleteOptions, type GetOptions, type Op, type PutOptions } from "../kv/op.js";
import { paginate, type PaginateOptions } from "../kv/paginate.js";
import { DeleteResult, GetResult, PutResult, type CompactResult, type OpResult, type TxnResult } from "../kv/results.js";
import { Txn } from "../kv/txn.js";
import { KeyPrefix } from "./key-prefix.js";
import { Session, type SessionOptions } from "../concurrency/session.js";
import type { Watcher, WatchOptions } from "../watch/watcher.js";
import type { Mirror, MirrorOptions } from "../watch/mirror.js";

/** The key-value methods a {@link Namespace} shares with the client and its {@link KV}. */
export type KVMethods = Pick<KV, "get" | "put" | "delete" | "txn" | "do" | "paginate" | "compact">;

/**
 * The client seen through a key prefix. Get one with `etcd.namespace("app/")`:
 *
 * ```ts
 * const app = etcd.namespace("app/");
 * await app.put("config", "x");              // writes "app/config"
 * (await app.get("", { prefix: true })).kvs; // every key under "app/", as "config", ...
 * ```
 *
 * Every key is prefixed on the way out and un-prefixed on the way in: single
 * keys, ranges (`prefix`, `fromKey`, `rangeEnd`; "all keys" and `fromKey` end
 * at the end of the namespace), transaction comparisons and ops (nested
 * transactions too), and results (`kvs`, `prevKv`, `prevKvs`). Revisions,
 * leases and compaction are cluster-wide and pass through unchanged.
 * Watches, mirrors, and the locks and elections of {@link Namespace.session}
 * see only the namespace's keys, and report them without the prefix.
 * Namespaces nest: `etcd.namespace("app/").namespace("db/")` is `"app/db/"`.
 */
export class Namespace implements KVMethods {
  /** The key translation of this namespace (for other namespaced APIs). */
  readonly keys: KeyPrefix;

  constructor(
    /** The client this namespace views. */
    readonly etcd: Etcd,
    prefix: Bytes | KeyPrefix,
  ) {
    this.keys = prefix instanceof KeyPrefix ? prefix : new KeyPrefix(toBytes(prefix, "namespace prefix"));
  }

  /** The full prefix of this namespace, as bytes. */
  get prefix(): Uint8Array {
    return this.keys.prefix;
  }

  /** A namespace nested in this one: its keys live under this prefix plus `prefix`. */
  namespace(prefix: Bytes): Namespace {
    return new Namespace(this.etcd, this.keys.child(toBytes(prefix, "namespace prefix")));
  }

  /** Reads a key, or a range with `prefix`, `fromKey` or `rangeEnd`, inside the namespace. See {@link KV.get}. */
  async get(key: Bytes, options?: GetOptions & CallOptions): Promise<GetResult> {
    return this.run({ kind: "get", request: rangeRequest(key, options) }, options);
  }

  /** Writes a key of the namespace. See {@link KV.put}. */
  async put(key: Bytes, value: Bytes, options?: PutOptions & CallOptions): Promise<PutResult> {
    return this.run({ kind: "put", request: putRequest(key, value, options) }, options);
  }

  /** Deletes a key or range of the namespace. See {@link KV.delete}. */
  async delete(key: Bytes, options?: DeleteOptions & CallOptions): Promise<DeleteResult> {
    return this.run({ kind: "delete", request: deleteRequest(key, options) }, options);
  }

  /** Starts a transaction whose comparisons and ops name keys of the namespace. See {@link Txn}. */
  txn(): Txn {
    return new Txn((request, options) => this.run({ kind: "txn", request }, options));
  }

  /** Runs one op (built with `Op`, with keys of the namespace). See {@link KV.do}. */
  do(op: Op, options?: CallOptions): Promise<OpResult> {
    return this.run(op, options);
  }

  /** Iterates over a range of the namespace page by page at one revision. See {@link KV.paginate}. */
  paginate(key: Bytes, options?: PaginateOptions): AsyncGenerator<KeyValue, void, undefined> {
    const fetch = async (req: RangeRequest, o: CallOptions | undefined) => (await this.run({ kind: "get", request: req }, o)).raw;
    return paginate(fetch, key, options);
  }

  /** Compaction is cluster-wide: the same as `etcd.compact`. */
  compact(revision: Int64, options?: CompactOptions): Promise<CompactResult> {
    return this.etcd.kv.compact(revision, options);
  }

  /** Runs a software transaction on keys of the namespace. See `etcd.stm`. */
  stm<T>(fn: (stm: Stm) => T | Promise<T>, options?: StmOptions): Promise<StmResult<T>> {
    return runStm(this, fn, options);
  }

  /**
   * Watches a key or range of the namespace; events come back with keys
   * inside the namespace (prefix stripped, `prevKv` too). See `etcd.watch`.
   */
  watch(key: Bytes, options?: WatchOptions): Watcher {
    return this.etcd.watches.watch(key, options, this.keys);
  }

  /** Mirrors every key under `prefix` inside the namespace; the map's keys are inside it. See `etcd.mirror`. */
  mirror(prefix: Bytes, options?: MirrorOptions): Mirror {
    return this.etcd.watches.mirror(prefix, options, { kv: this, keys: this.keys });
  }

  /**
   * Starts a session whose locks and elections live in the namespace (the
   * lease itself is cluster-wide). See `etcd.session`.
   */
  session(options?: SessionOptions): Promise<Session> {
    return Session.create(this.etcd, this, options);
  }

  private run(op: { kind: "get"; request: RangeRequest }, options: CallOptions | undefined): Promise<GetResult>;
  private run(op: Op & { kind: "put" }, options: CallOptions | undefined): Promise<PutResult>;
  private run(op: Op & { kind: "delete" }, options: CallOptions | undefined): Promise<DeleteResult>;
  private run(op: Op & { kind: "txn" }, options: CallOptions | undefined): Promise<TxnResult>;
  private run(op: Op, options: CallOptions | undefined): Promise<OpResult>;
  private async run(op: Op, options: CallOptions | undefined): Promise<OpResult> {
    return this.keys.result(await this.etcd.kv.do(this.keys.op(op), options));
  }
}
