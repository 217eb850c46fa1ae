/**
 * A hand-written encoder for `RangeRequest` (every get), in the style of the
 * PutRequest encoder: one allocation, optional headroom for the gRPC prefix,
 * exactly the bytes of protobuf-es's `toBinary`, and `undefined` for a message
 * with unknown fields (the caller then uses `toBinary`).
 * @module
 */
import { bytesFieldSize, int32Size, varint64Size, writeBytesField, writeInt32, writeVarint64 } from "./wire-writer.js";

/** The fields of a RangeRequest (a `RangeRequest` message or its init shape). */
export interface RangeRequestFields {
  key?: Uint8Array;
  rangeEnd?: Uint8Array;
  limit?: bigint;
  revision?: bigint;
  /** `RangeRequest_SortOrder` */
  sortOrder?: number;
  /** `RangeRequest_SortTarget` */
  sortTarget?: number;
  serializable?: boolean;
  keysOnly?: boolean;
  countOnly?: boolean;
  minModRevision?: bigint;
  maxModRevision?: bigint;
  minCreateRevision?: bigint;
  maxCreateRevision?: bigint;
}

// Tags of the int64 fields 3, 4 and 10-13 (varint wire type).
const INT64_FIELDS = [
  [0x18, "limit"],
  [0x20, "revision"],
] as const;
const REVISION_FILTERS = [
  [0x50, "minModRevision"],
  [0x58, "maxModRevision"],
  [0x60, "minCreateRevision"],
  [0x68, "maxCreateRevision"],
] as const;

/**
 * Encodes a RangeRequest, starting `headroom` bytes into the returned buffer.
 * Undefined when the message has unknown fields.
 */
export function encodeRangeRequest(req: RangeRequestFields, headroom = 0): Uint8Array | undefined {
  if ((req as { $unknown?: unknown[] }).$unknown?.length) return undefined;
  const key = req.key;
  const rangeEnd = req.rangeEnd;
  const sortOrder = req.sortOrder ?? 0;
  const sortTarget = req.sortTarget ?? 0;
  let size = 0;
  if (key !== undefined && key.byteLength > 0) size += bytesFieldSize(key.byteLength);
  if (rangeEnd !== undefined && rangeEnd.byteLength > 0) size += bytesFieldSize(rangeEnd.byteLength);
  for (const [, name] of INT64_FIELDS) {
    const v = req[name];
    if (v !== undefined && v !== 0n) size += 1 + varint64Size(v);
  }
  if (sortOrder !== 0) size += 1 + int32Size(sortOrder);
  if (sortTarget !== 0) size += 1 + int32Size(sortTarget);
  if (req.serializable === true) size += 2;
  if (req.keysOnly === true) size += 2;
  if (req.countOnly === true) size += 2;
  for (const [, name] of REVISION_FILTERS) {
    const v = req[name];
    if (v !== undefined && v !== 0n) size += 1 + varint64Size(v);
  }
  const buf = Buffer.allocUnsafe(headroom + size);
  let pos = headroom;
  if (key !== undefined && key.byteLength > 0) pos = writeBytesField(buf, pos, 0x0a, key);
  if (rangeEnd !== undefined && rangeEnd.byteLength > 0) pos = writeBytesField(buf, pos, 0x12, rangeEnd);
  for (const [tag, name] of INT64_FIELDS) {
    const v = req[name];
    if (v !== undefined && v !== 0n) {
      buf[pos++] = tag;
      pos = writeVarint64(buf, pos, v);
    }
  }
  if (sortOrder !== 0) {
    buf[pos++] = 0x28;
    pos = writeInt32(buf, pos, sortOrder);
  }
  if (sortTarget !== 0) {
    buf[pos++] = 0x30;
    pos = writeInt32(buf, pos, sortTarget);
  }
  if (req.serializable === true) {
    buf[pos++] = 0x38;
    buf[pos++] = 1;
  }
  if (req.keysOnly === true) {
    buf[pos++] = 0x40;
    buf[pos++] = 1;
  }
  if (req.countOnly === true) {
    buf[pos++] = 0x48;
    buf[pos++] = 1;
  }
  for (const [tag, name] of REVISION_FILTERS) {
    const v = req[name];
    if (v !== undefined && v !== 0n) {
      buf[pos++] = tag;
      pos = writeVarint64(buf, pos, v);
    }
  }
  return buf;
}
