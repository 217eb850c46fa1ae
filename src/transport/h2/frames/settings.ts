/**
 * SETTINGS frames (RFC 9113 §6.5): parameters each side declares for what it
 * receives. Parsing validates every value the RFC constrains; unknown
 * parameters are ignored, as required.
 * @module
 */
import { ErrorCode, connectionError } from "../errors.js";
import { FLAG_ACK, FRAME_HEADER_BYTES, FRAME_SETTINGS, MAX_MAX_FRAME_SIZE, MIN_MAX_FRAME_SIZE, writeFrameHeader, writeUint32 } from "./frame-header.js";
import type { FrameWriter } from "./frame-writer.js";

export const SETTINGS_HEADER_TABLE_SIZE = 0x1;
export const SETTINGS_ENABLE_PUSH = 0x2;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
export const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
export const SETTINGS_MAX_FRAME_SIZE = 0x5;
export const SETTINGS_MAX_HEADER_LIST_SIZE = 0x6;

/** Largest flow-control window (2^31 - 1). */
export const MAX_WINDOW_SIZE = 0x7fffffff;
/** The window every stream and the connection start with. */
export const DEFAULT_WINDOW_SIZE = 65535;
/** HPACK dynamic table size both sides start with. */
export const DEFAULT_HEADER_TABLE_SIZE = 4096;

/** The parameters a peer declared (RFC defaults until its SETTINGS says otherwise). */
export interface PeerSettings {
  headerTableSize: number;
  enablePush: boolean;
  /** Infinity until the peer sets a limit. */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  /** Infinity until the peer sets a limit. */
  maxHeaderListSize: number;
}

/** RFC 9113 defaults. */
export function defaultSettings(): PeerSettings {
  return {
    headerTableSize: DEFAULT_HEADER_TABLE_SIZE,
    enablePush: true,
    maxConcurrentStreams: Infinity,
    initialWindowSize: DEFAULT_WINDOW_SIZE,
    maxFrameSize: MIN_MAX_FRAME_SIZE,
    maxHeaderListSize: Infinity,
  };
}

/** Checks a SETTINGS frame header. */
export function checkSettingsFrame(length: number, flags: number, streamId: number): void {
  if (streamId !== 0) connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS frame on stream ${streamId}`);
  if ((flags & FLAG_ACK) !== 0) {
    if (length !== 0) connectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS acknowledgement with a payload");
  } else if (length % 6 !== 0) {
    connectionError(ErrorCode.FRAME_SIZE_ERROR, `SETTINGS payload of ${length} bytes is not a multiple of 6`);
  }
}

/**
 * Parses a SETTINGS payload into `[id, value, id, value, ...]`, validated;
 * unknown identifiers are dropped.
 */
export function parseSettings(payload: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 6 <= payload.length; i += 6) {
    const id = (payload[i]! << 8) | payload[i + 1]!;
    const value = payload[i + 2]! * 0x1000000 + ((payload[i + 3]! << 16) | (payload[i + 4]! << 8) | payload[i + 5]!);
    switch (id) {
      case SETTINGS_ENABLE_PUSH:
        if (value > 1) connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_ENABLE_PUSH of ${value}`);
        break;
      case SETTINGS_INITIAL_WINDOW_SIZE:
        if (value > MAX_WINDOW_SIZE) connectionError(ErrorCode.FLOW_CONTROL_ERROR, `SETTINGS_INITIAL_WINDOW_SIZE of ${value}`);
        break;
      case SETTINGS_MAX_FRAME_SIZE:
        if (value < MIN_MAX_FRAME_SIZE || value > MAX_MAX_FRAME_SIZE) connectionError(ErrorCode.PROTOCOL_ERROR, `SETTINGS_MAX_FRAME_SIZE of ${value}`);
        break;
      case SETTINGS_HEADER_TABLE_SIZE:
      case SETTINGS_MAX_CONCURRENT_STREAMS:
      case SETTINGS_MAX_HEADER_LIST_SIZE:
        break;
      default:
        continue;
    }
    out.push(id, value);
  }
  return out;
}

/** Applies parsed settings to `s`. */
export function applySettings(s: PeerSettings, entries: readonly number[]): void {
  for (let i = 0; i < entries.length; i += 2) {
    const value = entries[i + 1]!;
    switch (entries[i]) {
      case SETTINGS_HEADER_TABLE_SIZE:
        s.headerTableSize = value;
        break;
      case SETTINGS_ENABLE_PUSH:
        s.enablePush = value === 1;
        break;
      case SETTINGS_MAX_CONCURRENT_STREAMS:
        s.maxConcurrentStreams = value;
        break;
      case SETTINGS_INITIAL_WINDOW_SIZE:
        s.initialWindowSize = value;
        break;
      case SETTINGS_MAX_FRAME_SIZE:
        s.maxFrameSize = value;
        break;
      case SETTINGS_MAX_HEADER_LIST_SIZE:
        s.maxHeaderListSize = value;
        break;
    }
  }
}

/** Writes a SETTINGS frame with `[id, value, ...]`. */
export function writeSettings(w: FrameWriter, entries: readonly number[]): void {
  const n = entries.length / 2;
  const o = w.reserve(FRAME_HEADER_BYTES + 6 * n);
  writeFrameHeader(w.buf, o, 6 * n, FRAME_SETTINGS, 0, 0);
  let p = o + FRAME_HEADER_BYTES;
  for (let i = 0; i < entries.length; i += 2) {
    w.buf[p] = entries[i]! >>> 8;
    w.buf[p + 1] = entries[i]! & 0xff;
    writeUint32(w.buf, p + 2, entries[i + 1]!);
    p += 6;
  }
}

/** Writes a SETTINGS acknowledgement. */
export function writeSettingsAck(w: FrameWriter): void {
  const o = w.reserve(FRAME_HEADER_BYTES);
  writeFrameHeader(w.buf, o, 0, FRAME_SETTINGS, FLAG_ACK, 0);
}
