/**
 * Message encoding and decoding for the built-in transport: protobuf-es by
 * default, with a registry of hand-written fast paths by message type name:
 * the hot KV messages (Put and Range requests; Put, Range and Txn responses,
 * the `RangeResponse` being the one that can hold thousands of messages) and
 * the watch codecs (the messages that come by the thousand). A fast path
 * returns `undefined` for anything it does not handle, and the reflective
 * codec takes over.
 * @module
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { encodePutRequest, type PutRequestFields } from "../kv/put-request-encoder.js";
import { decodePutResponse } from "../kv/put-response-decoder.js";
import { decodeRangeResponse } from "../kv/range-decoder.js";
import { encodeRangeRequest, type RangeRequestFields } from "../kv/range-request-encoder.js";
import { decodeTxnResponse } from "../kv/txn-response-decoder.js";
import { decodeWatchResponse, encodeWatchRequest } from "../watch/watch-codec.js";

/** Decodes bytes of one message type, or returns `undefined` to fall back to protobuf-es. */
export type FastDecoder = (bytes: Uint8Array) => object | undefined;
/** Encodes a message of one type (given as a message or its init shape), or returns `undefined` to fall back to protobuf-es. */
export type FastEncoder = (message: object) => Uint8Array | undefined;

/** True when every named field is absent or a bigint (an init shape may carry a number; protobuf-es converts those). */
function bigintsOnly(m: object, names: readonly string[]): boolean {
  for (const n of names) {
    const v = (m as Record<string, unknown>)[n];
    if (v !== undefined && typeof v !== "bigint") return false;
  }
  return true;
}

const RANGE_INT64 = ["limit", "revision", "minModRevision", "maxModRevision", "minCreateRevision", "maxCreateRevision"] as const;

const decoders = new Map<string, FastDecoder>([
  ["etcdserverpb.RangeResponse", decodeRangeResponse],
  ["etcdserverpb.PutResponse", decodePutResponse],
  ["etcdserverpb.TxnResponse", decodeTxnResponse],
  ["etcdserverpb.WatchResponse", decodeWatchResponse],
]);
const encoders = new Map<string, FastEncoder>([
  ["etcdserverpb.PutRequest", (m) => (bigintsOnly(m, ["lease"]) ? encodePutRequest(m as PutRequestFields) : undefined)],
  ["etcdserverpb.RangeRequest", (m) => (bigintsOnly(m, RANGE_INT64) ? encodeRangeRequest(m as RangeRequestFields) : undefined)],
  ["etcdserverpb.WatchRequest", encodeWatchRequest as FastEncoder],
]);

/** Registers a fast decoder for the message type `typeName` (e.g. `etcdserverpb.RangeResponse`). */
export function registerDecoder(typeName: string, decoder: FastDecoder): void {
  decoders.set(typeName, decoder);
}

/** Registers a fast encoder for the message type `typeName`. */
export function registerEncoder(typeName: string, encoder: FastEncoder): void {
  encoders.set(typeName, encoder);
}

/** Decodes one message, through its fast decoder when one is registered and handles the bytes. */
export function decodeMessage<O extends DescMessage>(schema: O, bytes: Uint8Array): MessageShape<O> {
  const fast = decoders.get(schema.typeName);
  if (fast !== undefined) {
    const m = fast(bytes);
    if (m !== undefined) return m as MessageShape<O>;
  }
  return fromBinary(schema, bytes);
}

/** Encodes one message (given as a message or its init shape). */
export function encodeMessage<I extends DescMessage>(schema: I, input: MessageInitShape<I>): Uint8Array {
  const fast = encoders.get(schema.typeName);
  if (fast !== undefined) {
    // Fast encoders read the init shape directly: no message object is built.
    const bytes = fast(input as object);
    if (bytes !== undefined) return bytes;
  }
  return toBinary(schema, create(schema, input));
}
