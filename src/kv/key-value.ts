/**
 * A stored key-value pair with the accessors callers reach for: the key and
 * value as text, bytes or JSON, and its revisions.
 * @module
 */
import type { KeyValue as RawKeyValue } from "../../gen/etcd/api/mvccpb/kv_pb.js";
import { toText } from "./bytes.js";

/**
 * One key-value pair from a range, a watch event or a `prevKv`. Wraps the raw
 * protobuf message (`raw`) without copying; text is decoded on access.
 */
export class KeyValue {
  constructor(
    /** The message as received, with every field etcd sent. */
    readonly raw: RawKeyValue,
  ) {}

  /** The key as bytes. */
  get key(): Uint8Array {
    return this.raw.key;
  }

  /** The value as bytes (empty with `keysOnly`). */
  get value(): Uint8Array {
    return this.raw.value;
  }

  /** The key decoded as UTF-8. */
  get keyText(): string {
    return toText(this.raw.key);
  }

  /** The value decoded as UTF-8. */
  get text(): string {
    return toText(this.raw.value);
  }

  /** The value parsed as JSON. @throws SyntaxError when it is not JSON. */
  json<T = unknown>(): T {
    return JSON.parse(this.text) as T;
  }

  /** Revision of the last creation of this key. */
  get createRevision(): bigint {
    return this.raw.createRevision;
  }

  /** Revision of the last change to this key. */
  get modRevision(): bigint {
    return this.raw.modRevision;
  }

  /** Number of changes since the key was (re)created; deletion resets it to 0. */
  get version(): bigint {
    return this.raw.version;
  }

  /** ID of the lease attached to the key, or 0n for none. */
  get lease(): bigint {
    return this.raw.lease;
  }
}

/** Wraps a list of raw pairs. */
export function wrapAll(raw: RawKeyValue[]): KeyValue[] {
  const out = new Array<KeyValue>(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = new KeyValue(raw[i]!);
  return out;
}
