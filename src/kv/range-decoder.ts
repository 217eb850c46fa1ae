/**
 * A hand-written decoder for `RangeResponse`, the one response that can hold
 * thousands of messages. protobuf-es decodes by walking descriptors field by
 * field; this decoder knows the layout of RangeResponse, ResponseHeader and
 * KeyValue and builds the same plain message objects directly. It is an exact
 * drop-in: on anything it does not expect (an unknown field, a wire type that
 * does not match, a future field) it returns `undefined` and the caller falls
 * back to `fromBinary`, so unknown fields are still preserved there.
 * @module
 */
import type { RangeResponse } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { BAIL, Reader, decodeWhole, keyValue, responseHeader } from "./wire-reader.js";

/** Decodes the RangeResponse in `r` up to `end` (also used inside a TxnResponse). Throws BAIL. */
export function rangeResponse(r: Reader, end: number): RangeResponse {
  const res: RangeResponse = { $typeName: "etcdserverpb.RangeResponse", kvs: [], more: false, count: 0n };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        res.header = responseHeader(r, res.header);
        break;
      case 18:
        res.kvs.push(keyValue(r, r.sub()));
        break;
      case 24:
        res.more = r.bool();
        break;
      case 32:
        res.count = r.int64(true);
        break;
      default:
        throw BAIL;
    }
  }
  if (r.pos !== end) throw BAIL;
  return res;
}

/**
 * Decodes a serialized `etcdserverpb.RangeResponse`, or returns undefined when
 * the bytes hold anything the fast path does not handle.
 */
export function decodeRangeResponse(bytes: Uint8Array): RangeResponse | undefined {
  return decodeWhole(bytes, rangeResponse);
}
