/**
 * gRPC header conventions: the `grpc-status` / `grpc-message` trailers, the
 * `grpc-timeout` request header, and the code for a response that carries
 * no gRPC status at all.
 * @module
 */
import { Code } from "@connectrpc/connect";

/**
 * Decodes a `grpc-message` value. gRPC percent-encodes bytes outside printable
 * ASCII; a malformed escape is kept as written rather than losing the message.
 */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Encodes a timeout for the `grpc-timeout` header: at most 8 digits and a unit,
 * choosing the finest unit that fits so the server's deadline matches ours.
 */
export function encodeGrpcTimeout(ms: number): string {
  const m = Math.max(0, Math.ceil(ms));
  if (m < 1e8) return `${m}m`;
  const s = Math.ceil(m / 1000);
  if (s < 1e8) return `${s}S`;
  const min = Math.ceil(s / 60);
  if (min < 1e8) return `${min}M`;
  return `${Math.min(99_999_999, Math.ceil(min / 60))}H`;
}

/**
 * The code for a response without `grpc-status`, from its HTTP status, as the
 * gRPC spec maps them (proxies and non-gRPC servers answer this way).
 */
export function codeFromHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

/** Parses a `grpc-status` value; anything that is not a known code is `Unknown`. */
export function parseGrpcStatus(value: string | string[] | undefined): Code | undefined {
  if (value === undefined) return undefined;
  const n = Number(Array.isArray(value) ? value[0] : value);
  return Number.isInteger(n) && n >= 0 && n <= 16 ? (n as Code) : Code.Unknown;
}

/**
 * For a response without a gRPC status from a peer that is not a gRPC server
 * at all (a web server, a port that belongs to something else): what it
 * answered, as text; else undefined. A proxy's "try again" answers (429,
 * 502-504) are not counted: they map to Unavailable and are retried.
 */
export function notGrpcAnswer(status: number, contentType: string | undefined): string | undefined {
  if (contentType?.startsWith("application/grpc") === true) return undefined;
  if (codeFromHttpStatus(status) === Code.Unavailable) return undefined;
  return `not a gRPC server: HTTP status ${status}, content-type ${contentType === undefined || contentType === "" ? "(none)" : contentType}`;
}
