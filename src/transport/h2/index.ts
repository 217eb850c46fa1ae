/**
 * The HTTP/2 client engine under the gRPC transport: {@link H2Session} over a
 * connected socket, {@link H2Stream} per request. The built-in transport's
 * `Connection` runs one session per endpoint (`node:http2` remains only under
 * connect-node's stock transport, the cross-check).
 * @module
 */
export { H2Session, type H2SessionEvents, type H2SessionOptions, type H2SessionState, type H2SessionStats, type RequestOptions } from "./session.js";
export { H2Stream, type StreamCloseReason, type StreamHandler } from "./stream.js";
export { ErrorCode, H2Error, errorCodeName } from "./errors.js";
