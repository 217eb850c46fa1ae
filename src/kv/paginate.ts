/**
 * Walks a large range page by page at one fixed revision, so the whole range
 * is never in memory and the walk sees one consistent snapshot.
 * @module
 */
import { create } from "@bufbuild/protobuf";
import { RangeRequestSchema, type RangeRequest, type RangeResponse } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { CallOptions } from "../call-options.js";
import { InvalidOptionError } from "../errors.js";
import { KeyValue } from "./key-value.js";
import { rangeRequest, type GetOptions } from "./op.js";

/** Options of `paginate`. */
export interface PaginateOptions
  extends Pick<GetOptions, "prefix" | "fromKey" | "rangeEnd" | "revision" | "keysOnly" | "serializable">,
    CallOptions {
  /** Pairs fetched per request (default 1000). */
  pageSize?: number;
}

/**
 * Yields every pair in the range in key order. The first page pins the
 * revision (unless `revision` is given); later pages read at that revision,
 * so keys written during the walk are not seen and none is seen twice. A
 * compaction past that revision ends the walk with a `CompactedError`.
 * `timeoutMs` and `signal` apply to each page request.
 */
export async function* paginate(
  fetch: (req: RangeRequest, options: CallOptions | undefined) => Promise<RangeResponse>,
  key: string | Uint8Array,
  options: PaginateOptions = {},
): AsyncGenerator<KeyValue, void, undefined> {
  const pageSize = options.pageSize ?? 1000;
  if (!Number.isSafeInteger(pageSize) || pageSize <= 0) {
    throw new InvalidOptionError(`pageSize must be a positive integer, got ${pageSize}`);
  }
  // No sort: etcd returns keys in ascending order anyway, and a sort would make it read the whole rest of the range per page.
  const first = rangeRequest(key, { ...options, limit: pageSize });
  let req = first;
  let revision = first.revision;
  for (;;) {
    const res = await fetch(req, options);
    if (revision === 0n) revision = res.header?.revision ?? 0n;
    for (const kv of res.kvs) yield new KeyValue(kv);
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || last === undefined) return;
    // Next page starts just after the last key: append a zero byte.
    const next = new Uint8Array(last.key.length + 1);
    next.set(last.key);
    req = create(RangeRequestSchema, { ...first, key: next, revision });
  }
}
