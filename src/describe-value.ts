/**
 * How an error message shows a value the caller passed. Such a value can be
 * anything, and `String(v)` or `JSON.stringify(v)` can themselves throw (an
 * object whose `toString` is not a function, a bigint inside an object, a
 * cycle): the message must never turn a typed error into a `TypeError`.
 * @module
 */

/** A short description of `v` that never throws: strings quoted, bigints with `n`, objects by kind. */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}...` : v);
    case "bigint":
      return `${v}n`;
    case "number":
    case "boolean":
    case "undefined":
      return String(v);
    case "symbol":
      return "a symbol";
    case "function":
      return "a function";
    default:
      if (v === null) return "null";
      if (Array.isArray(v)) return "an array";
      return `an object (${Object.prototype.toString.call(v)})`;
  }
}
