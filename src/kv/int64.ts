/**
 * The one number rule of the API: every integer an option or argument takes
 * (revisions, lease IDs, limits, versions) may be a `bigint` or a `number`
 * that is a safe integer; every integer a result gives back is a `bigint`,
 * because etcd's int64 values exceed 2^53.
 * @module
 */
import { describeValue } from "../describe-value.js";
import { InvalidOptionError } from "../errors.js";

/** An integer as the API accepts it: a `bigint`, or a `number` that is a safe integer. */
export type Int64 = number | bigint;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Converts an {@link Int64} to the `bigint` the wire needs.
 * @throws InvalidOptionError for a fraction, an unsafe number, anything that is not a number, or a value below `min`.
 */
export function toInt64(v: unknown, what: string, min: bigint = INT64_MIN): bigint {
  let n: bigint | undefined;
  if (typeof v === "bigint") n = v;
  else if (typeof v === "number" && Number.isSafeInteger(v)) n = BigInt(v);
  if (n === undefined || n < min || n > INT64_MAX) {
    const range = min === 0n ? "a non-negative integer" : min === 1n ? "a positive integer" : "an integer";
    throw new InvalidOptionError(`${what} must be ${range} (number or bigint), got ${describeValue(v)}`);
  }
  return n;
}
