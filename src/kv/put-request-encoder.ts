/**
 * A hand-written encoder for `PutRequest`, the hottest request: it sizes the
 * message, allocates once (optionally with room in front for the 5-byte gRPC
 * prefix, so the frame needs no second copy) and writes exactly the bytes
 * protobuf-es's `toBinary` writes. A message carrying unknown fields returns
 * `undefined`: the caller then uses `toBinary`, which keeps them.
 * @module
 */
import { bytesFieldSize, varint64Size, writeBytesField, writeVarint64 } from "./wire-writer.js";

/** The fields of a PutRequest (a `PutRequest` message or its init shape). */
export interface PutRequestFields {
  key?: Uint8Array;
  value?: Uint8Array;
  lease?: bigint;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

/**
 * Encodes a PutRequest, starting `headroom` bytes into the returned buffer
 * (left for the caller, e.g. the gRPC prefix). Undefined when the message
 * has unknown fields.
 */
export function encodePutRequest(req: PutRequestFields, headroom = 0): Uint8Array | undefined {
  if ((req as { $unknown?: unknown[] }).$unknown?.length) return undefined;
  const key = req.key;
  const value = req.value;
  const lease = req.lease ?? 0n;
  let size = 0;
  if (key !== undefined && key.byteLength > 0) size += bytesFieldSize(key.byteLength);
  if (value !== undefined && value.byteLength > 0) size += bytesFieldSize(value.byteLength);
  if (lease !== 0n) size += 1 + varint64Size(lease);
  if (req.prevKv === true) size += 2;
  if (req.ignoreValue === true) size += 2;
  if (req.ignoreLease === true) size += 2;
  const buf = Buffer.allocUnsafe(headroom + size);
  let pos = headroom;
  if (key !== undefined && key.byteLength > 0) pos = writeBytesField(buf, pos, 0x0a, key);
  if (value !== undefined && value.byteLength > 0) pos = writeBytesField(buf, pos, 0x12, value);
  if (lease !== 0n) {
    buf[pos++] = 0x18;
    pos = writeVarint64(buf, pos, lease);
  }
  if (req.prevKv === true) {
    buf[pos++] = 0x20;
    buf[pos++] = 1;
  }
  if (req.ignoreValue === true) {
    buf[pos++] = 0x28;
    buf[pos++] = 1;
  }
  if (req.ignoreLease === true) {
    buf[pos++] = 0x30;
    buf[pos++] = 1;
  }
  return buf;
}
