/**
 * A hand-written decoder for `PutResponse` (a header and, with `prevKv`, the
 * previous key-value), in the style of the RangeResponse decoder: it builds
 * the same objects as protobuf-es, and returns `undefined` on anything it does
 * not expect so that the caller falls back to `fromBinary`.
 * @module
 */
import type { PutResponse } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { BAIL, Reader, decodeWhole, keyValue, responseHeader } from "./wire-reader.js";

/** Decodes the PutResponse in `r` up to `end` (also used inside a TxnResponse). Throws BAIL. */
export function putResponse(r: Reader, end: number): PutResponse {
  const res: PutResponse = { $typeName: "etcdserverpb.PutResponse" };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        res.header = responseHeader(r, res.header);
        break;
      case 18:
        if (res.prevKv !== undefined) throw BAIL;
        res.prevKv = keyValue(r, r.sub());
        break;
      default:
        throw BAIL;
    }
  }
  if (r.pos !== end) throw BAIL;
  return res;
}

/** Decodes a serialized `etcdserverpb.PutResponse`, or returns undefined to fall back to protobuf-es. */
export function decodePutResponse(bytes: Uint8Array): PutResponse | undefined {
  return decodeWhole(bytes, putResponse);
}
