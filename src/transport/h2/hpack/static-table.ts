/**
 * The HPACK static table (RFC 7541 Appendix A): 61 fixed entries, indices 1
 * to 61, with lookups by name and by name + value for the encoder.
 * @module
 */

/** Static entries as `[name, value]`, index 1 first. */
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** Number of static entries; dynamic indices start after it. */
export const STATIC_TABLE_LENGTH = STATIC_TABLE.length;

const byName = new Map<string, number>();
const byNameValue = new Map<string, Map<string, number>>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!byName.has(name)) byName.set(name, i + 1);
  let values = byNameValue.get(name);
  if (values === undefined) byNameValue.set(name, (values = new Map()));
  if (!values.has(value)) values.set(value, i + 1);
});

/** The static index of an entry with this name and value, or 0. */
export function staticIndexOf(name: string, value: string): number {
  return byNameValue.get(name)?.get(value) ?? 0;
}

/** The lowest static index of an entry with this name, or 0. */
export function staticNameIndexOf(name: string): number {
  return byName.get(name) ?? 0;
}
