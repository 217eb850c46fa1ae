/**
 * The HTTP/2 client engine under the gRPC transport: {@link H2Session} over a
 * connected socket, {@link H2Stream} per request. Not yet used by the client;
 * the transport moves onto it in a later step.
 * @module
 */
export { H2Session, type H2SessionEvents, type H2SessionOptions, type H2SessionState, type H2SessionStats, type RequestOptions } from "./session.js";
export { H2Stream, type StreamCloseReason, type StreamHandler } from "./stream.js";
export { ErrorCode, H2Error, errorCodeName } from "./errors.js";
