/**
 * Key ranges as etcd encodes them: `[key, rangeEnd)`, where an empty
 * `rangeEnd` means the single key and `"\0"` means every key from `key` on.
 * @module
 */
import { EMPTY, toBytes, type Bytes } from "./bytes.js";
import { InvalidKeyError, InvalidOptionError } from "../errors.js";

/** A single zero byte: as a range end it means "to the end of the keyspace". */
export const NUL = new Uint8Array([0]);

/** How a key argument is widened into a range. At most one of these may be set. */
export interface RangeSelector {
  /** Every key that starts with the given key. An empty key with `prefix` selects all keys. */
  prefix?: boolean;
  /** Every key greater than or equal to the given key. */
  fromKey?: boolean;
  /** Every key in `[key, rangeEnd)`. */
  rangeEnd?: Bytes;
}

/**
 * The smallest key greater than every key that starts with `prefix`: the
 * prefix with trailing 0xff bytes dropped and its last byte incremented. A
 * prefix of only 0xff bytes (or an empty one) has no such key, so the range
 * runs to the end of the keyspace (`"\0"`).
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! < 0xff) {
      // A fresh copy: Buffer#slice would return a view and change the caller's key.
      const end = new Uint8Array(i + 1);
      end.set(prefix.subarray(0, i + 1));
      end[i] = prefix[i]! + 1;
      return end;
    }
  }
  return NUL;
}

/**
 * Resolves a key and a {@link RangeSelector} into the wire pair `key`/`rangeEnd`.
 * An empty key is refused unless it is widened into a range.
 *
 * @throws InvalidKeyError for an empty single key.
 * @throws InvalidOptionError when more than one of prefix, fromKey and rangeEnd is set.
 */
export function resolveRange(input: Bytes, sel: RangeSelector | undefined): { key: Uint8Array; rangeEnd: Uint8Array } {
  const key = toBytes(input);
  if (sel === undefined || (!sel.prefix && !sel.fromKey && sel.rangeEnd === undefined)) {
    if (key.length === 0) throw new InvalidKeyError("key is empty; etcd has no empty key (use prefix: true with an empty key for all keys)");
    return { key, rangeEnd: EMPTY };
  }
  const set = (sel.prefix ? 1 : 0) + (sel.fromKey ? 1 : 0) + (sel.rangeEnd !== undefined ? 1 : 0);
  if (set > 1) throw new InvalidOptionError("choose one of prefix, fromKey and rangeEnd");
  if (sel.rangeEnd !== undefined) {
    const end = toBytes(sel.rangeEnd, "rangeEnd");
    if (key.length === 0) throw new InvalidKeyError("key is empty; a range needs a start key");
    return { key, rangeEnd: end };
  }
  // With an empty key, "\0" is the first possible key: all keys (prefix) or all keys from the start (fromKey).
  if (key.length === 0) return { key: NUL, rangeEnd: NUL };
  return { key, rangeEnd: sel.prefix ? prefixEnd(key) : NUL };
}
