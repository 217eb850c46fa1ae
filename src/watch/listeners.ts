/**
 * Calling user listeners from inside the watch machinery.
 * @module
 */
import type { EventEmitter } from "node:events";

/**
 * Emits `event` so that a listener that throws cannot break the caller: the
 * stream's read loop, or a mirror halfway through a batch. The exception is
 * rethrown on its own tick, where it is an uncaught exception, as a throwing
 * listener on a socket's `data` event would be.
 */
export function emitSafely<T extends Record<keyof T, unknown[]>, K extends keyof T & (string | symbol)>(
  emitter: EventEmitter<T>,
  event: K,
  ...args: T[K]
): void {
  try {
    (emitter as unknown as EventEmitter).emit(event, ...(args as unknown[]));
  } catch (e) {
    process.nextTick(() => {
      throw e;
    });
  }
}
