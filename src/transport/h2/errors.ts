/**
 * HTTP/2 error codes (RFC 9113 §7) and the error the framing and HPACK layers
 * throw. An {@link H2Error} never reaches users: the session turns a connection
 * error into an `EndpointUnavailableError` with reason `"protocol"` (the
 * `H2Error` as its cause) and a stream error into that stream's close reason.
 * @module
 */

/** HTTP/2 error codes, as carried by RST_STREAM and GOAWAY. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

const NAMES = Object.fromEntries(Object.entries(ErrorCode).map(([k, v]) => [v, k])) as Record<number, string>;

/** The name of an HTTP/2 error code (`"CANCEL"`), or `"0x2a"` for one the RFC does not define. */
export function errorCodeName(code: number): string {
  return NAMES[code] ?? `0x${code.toString(16)}`;
}

/**
 * A violation of HTTP/2 or HPACK by the peer (or our own input to the codec).
 * `streamId` 0 means a connection error: the whole connection must go.
 */
export class H2Error extends Error {
  constructor(
    /** The HTTP/2 error code to send in GOAWAY or RST_STREAM. */
    readonly code: number,
    message: string,
    /** The stream the error is confined to, or 0 for a connection error. */
    readonly streamId = 0,
  ) {
    super(`${errorCodeName(code)}: ${message}`);
    this.name = "H2Error";
  }
}

/** Throws a connection error. */
export function connectionError(code: number, message: string): never {
  throw new H2Error(code, message, 0);
}
