/**
 * A hand-written decoder for `TxnResponse`: the header, `succeeded`, and one
 * `ResponseOp` per operation (range, put, delete or a nested txn), built as
 * protobuf-es builds them. Like the RangeResponse decoder it returns
 * `undefined` on anything unexpected (the caller falls back to `fromBinary`),
 * including nesting deeper than any real transaction.
 * @module
 */
import type { DeleteRangeResponse, ResponseOp, TxnResponse } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { putResponse } from "./put-response-decoder.js";
import { rangeResponse } from "./range-decoder.js";
import { BAIL, Reader, decodeWhole, keyValue, responseHeader } from "./wire-reader.js";

/** Nested transactions deeper than this go to protobuf-es (etcd itself allows far fewer). */
const MAX_DEPTH = 32;

function deleteRangeResponse(r: Reader, end: number): DeleteRangeResponse {
  const res: DeleteRangeResponse = { $typeName: "etcdserverpb.DeleteRangeResponse", deleted: 0n, prevKvs: [] };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        res.header = responseHeader(r, res.header);
        break;
      case 16:
        res.deleted = r.int64(true);
        break;
      case 26:
        res.prevKvs.push(keyValue(r, r.sub()));
        break;
      default:
        throw BAIL;
    }
  }
  if (r.pos !== end) throw BAIL;
  return res;
}

function responseOp(r: Reader, end: number, depth: number): ResponseOp {
  const op: ResponseOp = { $typeName: "etcdserverpb.ResponseOp", response: { case: undefined } };
  while (r.pos < end) {
    const tag = r.uint32();
    // A oneof set twice (or a message in it repeated, which would merge): leave it to protobuf-es.
    if (op.response.case !== undefined) throw BAIL;
    switch (tag) {
      case 10:
        op.response = { case: "responseRange", value: rangeResponse(r, r.sub()) };
        break;
      case 18:
        op.response = { case: "responsePut", value: putResponse(r, r.sub()) };
        break;
      case 26:
        op.response = { case: "responseDeleteRange", value: deleteRangeResponse(r, r.sub()) };
        break;
      case 34:
        op.response = { case: "responseTxn", value: txnResponse(r, r.sub(), depth + 1) };
        break;
      default:
        throw BAIL;
    }
  }
  if (r.pos !== end) throw BAIL;
  return op;
}

/** `depth` counts the enclosing transactions: none for the whole response. */
function txnResponse(r: Reader, end: number, depth = 0): TxnResponse {
  if (depth > MAX_DEPTH) throw BAIL;
  const res: TxnResponse = { $typeName: "etcdserverpb.TxnResponse", succeeded: false, responses: [] };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10:
        res.header = responseHeader(r, res.header);
        break;
      case 16:
        res.succeeded = r.bool();
        break;
      case 26:
        res.responses.push(responseOp(r, r.sub(), depth));
        break;
      default:
        throw BAIL;
    }
  }
  if (r.pos !== end) throw BAIL;
  return res;
}

/** Decodes a serialized `etcdserverpb.TxnResponse`, or returns undefined to fall back to protobuf-es. */
export function decodeTxnResponse(bytes: Uint8Array): TxnResponse | undefined {
  return decodeWhole(bytes, txnResponse);
}
