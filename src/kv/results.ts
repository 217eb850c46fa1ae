/**
 * What KV calls and transaction ops return: the raw response plus accessors.
 * @module
 */
import type {
  CompactionResponse,
  DeleteRangeResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  TxnResponse,
} from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { Code } from "@connectrpc/connect";
import { EtcdError } from "../errors.js";
import { KeyValue, wrapAll } from "./key-value.js";

const NO_HEADER_REVISION = 0n;

/** Result of a get (a Range request). */
export class GetResult {
  /** Discriminates the results of a transaction's ops. */
  readonly kind = "get" as const;
  private wrapped: KeyValue[] | undefined;

  constructor(
    /** The response as received. */
    readonly raw: RangeResponse,
  ) {}

  /** Cluster, member and revision the answer came from. */
  get header(): ResponseHeader | undefined {
    return this.raw.header;
  }

  /** Store revision the read was served at. */
  get revision(): bigint {
    return this.raw.header?.revision ?? NO_HEADER_REVISION;
  }

  /** The pairs found, in the requested order (empty with `countOnly`). */
  get kvs(): KeyValue[] {
    return (this.wrapped ??= wrapAll(this.raw.kvs));
  }

  /** True when `limit` cut the result short: more keys are in the range. */
  get more(): boolean {
    return this.raw.more;
  }

  /** Number of keys in the range, regardless of `limit`. */
  get count(): bigint {
    return this.raw.count;
  }

  /** The first pair, or undefined when nothing matched. */
  get first(): KeyValue | undefined {
    const raw = this.raw.kvs[0];
    return raw === undefined ? undefined : this.kvs[0];
  }

  /** The first pair's value as UTF-8 text, or undefined when nothing matched. */
  get text(): string | undefined {
    return this.first?.text;
  }

  /** The first pair's value as bytes, or undefined when nothing matched. */
  get bytes(): Uint8Array | undefined {
    return this.raw.kvs[0]?.value;
  }

  /** The first pair's value parsed as JSON, or undefined when nothing matched. */
  json<T = unknown>(): T | undefined {
    return this.first?.json<T>();
  }
}

/** Result of a put. */
export class PutResult {
  /** Discriminates the results of a transaction's ops. */
  readonly kind = "put" as const;

  constructor(
    /** The response as received. */
    readonly raw: PutResponse,
  ) {}

  /** Cluster, member and revision of the write. */
  get header(): ResponseHeader | undefined {
    return this.raw.header;
  }

  /** Store revision created by this put. */
  get revision(): bigint {
    return this.raw.header?.revision ?? NO_HEADER_REVISION;
  }

  /** The pair before the put, with `prevKv: true`, when the key existed. */
  get prevKv(): KeyValue | undefined {
    return this.raw.prevKv === undefined ? undefined : new KeyValue(this.raw.prevKv);
  }
}

/** Result of a delete (a DeleteRange request). */
export class DeleteResult {
  /** Discriminates the results of a transaction's ops. */
  readonly kind = "delete" as const;

  constructor(
    /** The response as received. */
    readonly raw: DeleteRangeResponse,
  ) {}

  /** Cluster, member and revision of the write. */
  get header(): ResponseHeader | undefined {
    return this.raw.header;
  }

  /** Store revision after the delete. */
  get revision(): bigint {
    return this.raw.header?.revision ?? NO_HEADER_REVISION;
  }

  /** How many keys were deleted. */
  get deleted(): bigint {
    return this.raw.deleted;
  }

  /** The deleted pairs, with `prevKv: true`. */
  get prevKvs(): KeyValue[] {
    return wrapAll(this.raw.prevKvs);
  }
}

/** Result of a compaction. */
export class CompactResult {
  constructor(
    /** The response as received. */
    readonly raw: CompactionResponse,
  ) {}

  /** Cluster, member and revision of the answer. */
  get header(): ResponseHeader | undefined {
    return this.raw.header;
  }

  /** Store revision when the compaction was done (compaction creates no revision). */
  get revision(): bigint {
    return this.raw.header?.revision ?? NO_HEADER_REVISION;
  }
}

/** The result of one op of a transaction. */
export type OpResult = GetResult | PutResult | DeleteResult | TxnResult;

/** Result of a transaction. */
export class TxnResult {
  /** Discriminates the results of a transaction's ops. */
  readonly kind = "txn" as const;
  private wrapped: OpResult[] | undefined;

  constructor(
    /** The response as received. */
    readonly raw: TxnResponse,
  ) {}

  /** Cluster, member and revision of the transaction. */
  get header(): ResponseHeader | undefined {
    return this.raw.header;
  }

  /** Store revision after the transaction (unchanged when it wrote nothing). */
  get revision(): bigint {
    return this.raw.header?.revision ?? NO_HEADER_REVISION;
  }

  /** True when every comparison held and the `then` ops ran; false when the `else` ops ran. */
  get succeeded(): boolean {
    return this.raw.succeeded;
  }

  /** One result per op of the branch that ran, in order. */
  get results(): OpResult[] {
    return (this.wrapped ??= this.raw.responses.map(opResult));
  }
}

function opResult(r: ResponseOp): OpResult {
  const res = r.response;
  switch (res.case) {
    case "responseRange":
      return new GetResult(res.value);
    case "responsePut":
      return new PutResult(res.value);
    case "responseDeleteRange":
      return new DeleteResult(res.value);
    case "responseTxn":
      return new TxnResult(res.value);
    default:
      throw new EtcdError("transaction response holds an op of unknown kind", Code.Internal);
  }
}
