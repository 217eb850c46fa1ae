/**
 * Parses HTTP/2 frames out of the socket's chunks, as they come: a frame may
 * be split across chunks and a chunk may hold many frames. Payloads that sit
 * inside one chunk are handed out as views (no copy); DATA payloads are
 * handed out piece by piece as they arrive, so a large DATA frame is never
 * buffered. Every length is checked before anything is allocated: a frame
 * longer than the maximum frame size we declared is a connection error before
 * its payload is read, and a non-DATA payload is buffered only up to that size.
 * @module
 */
import { ErrorCode, H2Error, connectionError } from "../errors.js";
import { HeaderBlockAssembler } from "./continuation.js";
import { checkDataFrame, checkDataPadding } from "./data.js";
import {
  FLAG_ACK,
  FLAG_END_HEADERS,
  FLAG_END_STREAM,
  FLAG_PADDED,
  FRAME_CONTINUATION,
  FRAME_DATA,
  FRAME_GOAWAY,
  FRAME_HEADERS,
  FRAME_HEADER_BYTES,
  FRAME_PING,
  FRAME_PRIORITY,
  FRAME_PUSH_PROMISE,
  FRAME_RST_STREAM,
  FRAME_SETTINGS,
  FRAME_WINDOW_UPDATE,
} from "./frame-header.js";
import { checkGoAwayFrame, parseGoAway } from "./goaway.js";
import { headersFragment } from "./headers.js";
import { checkPingFrame } from "./ping.js";
import { checkPriorityFrame, refusePushPromise } from "./priority.js";
import { checkRstStreamFrame, parseRstStream } from "./rst-stream.js";
import { checkSettingsFrame, parseSettings } from "./settings.js";
import { checkWindowUpdateFrame, parseWindowUpdate } from "./window-update.js";

/** What the reader reports, frame by frame. Implemented by the session. */
export interface FrameSink {
  /**
   * A DATA frame begins: `length` is its whole payload (padding included),
   * which counts against flow control before any of it is delivered.
   */
  onDataStart(streamId: number, length: number): void;
  /**
   * A piece of a DATA frame's payload (a view into the socket's chunk, padding
   * excluded). `endOfFrame` on the frame's last piece (possibly empty), with
   * `endStream` when the frame carries END_STREAM.
   */
  onData(streamId: number, chunk: Buffer, endOfFrame: boolean, endStream: boolean): void;
  /** A complete header block (HEADERS plus any CONTINUATION). */
  onHeaders(streamId: number, block: Buffer, endStream: boolean): void;
  onRstStream(streamId: number, code: number): void;
  /** A SETTINGS frame: `[id, value, ...]`, validated. */
  onSettings(entries: number[]): void;
  onSettingsAck(): void;
  /** A PING; `payload` is an 8-byte view. */
  onPing(payload: Buffer, ack: boolean): void;
  onGoAway(lastStreamId: number, code: number, debug: string): void;
  onWindowUpdate(streamId: number, increment: number): void;
  /** An error confined to one stream, found while parsing a frame (the connection goes on). */
  onStreamError(error: H2Error): void;
}

/** Limits the reader enforces. */
export interface FrameReaderLimits {
  /** The SETTINGS_MAX_FRAME_SIZE we declared: no frame may be longer. */
  maxFrameSize: number;
  /** Largest compressed header block accepted across HEADERS + CONTINUATION. */
  maxHeaderBlockBytes: number;
  /** Most CONTINUATION frames in one header block. */
  maxContinuations: number;
  /** The first frame must be a SETTINGS frame (a client reading a server's preface). */
  settingsFirst?: boolean;
}

const PHASE_HEADER = 0;
const PHASE_PAYLOAD = 1;
const PHASE_DATA = 2;

const EMPTY = Buffer.alloc(0);

/** The server's connection preface is a SETTINGS frame; anything else is not an HTTP/2 server. */
function checkPreface(src: Buffer, o: number): void {
  if (src.toString("latin1", o, o + 5) === "HTTP/") {
    connectionError(ErrorCode.PROTOCOL_ERROR, "the server answered with HTTP/1 (not an HTTP/2 server, or TLS expected)");
  }
  if (src[o + 3] !== FRAME_SETTINGS || (src[o + 4]! & FLAG_ACK) !== 0) {
    connectionError(ErrorCode.PROTOCOL_ERROR, `the server's first frame is of type ${src[o + 3]}, not SETTINGS (not an HTTP/2 server?)`);
  }
}

/** Incremental HTTP/2 frame parser. Throws {@link H2Error} (a connection error) on a protocol violation. */
export class FrameReader {
  private phase = PHASE_HEADER;
  /** Header bytes collected when a header spans chunks. */
  private readonly head = Buffer.alloc(FRAME_HEADER_BYTES);
  private headFill = 0;
  // The frame being read.
  private length = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  /** A non-DATA payload spanning chunks, and how much of it has arrived. */
  private payload: Buffer | undefined;
  private payloadFill = 0;
  // DATA streaming: bytes of the frame left, and of those how many are padding.
  private dataLeft = 0;
  private padLeft = 0;
  private needPadLength = false;
  private readonly block: HeaderBlockAssembler;
  /** Set once the reader failed or was stopped; it ignores everything after. */
  private stopped = false;
  /** Frames parsed so far. */
  frames = 0;

  constructor(
    private readonly sink: FrameSink,
    private readonly limits: FrameReaderLimits,
  ) {
    this.block = new HeaderBlockAssembler(limits.maxHeaderBlockBytes, limits.maxContinuations);
  }

  /** Stops parsing; later chunks are ignored. */
  stop(): void {
    this.stopped = true;
  }

  /** True while a frame (or header block) has been started but not finished. */
  get midFrame(): boolean {
    return this.phase !== PHASE_HEADER || this.headFill > 0 || this.block.streamId !== 0;
  }

  /** Parses one chunk from the socket. Throws {@link H2Error} on a connection error (and stops). */
  push(chunk: Buffer): void {
    if (this.stopped) return;
    try {
      this.parse(chunk);
    } catch (e) {
      this.stopped = true;
      throw e;
    }
  }

  private parse(chunk: Buffer): void {
    const end = chunk.length;
    let pos = 0;
    while (pos < end && !this.stopped) {
      if (this.phase === PHASE_HEADER) {
        let src: Buffer;
        let o: number;
        if (this.headFill === 0 && end - pos >= FRAME_HEADER_BYTES) {
          src = chunk;
          o = pos;
          pos += FRAME_HEADER_BYTES;
        } else {
          const take = Math.min(FRAME_HEADER_BYTES - this.headFill, end - pos);
          chunk.copy(this.head, this.headFill, pos, pos + take);
          this.headFill += take;
          pos += take;
          if (this.headFill < FRAME_HEADER_BYTES) return;
          this.headFill = 0;
          src = this.head;
          o = 0;
        }
        if (this.frames === 0 && this.limits.settingsFirst === true) checkPreface(src, o);
        this.beginFrame((src[o]! << 16) | (src[o + 1]! << 8) | src[o + 2]!, src[o + 3]!, src[o + 4]!, ((src[o + 5]! & 0x7f) << 24) | (src[o + 6]! << 16) | (src[o + 7]! << 8) | src[o + 8]!);
        continue;
      }
      if (this.phase === PHASE_DATA) {
        pos = this.readData(chunk, pos, end);
        continue;
      }
      // A non-DATA payload: a view when it lies inside this chunk, else collected into one buffer.
      const need = this.length - this.payloadFill;
      if (this.payloadFill === 0 && end - pos >= need) {
        const p = chunk.subarray(pos, pos + need);
        pos += need;
        this.phase = PHASE_HEADER;
        this.frame(p);
        continue;
      }
      this.payload ??= Buffer.allocUnsafe(this.length);
      const take = Math.min(need, end - pos);
      chunk.copy(this.payload, this.payloadFill, pos, pos + take);
      this.payloadFill += take;
      pos += take;
      if (this.payloadFill === this.length) {
        const p = this.payload;
        this.payload = undefined;
        this.payloadFill = 0;
        this.phase = PHASE_HEADER;
        this.frame(p);
      }
    }
  }

  /** Checks a frame header before its payload; every length limit is enforced here. */
  private beginFrame(length: number, type: number, flags: number, streamId: number): void {
    this.frames++;
    if (length > this.limits.maxFrameSize) {
      connectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} bytes (type ${type}) exceeds the maximum frame size of ${this.limits.maxFrameSize}`);
    }
    if (this.block.streamId !== 0 && type !== FRAME_CONTINUATION) {
      connectionError(ErrorCode.PROTOCOL_ERROR, `frame of type ${type} inside a header block of stream ${this.block.streamId}`);
    }
    this.length = length;
    this.type = type;
    this.flags = flags;
    this.streamId = streamId;
    switch (type) {
      case FRAME_DATA:
        checkDataFrame(length, flags, streamId);
        this.sink.onDataStart(streamId, length);
        this.dataLeft = length;
        this.padLeft = 0;
        this.needPadLength = (flags & FLAG_PADDED) !== 0;
        if (length === 0) {
          this.phase = PHASE_HEADER;
          this.sink.onData(streamId, EMPTY, true, (flags & FLAG_END_STREAM) !== 0);
        } else {
          this.phase = PHASE_DATA;
        }
        return;
      case FRAME_HEADERS:
        if (streamId === 0) connectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS frame on stream 0");
        break;
      case FRAME_CONTINUATION:
        this.block.checkContinuation(streamId, length);
        break;
      case FRAME_SETTINGS:
        checkSettingsFrame(length, flags, streamId);
        break;
      case FRAME_PING:
        checkPingFrame(length, streamId);
        break;
      case FRAME_GOAWAY:
        checkGoAwayFrame(length, streamId);
        break;
      case FRAME_WINDOW_UPDATE:
        checkWindowUpdateFrame(length);
        break;
      case FRAME_RST_STREAM:
        checkRstStreamFrame(length, streamId);
        break;
      case FRAME_PUSH_PROMISE:
        refusePushPromise();
        break;
      case FRAME_PRIORITY:
        if (streamId === 0) connectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY frame on stream 0");
        break;
    }
    if (length === 0) {
      this.phase = PHASE_HEADER;
      this.frame(EMPTY);
    } else {
      this.phase = PHASE_PAYLOAD;
    }
  }

  /** Delivers DATA payload bytes from `chunk[pos, end)`; returns the new position. */
  private readData(chunk: Buffer, pos: number, end: number): number {
    if (this.needPadLength) {
      this.needPadLength = false;
      const pad = chunk[pos]!;
      checkDataPadding(pad, this.length);
      this.padLeft = pad;
      this.dataLeft--;
      pos++;
      if (this.dataLeft === 0) return this.endData(pos);
    }
    const content = this.dataLeft - this.padLeft;
    const take = Math.min(content, end - pos);
    if (take > 0) {
      this.dataLeft -= take;
      const last = this.dataLeft === 0;
      if (last) this.phase = PHASE_HEADER;
      this.sink.onData(this.streamId, chunk.subarray(pos, pos + take), last, last && (this.flags & FLAG_END_STREAM) !== 0);
      pos += take;
      if (last) return pos;
    }
    if (this.dataLeft > this.padLeft || pos >= end) return pos;
    // Only padding left: skip it.
    const skip = Math.min(this.dataLeft, end - pos);
    this.dataLeft -= skip;
    this.padLeft -= skip;
    pos += skip;
    if (this.dataLeft === 0) return this.endData(pos);
    return pos;
  }

  /** A DATA frame whose last payload byte was padding (or the pad length): report its end. */
  private endData(pos: number): number {
    this.phase = PHASE_HEADER;
    this.sink.onData(this.streamId, EMPTY, true, (this.flags & FLAG_END_STREAM) !== 0);
    return pos;
  }

  /** A complete non-DATA frame. */
  private frame(p: Buffer): void {
    const { type, flags, streamId } = this;
    try {
      switch (type) {
        case FRAME_HEADERS: {
          const fragment = headersFragment(p, flags, streamId);
          const endStream = (flags & FLAG_END_STREAM) !== 0;
          if ((flags & FLAG_END_HEADERS) !== 0) this.sink.onHeaders(streamId, fragment, endStream);
          else this.block.open(streamId, fragment, endStream);
          return;
        }
        case FRAME_CONTINUATION: {
          const last = (flags & FLAG_END_HEADERS) !== 0;
          const block = this.block.add(p, false, last);
          if (block !== undefined) this.sink.onHeaders(streamId, block, this.block.endStream);
          return;
        }
        case FRAME_SETTINGS:
          if ((flags & FLAG_ACK) !== 0) this.sink.onSettingsAck();
          else this.sink.onSettings(parseSettings(p));
          return;
        case FRAME_PING:
          this.sink.onPing(p, (flags & FLAG_ACK) !== 0);
          return;
        case FRAME_GOAWAY: {
          const g = parseGoAway(p);
          this.sink.onGoAway(g.lastStreamId, g.code, g.debug);
          return;
        }
        case FRAME_WINDOW_UPDATE:
          this.sink.onWindowUpdate(streamId, parseWindowUpdate(p, streamId));
          return;
        case FRAME_RST_STREAM:
          this.sink.onRstStream(streamId, parseRstStream(p));
          return;
        case FRAME_PRIORITY:
          checkPriorityFrame(p.length, streamId);
          return;
        default:
          // Unknown frame types are ignored (RFC 9113 §4.1).
          return;
      }
    } catch (e) {
      if (e instanceof H2Error && e.streamId !== 0) {
        this.sink.onStreamError(e);
        return;
      }
      throw e;
    }
  }
}
