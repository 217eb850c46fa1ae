/**
 * PRIORITY frames (RFC 9113 §6.3) are deprecated and carry nothing a client
 * needs; they are checked and ignored. PUSH_PROMISE is refused: this client
 * disables server push, so one arriving is a connection error.
 * @module
 */
import { ErrorCode, H2Error, connectionError } from "../errors.js";

/** Checks a PRIORITY frame header; a wrong length is an error on that stream. */
export function checkPriorityFrame(length: number, streamId: number): void {
  if (streamId === 0) connectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY frame on stream 0");
  if (length !== 5) throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, `PRIORITY payload of ${length} bytes`, streamId);
}

/** A PUSH_PROMISE frame: refused, since SETTINGS_ENABLE_PUSH is 0. */
export function refusePushPromise(): never {
  connectionError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE received with push disabled");
}
