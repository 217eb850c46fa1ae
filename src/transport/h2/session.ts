/**
 * An HTTP/2 client connection over an already connected socket (h2c with
 * prior knowledge over TCP, or TLS with ALPN `h2`), built for gRPC: requests
 * are plain {@link H2Stream} objects with a handler, frames are coalesced into
 * one socket write per batch, and every failure surfaces as an
 * `EndpointUnavailableError` on the session and a close reason on each stream
 * that says whether the request may have been processed.
 *
 * Writes: frames are encoded into a batch as calls are made; the batch is
 * written from a `process.nextTick` scheduled by a microtask, so it runs after
 * every promise continuation pending at that point has issued its requests
 * (many requests per `write(2)` under load).
 *
 * Reads: frames are parsed from the socket's chunks as they arrive; DATA is
 * handed to streams as views into those chunks. The connection's receive
 * window is replenished as data arrives, a stream's as its consumer takes the
 * data (unless paused), so a slow reader holds up only its own stream, and
 * memory is bounded by the stream windows.
 * @module
 */
import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { EndpointUnavailableError, RequestTooLargeError, type EndpointFailureReason } from "../../errors.js";
import { ErrorCode, H2Error, errorCodeName } from "./errors.js";
import { ReceiveWindow, growSendWindow } from "./flow-control.js";
import { writeData, writeDataGathered } from "./frames/data.js";
import { MAX_STREAM_ID, MIN_MAX_FRAME_SIZE, readUint32 } from "./frames/frame-header.js";
import { FrameReader, type FrameSink } from "./frames/frame-reader.js";
import { FrameWriter } from "./frames/frame-writer.js";
import { writeGoAway } from "./frames/goaway.js";
import { writeHeaders } from "./frames/headers.js";
import { writePing } from "./frames/ping.js";
import { writeRstStream } from "./frames/rst-stream.js";
import {
  DEFAULT_HEADER_TABLE_SIZE,
  DEFAULT_WINDOW_SIZE,
  SETTINGS_ENABLE_PUSH,
  SETTINGS_HEADER_TABLE_SIZE,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SETTINGS_MAX_FRAME_SIZE,
  SETTINGS_MAX_HEADER_LIST_SIZE,
  applySettings,
  defaultSettings,
  writeSettings,
  writeSettingsAck,
  type PeerSettings,
} from "./frames/settings.js";
import { writeWindowUpdate } from "./frames/window-update.js";
import { HpackDecoder } from "./hpack/decoder.js";
import { HpackEncoder, validateFields } from "./hpack/encoder.js";
import { H2Stream, type StreamCloseReason, type StreamHandler } from "./stream.js";
import { STREAM_CLOSED, STREAM_QUEUED, STREAM_OPEN, afterLocalEnd, afterRemoteEnd, remoteOpen } from "./stream-state.js";

/** Options of an {@link H2Session}. */
export interface H2SessionOptions {
  /** `host:port` named in errors (default: the socket's remote address). */
  address?: string;
  /** Our receive window per stream, in bytes (SETTINGS_INITIAL_WINDOW_SIZE; default 1 MiB). Bounds the memory a paused stream can hold. */
  streamWindowBytes?: number;
  /** Our receive window for the connection (default 16 MiB). */
  connectionWindowBytes?: number;
  /** Largest response header list accepted (SETTINGS_MAX_HEADER_LIST_SIZE; default 64 KiB). */
  maxHeaderListBytes?: number;
  /** Most CONTINUATION frames accepted in one header block (default 64). */
  maxContinuationFrames?: number;
  /** HPACK table we let the server use (SETTINGS_HEADER_TABLE_SIZE; default 4096). */
  headerTableBytes?: number;
  /** Largest frame we accept (SETTINGS_MAX_FRAME_SIZE; default 16384). */
  maxFrameBytes?: number;
  /** Fail when the server's SETTINGS has not arrived within this time (0: no limit; default 0, the dialer's deadline applies). */
  handshakeTimeoutMs?: number;
  /** Request body bytes a stream buffers before `write` returns false (default 64 KiB). */
  streamHighWaterBytes?: number;
  /** Fail the connection when this much is waiting to be written because the server is not reading (default 64 MiB). */
  maxWriteBufferBytes?: number;
  /** Largest stream ID used (default 2^31 - 1; lower it in tests to reach exhaustion). */
  maxStreamId?: number;
  /** Emit `exhausting` when fewer than this many stream IDs remain (default 1000). */
  streamIdReserve?: number;
  /** Header names sent as never-indexed literals. */
  sensitiveHeaders?: Iterable<string>;
}

/** Per-request options of {@link H2Session.request}. */
export interface RequestOptions {
  /** Fields for this request only (e.g. `grpc-timeout`, `token`), after the shared ones. */
  extraHeaders?: readonly string[];
  /** Request body to send right after the headers. */
  body?: Uint8Array;
  /** End the request after `body` (default: true when `body` is given). */
  end?: boolean;
}

/**
 * Where a session is: `connecting` until the server's SETTINGS arrives (requests
 * wait), `ready`, `draining` once no new request can start here (GOAWAY
 * received, stream IDs used up, or {@link H2Session.close}): open streams finish,
 * new ones are refused. `closed` at the end.
 */
export type H2SessionState = "connecting" | "ready" | "draining" | "closed";

/** Numbers for the debug view. */
export interface H2SessionStats {
  state: H2SessionState;
  /** Streams opened and not yet closed. */
  openStreams: number;
  /** Streams waiting for a slot (MAX_CONCURRENT_STREAMS) or for the handshake. */
  queuedStreams: number;
  /** Streams waiting for the server's flow-control window. */
  blockedStreams: number;
  streamsOpened: number;
  nextStreamId: number;
  /** What the server still lets us send on the connection. */
  sendWindow: number;
  /** What we still let the server send on the connection. */
  receiveWindow: number;
  peerMaxConcurrentStreams: number;
  peerInitialWindowSize: number;
  peerMaxFrameSize: number;
  /** Round-trip time of the last answered PING, ms. */
  rttMs: number | undefined;
  /** `performance.now()` when our last PING was written. */
  lastPingSentAt: number | undefined;
  /** PINGs from the server we answered. */
  pingsAnswered: number;
  bytesSent: number;
  bytesReceived: number;
  /** Socket writes (each carries a batch of frames). */
  writes: number;
  framesReceived: number;
  goAway: { code: string; lastStreamId: number; debug: string } | undefined;
}

/** Events of an {@link H2Session}. */
export interface H2SessionEvents {
  /** The server's SETTINGS arrived: requests flow. */
  ready: [];
  /** The server sent GOAWAY: open new requests on another connection. Streams above `lastStreamId` were closed as `"refused"`. */
  goaway: [code: number, lastStreamId: number, debug: string];
  /** Few stream IDs remain: open a replacement connection now; this one drains once they are gone. */
  exhausting: [];
  /** The session is closed. `error` is undefined after a clean close. */
  close: [error: EndpointUnavailableError | undefined];
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const EMPTY = new Uint8Array(0);
/** Most bytes of queued small writes copied into one DATA frame. */
const MAX_GATHER_BYTES = 64 * 1024;
const STATUS = ":status";

interface PendingPing {
  sentAt: number;
  resolve(rttMs: number): void;
  reject(e: unknown): void;
}

/** An HTTP/2 client session. See the module documentation. */
export class H2Session extends EventEmitter<H2SessionEvents> implements FrameSink {
  /** Where the session is. */
  state: H2SessionState = "connecting";
  /** Resolves once the server's SETTINGS arrived; rejects with the error that closed the session first. */
  readonly ready: Promise<void>;
  /** The error that closed the session (undefined while open, or after a clean close). */
  error: EndpointUnavailableError | undefined;
  /** The last GOAWAY received. */
  goAway: { code: number; lastStreamId: number; debug: string } | undefined;
  /** @internal Counts batches written; a stream was sent if its HEADERS' batch is below it. */
  flushEpoch = 0;
  /** Round-trip time of the last answered PING, in ms. */
  rttMs: number | undefined;
  /** `performance.now()` when our last PING was written. */
  lastPingSentAt: number | undefined;
  readonly address: string;

  private readonly reader: FrameReader;
  private readonly writer = new FrameWriter();
  private readonly encoder: HpackEncoder;
  private readonly decoder: HpackDecoder;
  private readonly peer: PeerSettings = defaultSettings();
  private readonly streams = new Map<number, H2Stream>();
  private readonly queue: H2Stream[] = [];
  private queueHead = 0;
  private active = 0;
  private blockedStreams: H2Stream[] = [];
  private nextStreamId = 1;
  private lastStreamId = 0;
  private sendWindow = DEFAULT_WINDOW_SIZE;
  private readonly recvWindow: ReceiveWindow;
  private readonly streamWindow: number;
  private readonly highWater: number;
  private readonly maxWriteBuffer: number;
  private readonly maxStreamId: number;
  private readonly streamIdReserve: number;
  private exhaustingSignalled = false;
  private idsExhausted = false;
  private goAwayError: EndpointUnavailableError | undefined;
  /** The stream the DATA frame being read belongs to (undefined: discard it). */
  private dataStream: H2Stream | undefined;
  private flushScheduled = false;
  private socketBlocked = false;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private readySettled = false;
  private resolveReady!: () => void;
  private rejectReady!: (e: unknown) => void;
  private readonly pings = new Map<number, PendingPing>();
  private pingSeq = 0;
  private readonly validated = new WeakSet<readonly string[]>();
  private closing: Promise<void> | undefined;
  private ending = false;
  // Stats.
  private streamsOpened = 0;
  private pingsAnswered = 0;
  private bytesSent = 0;
  private bytesReceived = 0;
  private writes = 0;

  constructor(
    /** A connected socket (net.Socket, or a TLSSocket that negotiated or will negotiate ALPN `h2`). */
    readonly socket: Duplex,
    options: H2SessionOptions = {},
  ) {
    super();
    const net = socket as Duplex & { remoteAddress?: string; remotePort?: number; setNoDelay?: (v: boolean) => void };
    this.address = options.address ?? `${net.remoteAddress ?? "?"}:${net.remotePort ?? "?"}`;
    this.streamWindow = options.streamWindowBytes ?? 1 << 20;
    const connWindow = Math.max(DEFAULT_WINDOW_SIZE, options.connectionWindowBytes ?? 16 << 20);
    const maxHeaderList = options.maxHeaderListBytes ?? 64 * 1024;
    const tableSize = options.headerTableBytes ?? DEFAULT_HEADER_TABLE_SIZE;
    const maxFrame = options.maxFrameBytes ?? MIN_MAX_FRAME_SIZE;
    this.highWater = options.streamHighWaterBytes ?? 64 * 1024;
    this.maxWriteBuffer = options.maxWriteBufferBytes ?? 64 << 20;
    this.maxStreamId = Math.min(options.maxStreamId ?? MAX_STREAM_ID, MAX_STREAM_ID);
    this.streamIdReserve = options.streamIdReserve ?? 1000;
    this.recvWindow = new ReceiveWindow(connWindow, DEFAULT_WINDOW_SIZE);
    this.encoder = new HpackEncoder({ sensitive: options.sensitiveHeaders ?? [] });
    this.decoder = new HpackDecoder({ maxTableSize: tableSize, maxHeaderListSize: maxHeaderList });
    this.reader = new FrameReader(this, {
      maxFrameSize: maxFrame,
      // A compressed block is rarely larger than the list it decodes to; allow for a poor encoder.
      maxHeaderBlockBytes: 2 * maxHeaderList + 1024,
      maxContinuations: options.maxContinuationFrames ?? 64,
      settingsFirst: true,
    });
    this.ready = new Promise<void>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // Nobody has to wait for `ready`: its rejection must not be reported as unhandled.
    this.ready.catch(() => {});

    // The connection preface: magic, our SETTINGS, and the connection window we keep.
    this.writer.append(PREFACE);
    const settings = [SETTINGS_ENABLE_PUSH, 0, SETTINGS_INITIAL_WINDOW_SIZE, this.streamWindow, SETTINGS_MAX_HEADER_LIST_SIZE, maxHeaderList];
    if (tableSize !== DEFAULT_HEADER_TABLE_SIZE) settings.push(SETTINGS_HEADER_TABLE_SIZE, tableSize);
    if (maxFrame !== MIN_MAX_FRAME_SIZE) settings.push(SETTINGS_MAX_FRAME_SIZE, maxFrame);
    writeSettings(this.writer, settings);
    if (connWindow > DEFAULT_WINDOW_SIZE) {
      writeWindowUpdate(this.writer, 0, connWindow - DEFAULT_WINDOW_SIZE);
      this.recvWindow.available = connWindow;
    }

    socket.on("data", this.onSocketData);
    socket.on("error", this.onSocketError);
    socket.on("close", this.onSocketClose);
    net.setNoDelay?.(true);
    if (options.handshakeTimeoutMs !== undefined && options.handshakeTimeoutMs > 0) {
      const ms = options.handshakeTimeoutMs;
      this.handshakeTimer = setTimeout(() => {
        this.destroy(new EndpointUnavailableError(this.address, "dial-timeout", "no HTTP/2 SETTINGS from the server", ms));
      }, ms);
      this.handshakeTimer.unref();
    }
    if (socket instanceof TLSSocket) {
      // ALPN is known once the TLS handshake is done; writes before that wait inside the TLS socket.
      if (socket.alpnProtocol === null || socket.alpnProtocol === undefined) socket.once("secureConnect", () => this.checkAlpn());
      else this.checkAlpn();
    }
    if (socket.destroyed) {
      this.destroy(new EndpointUnavailableError(this.address, "connection-lost", "socket already closed"));
      return;
    }
    this.flushNow();
  }

  // ---------------------------------------------------------------------------
  // Public API

  /**
   * Opens a request. Returns the stream at once; it is sent now, or queued
   * while the handshake is pending or MAX_CONCURRENT_STREAMS streams are open.
   * On a draining or closed session the stream is closed `"refused"` (in a
   * microtask, so after this returns): send it on another connection.
   *
   * `headers` is the request's header list `[name, value, ...]` including the
   * pseudo-headers (`:method`, `:scheme`, `:authority`, `:path`); pass the
   * same array for requests that share it (e.g. one per gRPC method): its
   * HPACK encoding is cached. Throws `InvalidOptionError` for a header that
   * cannot be sent.
   */
  request(headers: readonly string[], handler: StreamHandler, options?: RequestOptions): H2Stream {
    if (!this.validated.has(headers)) {
      validateFields(headers);
      this.validated.add(headers);
    }
    const extra = options?.extraHeaders;
    if (extra !== undefined) validateFields(extra);
    const s = new H2Stream(this, headers, extra, handler);
    const body = options?.body;
    if (body !== undefined && body.byteLength > 0) {
      s.chunks.push(body);
      s.buffered = body.byteLength;
    }
    if (options?.end ?? body !== undefined) s.endQueued = true;
    if (this.state === "draining" || this.state === "closed") {
      const err = this.refusal();
      queueMicrotask(() => this.finishStream(s, "refused", 0, err));
      return s;
    }
    if (this.state === "ready" && this.queueHead === this.queue.length && this.active < this.peer.maxConcurrentStreams) this.open(s);
    else this.queue.push(s);
    return s;
  }

  /**
   * Sends a PING and resolves with the round-trip time in ms. Rejects when
   * the session closes first, or with the signal's reason. (etcd counts PINGs
   * on a connection without open streams as abuse: the caller decides when.)
   */
  ping(signal?: AbortSignal): Promise<number> {
    if (this.state === "closed") return Promise.reject(this.error ?? this.closedError());
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<number>((resolve, reject) => {
      const key = (this.pingSeq = (this.pingSeq + 1) >>> 0);
      const payload = new Uint8Array(8);
      payload[4] = key >>> 24;
      payload[5] = (key >>> 16) & 0xff;
      payload[6] = (key >>> 8) & 0xff;
      payload[7] = key & 0xff;
      const now = performance.now();
      const onAbort = (): void => {
        this.pings.delete(key);
        reject(signal!.reason);
      };
      this.pings.set(key, {
        sentAt: now,
        resolve: (rtt) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(rtt);
        },
        reject: (e) => {
          signal?.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      this.lastPingSentAt = now;
      writePing(this.writer, payload, 0, false);
      this.scheduleFlush();
    });
  }

  /**
   * Closes gracefully: no new streams (queued ones are closed `"refused"`),
   * a GOAWAY tells the server, open streams finish, then the socket closes.
   * Resolves when it has. Use {@link H2Session.destroy} to stop at once.
   */
  close(): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    this.closing ??= new Promise<void>((resolve) => this.once("close", () => resolve()));
    if (this.state === "connecting") {
      this.destroy();
      return this.closing;
    }
    if (this.state === "ready") {
      this.drain();
      writeGoAway(this.writer, 0, ErrorCode.NO_ERROR);
      this.scheduleFlush();
    }
    this.maybeFinishDrain();
    return this.closing;
  }

  /**
   * Closes now: every stream ends (`"refused"` if it was never sent, else
   * `"lost"` with `error`), pending pings reject, the socket is destroyed.
   */
  destroy(error?: EndpointUnavailableError): void {
    if (this.state === "closed") return;
    this.state = "closed";
    if (error !== undefined) this.error = error;
    const err = this.error ?? this.goAwayError ?? this.closedError();
    if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
    this.reader.stop();
    for (const s of this.takeQueued()) this.finishStream(s, "refused", 0, err);
    for (const s of [...this.streams.values()]) this.finishStream(s, s.sent ? "lost" : "refused", 0, err);
    for (const p of this.pings.values()) p.reject(err);
    this.pings.clear();
    if (!this.readySettled) {
      this.readySettled = true;
      this.rejectReady(err);
    }
    const socket = this.socket;
    socket.off("data", this.onSocketData);
    socket.off("error", this.onSocketError);
    socket.off("close", this.onSocketClose);
    // A late socket error has nobody left to tell.
    socket.on("error", () => {});
    socket.destroy();
    this.emit("close", this.error);
  }

  /** True when a new request would be sent here (not draining or closed). */
  get acceptsRequests(): boolean {
    return this.state === "ready" || this.state === "connecting";
  }

  /** Numbers for the debug view. */
  get stats(): H2SessionStats {
    return {
      state: this.state,
      openStreams: this.active,
      queuedStreams: this.queue.length - this.queueHead,
      blockedStreams: this.blockedStreams.length,
      streamsOpened: this.streamsOpened,
      nextStreamId: this.nextStreamId,
      sendWindow: this.sendWindow,
      receiveWindow: this.recvWindow.available,
      peerMaxConcurrentStreams: this.peer.maxConcurrentStreams,
      peerInitialWindowSize: this.peer.initialWindowSize,
      peerMaxFrameSize: this.peer.maxFrameSize,
      rttMs: this.rttMs,
      lastPingSentAt: this.lastPingSentAt,
      pingsAnswered: this.pingsAnswered,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      writes: this.writes,
      framesReceived: this.reader.frames,
      goAway: this.goAway === undefined ? undefined : { ...this.goAway, code: errorCodeName(this.goAway.code) },
    };
  }

  // ---------------------------------------------------------------------------
  // Called by H2Stream

  /** @internal */
  streamWrite(s: H2Stream, data: Uint8Array | undefined, end: boolean): boolean {
    if (data !== undefined && data.byteLength > 0) {
      s.chunks.push(data);
      s.buffered += data.byteLength;
    }
    if (end) s.endQueued = true;
    if (s.state !== STREAM_QUEUED && !s.blocked) this.sendData(s, Infinity);
    if (s.buffered < this.highWater) return true;
    s.needDrain = true;
    return false;
  }

  /** @internal */
  streamCancel(s: H2Stream, reason: unknown): void {
    if (s.state !== STREAM_QUEUED) {
      writeRstStream(this.writer, s.id, ErrorCode.CANCEL);
      this.scheduleFlush();
    }
    this.finishStream(s, "cancelled", ErrorCode.CANCEL, reason instanceof Error ? reason : undefined);
  }

  /** @internal Releases `n` bytes of a resumed stream to its window. */
  streamRelease(s: H2Stream, n: number): void {
    if (!remoteOpen(s.state)) return;
    const inc = s.recv!.release(n);
    if (inc > 0) {
      writeWindowUpdate(this.writer, s.id, inc);
      this.scheduleFlush();
    }
  }

  // ---------------------------------------------------------------------------
  // Sending

  private open(s: H2Stream): void {
    if (this.peer.maxHeaderListSize !== Infinity) {
      const size = listSize(s.headers) + (s.extraHeaders === undefined ? 0 : listSize(s.extraHeaders));
      if (size > this.peer.maxHeaderListSize) {
        const err = new RequestTooLargeError(size, this.peer.maxHeaderListSize, {
          message: `request headers of ${size} bytes exceed the server's limit of ${this.peer.maxHeaderListSize} (SETTINGS_MAX_HEADER_LIST_SIZE)`,
          endpoint: this.address,
        });
        this.finishStream(s, "error", 0, err);
        return;
      }
    }
    const id = this.nextStreamId;
    this.nextStreamId = id + 2;
    this.lastStreamId = id;
    s.id = id;
    s.state = STREAM_OPEN;
    s.sendWindow = this.peer.initialWindowSize;
    s.recv = new ReceiveWindow(this.streamWindow);
    this.streams.set(id, s);
    this.active++;
    this.streamsOpened++;
    const block = this.encoder.encode(s.headers, s.extraHeaders);
    const endNow = s.endQueued && s.chunks.length === 0;
    writeHeaders(this.writer, id, block, block.length, endNow, this.peer.maxFrameSize);
    s.headersEpoch = this.flushEpoch;
    if (endNow) {
      s.endSent = true;
      s.state = afterLocalEnd(s.state);
    } else if (s.chunks.length > 0) {
      this.sendData(s, Infinity);
    }
    this.scheduleFlush();
    if (!this.exhaustingSignalled && this.maxStreamId - id < 2 * this.streamIdReserve) {
      this.exhaustingSignalled = true;
      this.emit("exhausting");
    }
    if (this.nextStreamId > this.maxStreamId) {
      // No ID left: this connection can take no more streams; it closes when these finish.
      this.idsExhausted = true;
      this.drain();
    }
  }

  /**
   * Sends what the windows allow of a stream's queued data, at most
   * `maxFrames` frames. Returns 0 when nothing is left, 1 when the frame budget
   * ran out, 2 when blocked on flow control (the stream is then registered to
   * continue on WINDOW_UPDATE).
   */
  private sendData(s: H2Stream, maxFrames: number): 0 | 1 | 2 {
    const maxFrame = this.peer.maxFrameSize;
    let frames = 0;
    while (s.chunks.length > 0) {
      const chunk = s.chunks[0]!;
      const left = chunk.byteLength - s.chunkOffset;
      if (left === 0) {
        s.chunks.shift();
        s.chunkOffset = 0;
        continue;
      }
      if (frames >= maxFrames) return 1;
      const room = Math.min(s.sendWindow, this.sendWindow, maxFrame);
      if (room <= 0 || this.socketBlocked) {
        this.block(s);
        return 2;
      }
      let n: number;
      let last: boolean;
      if (left < room && s.chunks.length > 1) {
        // Small writes queued behind flow control (a burst of watch creates, say) go out
        // together: one frame carries as many as fit, rather than a frame (and a pump round) each.
        n = Math.min(room, s.buffered, MAX_GATHER_BYTES);
        last = n === s.buffered && s.endQueued;
        writeDataGathered(this.writer, s.id, s.chunks, s.chunkOffset, n, last);
        let consumed = n;
        let drop = 0;
        let offset = s.chunkOffset;
        while (consumed > 0) {
          const rest = s.chunks[drop]!.byteLength - offset;
          if (rest > consumed) {
            offset += consumed;
            break;
          }
          consumed -= rest;
          drop++;
          offset = 0;
        }
        s.chunks.splice(0, drop);
        s.chunkOffset = offset;
      } else {
        n = Math.min(left, room);
        last = n === left && s.chunks.length === 1 && s.endQueued;
        writeData(this.writer, s.id, chunk, s.chunkOffset, n, last);
        if (n === left) {
          s.chunks.shift();
          s.chunkOffset = 0;
        } else {
          s.chunkOffset += n;
        }
      }
      if (frames++ === 0) this.scheduleFlush();
      s.sendWindow -= n;
      this.sendWindow -= n;
      s.buffered -= n;
      if (last) {
        s.endSent = true;
        s.state = afterLocalEnd(s.state);
      }
    }
    if (s.endQueued && !s.endSent) {
      writeData(this.writer, s.id, EMPTY, 0, 0, true);
      s.endSent = true;
      s.state = afterLocalEnd(s.state);
      this.scheduleFlush();
    }
    if (s.needDrain && s.buffered < this.highWater) {
      s.needDrain = false;
      s.handler.onWritable?.();
    }
    return 0;
  }

  private block(s: H2Stream): void {
    if (s.blocked) return;
    s.blocked = true;
    this.blockedStreams.push(s);
  }

  /** Window opened (or the socket drained): blocked streams send, one frame each per round, while the connection window lasts. */
  private pumpBlocked(): void {
    let list = this.blockedStreams;
    if (list.length === 0) return;
    this.blockedStreams = [];
    for (const s of list) s.blocked = false;
    while (list.length > 0) {
      const next: H2Stream[] = [];
      for (const s of list) {
        if (s.state === STREAM_CLOSED) continue;
        if (this.sendData(s, 1) === 1) next.push(s);
      }
      list = next;
      if (this.sendWindow <= 0 || this.socketBlocked) {
        for (const s of list) this.block(s);
        return;
      }
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(this.flushSoon);
  }

  /** After the current microtasks (which may issue more requests): write the batch. */
  private readonly flushSoon = (): void => {
    process.nextTick(this.flushNow);
  };

  private readonly flushNow = (): void => {
    this.flushScheduled = false;
    if (this.state === "closed" || this.socket.destroyed) return;
    const chunks = this.writer.take();
    if (chunks === undefined) return;
    this.flushEpoch++;
    this.writes++;
    const socket = this.socket;
    let ok = true;
    if (chunks.length === 1) {
      this.bytesSent += chunks[0]!.length;
      ok = socket.write(chunks[0]!);
    } else {
      socket.cork();
      for (const c of chunks) {
        this.bytesSent += c.length;
        ok = socket.write(c);
      }
      socket.uncork();
    }
    if (!ok && !this.socketBlocked) {
      this.socketBlocked = true;
      socket.once("drain", this.onDrain);
    }
    if (socket.writableLength > this.maxWriteBuffer) {
      this.destroy(new EndpointUnavailableError(this.address, "connection-lost", `the server stopped reading (${socket.writableLength} bytes waiting to be written)`));
    }
  };

  private readonly onDrain = (): void => {
    this.socketBlocked = false;
    if (this.state !== "closed") this.pumpBlocked();
  };

  // ---------------------------------------------------------------------------
  // Stream lifecycle

  private startQueued(): void {
    const q = this.queue;
    while (this.queueHead < q.length && this.state === "ready" && this.active < this.peer.maxConcurrentStreams) {
      const s = q[this.queueHead]!;
      q[this.queueHead++] = undefined as unknown as H2Stream;
      if (s.state === STREAM_QUEUED) this.open(s);
    }
    if (this.queueHead === q.length) {
      q.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > q.length) {
      q.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  /** No more streams start here: queued ones are refused (to be sent elsewhere). */
  private drain(): void {
    if (this.state === "ready" || this.state === "connecting") this.state = "draining";
    const err = this.refusal();
    for (const s of this.takeQueued()) this.finishStream(s, "refused", 0, err);
  }

  /** Empties the queue, returning the streams still waiting (slots before queueHead were already started). */
  private takeQueued(): H2Stream[] {
    const waiting = this.queue.slice(this.queueHead);
    this.queue.length = 0;
    this.queueHead = 0;
    return waiting;
  }

  /** Draining and nothing left open: close the socket after writing what is pending. */
  private maybeFinishDrain(): void {
    if (this.state !== "draining" || this.active > 0 || this.ending) return;
    this.ending = true;
    this.flushNow();
    const socket = this.socket;
    const done = (): void => this.destroy(this.goAwayError);
    if (socket.destroyed || !socket.writable) {
      done();
      return;
    }
    socket.end(() => socket.destroy());
  }

  private finishStream(s: H2Stream, reason: StreamCloseReason, code: number, error: Error | undefined): void {
    if (s.state === STREAM_CLOSED) return;
    const wasOpen = s.state !== STREAM_QUEUED;
    s.state = STREAM_CLOSED;
    if (wasOpen) {
      this.streams.delete(s.id);
      this.active--;
      if (this.dataStream === s) this.dataStream = undefined;
    }
    s.chunks.length = 0;
    s.buffered = 0;
    s.handler.onClose(reason, code, error);
    if (wasOpen && this.state !== "closed") {
      this.startQueued();
      this.maybeFinishDrain();
    }
  }

  /** A stream error: reset the stream and end it with `"error"`. */
  private streamError(s: H2Stream, code: number, message: string): void {
    writeRstStream(this.writer, s.id, code);
    this.scheduleFlush();
    this.finishStream(s, "error", code, new H2Error(code, message, s.id));
  }

  /** The peer ended its side: the response is complete. */
  private remoteEnd(s: H2Stream): void {
    if (afterRemoteEnd(s.state) !== STREAM_CLOSED) {
      // We are still sending, but the exchange is over: stop (RFC 9113 §8.1 lets the server answer early).
      writeRstStream(this.writer, s.id, ErrorCode.NO_ERROR);
      this.scheduleFlush();
    }
    this.finishStream(s, "done", 0, undefined);
  }

  private refusal(): EndpointUnavailableError {
    if (this.goAwayError !== undefined) return this.goAwayError;
    if (this.goAway !== undefined) return new EndpointUnavailableError(this.address, "goaway", `GOAWAY (last stream ${this.goAway.lastStreamId})`);
    if (this.idsExhausted) return new EndpointUnavailableError(this.address, "closed", "stream IDs exhausted on this connection");
    return this.error ?? this.closedError();
  }

  private closedError(): EndpointUnavailableError {
    return new EndpointUnavailableError(this.address, "closed");
  }

  /** A frame named a stream we do not know: fine if it is one we closed, an error if it was never opened. */
  private checkKnownStream(id: number, what: string): void {
    if ((id & 1) === 0 || id > this.lastStreamId) {
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, `${what} frame on stream ${id}, which was never opened`);
    }
  }

  // ---------------------------------------------------------------------------
  // Socket events

  private readonly onSocketData = (chunk: Buffer): void => {
    this.bytesReceived += chunk.length;
    try {
      this.reader.push(chunk);
    } catch (e) {
      if (e instanceof H2Error) {
        this.connectionError(e);
        return;
      }
      // A stream handler threw: the session cannot know what state it left; close it and report the bug.
      this.destroy(new EndpointUnavailableError(this.address, "other", e));
      throw e;
    }
  };

  private readonly onSocketError = (e: Error): void => {
    const code = (e as { code?: unknown }).code;
    const reason: EndpointFailureReason = this.state === "connecting" && code === "ECONNREFUSED" ? "refused" : "connection-lost";
    this.destroy(new EndpointUnavailableError(this.address, reason, e));
  };

  private readonly onSocketClose = (): void => {
    if (this.state === "closed") return;
    if (this.state === "draining" && this.active === 0) {
      this.destroy(this.goAwayError);
      return;
    }
    this.destroy(this.goAwayError ?? new EndpointUnavailableError(this.address, this.state === "connecting" ? "protocol" : "connection-lost", this.state === "connecting" ? "connection closed during the HTTP/2 handshake" : "connection closed by the server"));
  };

  private checkAlpn(): void {
    const socket = this.socket as TLSSocket;
    if (this.state === "closed" || socket.alpnProtocol === "h2") return;
    this.destroy(new EndpointUnavailableError(this.address, "protocol", `the server did not negotiate HTTP/2 with ALPN (got ${socket.alpnProtocol || "no protocol"})`));
  }

  /** A connection error: tell the server with GOAWAY, then close. */
  private connectionError(e: H2Error): void {
    if (this.state === "closed") return;
    writeGoAway(this.writer, 0, e.code, e.message.slice(0, 256));
    this.flushNow();
    this.destroy(new EndpointUnavailableError(this.address, "protocol", e));
  }

  // ---------------------------------------------------------------------------
  // FrameSink: frames from the server

  /** @internal */
  onDataStart(streamId: number, length: number): void {
    if (!this.recvWindow.receive(length)) {
      throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, `DATA of ${length} bytes beyond the connection window (${this.recvWindow.available})`);
    }
    // The connection window is replenished as data arrives, whoever reads it and however slowly.
    const inc = this.recvWindow.release(length);
    if (inc > 0) {
      writeWindowUpdate(this.writer, 0, inc);
      this.scheduleFlush();
    }
    this.dataStream = undefined;
    const s = this.streams.get(streamId);
    if (s === undefined) {
      this.checkKnownStream(streamId, "DATA");
      return;
    }
    if (!s.responded) return this.streamError(s, ErrorCode.PROTOCOL_ERROR, "DATA before the response headers");
    if (!remoteOpen(s.state)) return this.streamError(s, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM");
    if (!s.recv!.receive(length)) return this.streamError(s, ErrorCode.FLOW_CONTROL_ERROR, `DATA of ${length} bytes beyond the stream window`);
    s.frameLeft = length;
    this.dataStream = s;
  }

  /** @internal */
  onData(streamId: number, chunk: Buffer, endOfFrame: boolean, endStream: boolean): void {
    const s = this.dataStream;
    if (s === undefined || s.id !== streamId) return;
    const n = chunk.length;
    if (n > 0 || endStream) s.handler.onData(chunk, endStream);
    if (s.state === STREAM_CLOSED) return;
    s.frameLeft -= n;
    let release = 0;
    if (s.isPaused) s.held += n;
    else release = n;
    if (endOfFrame) {
      // Padding (and the pad length byte) is never delivered: release it now.
      release += s.frameLeft;
      s.frameLeft = 0;
      this.dataStream = undefined;
    }
    if (endStream) {
      this.remoteEnd(s);
      return;
    }
    if (release > 0) {
      const inc = s.recv!.release(release);
      if (inc > 0) {
        writeWindowUpdate(this.writer, s.id, inc);
        this.scheduleFlush();
      }
    }
  }

  /** @internal */
  onHeaders(streamId: number, block: Buffer, endStream: boolean): void {
    // Decode whatever stream it is for: the HPACK table must stay in step with the server's.
    const fields: string[] = [];
    this.decoder.decode(block, fields);
    const s = this.streams.get(streamId);
    if (s === undefined) {
      this.checkKnownStream(streamId, "HEADERS");
      return;
    }
    if (!remoteOpen(s.state)) return this.streamError(s, ErrorCode.STREAM_CLOSED, "HEADERS after END_STREAM");
    if (!s.responded) {
      const status = fields[0] === STATUS ? fields[1] : findField(fields, STATUS);
      if (status === undefined) return this.streamError(s, ErrorCode.PROTOCOL_ERROR, "response headers without :status");
      if (status.length === 3 && status[0] === "1") {
        // An informational response; the real one follows.
        if (endStream) return this.streamError(s, ErrorCode.PROTOCOL_ERROR, "informational response with END_STREAM");
        return;
      }
      s.responded = true;
      s.handler.onHeaders(fields, endStream);
    } else {
      if (!endStream) return this.streamError(s, ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM");
      s.handler.onTrailers(fields);
    }
    if (endStream && s.state !== STREAM_CLOSED) this.remoteEnd(s);
  }

  /** @internal */
  onRstStream(streamId: number, code: number): void {
    const s = this.streams.get(streamId);
    if (s === undefined) {
      this.checkKnownStream(streamId, "RST_STREAM");
      return;
    }
    const err = new H2Error(code, `stream ${streamId} reset by the server`, streamId);
    this.finishStream(s, code === ErrorCode.REFUSED_STREAM ? "refused" : "reset", code, err);
  }

  /** @internal */
  onSettings(entries: number[]): void {
    const oldWindow = this.peer.initialWindowSize;
    const oldTable = this.peer.headerTableSize;
    applySettings(this.peer, entries);
    if (this.peer.headerTableSize !== oldTable) this.encoder.setPeerMaxTableSize(this.peer.headerTableSize);
    const delta = this.peer.initialWindowSize - oldWindow;
    if (delta !== 0) {
      // SETTINGS_INITIAL_WINDOW_SIZE applies to open streams too (RFC 9113 §6.9.2); overflow is a connection error.
      for (const s of this.streams.values()) s.sendWindow = growSendWindow(s.sendWindow, delta, 0);
    }
    writeSettingsAck(this.writer);
    this.scheduleFlush();
    if (this.state === "connecting") {
      this.state = "ready";
      if (this.handshakeTimer !== undefined) clearTimeout(this.handshakeTimer);
      this.readySettled = true;
      this.resolveReady();
      this.emit("ready");
    }
    this.startQueued();
    if (delta > 0) this.pumpBlocked();
  }

  /** @internal */
  onSettingsAck(): void {}

  /** @internal */
  onPing(payload: Buffer, ack: boolean): void {
    if (!ack) {
      this.pingsAnswered++;
      writePing(this.writer, payload, 0, true);
      this.scheduleFlush();
      return;
    }
    const key = readUint32(payload, 4);
    const p = this.pings.get(key);
    if (p === undefined) return;
    this.pings.delete(key);
    const rtt = performance.now() - p.sentAt;
    this.rttMs = rtt;
    p.resolve(rtt);
  }

  /** @internal */
  onGoAway(lastStreamId: number, code: number, debug: string): void {
    const last = this.goAway === undefined ? lastStreamId : Math.min(lastStreamId, this.goAway.lastStreamId);
    this.goAway = { code, lastStreamId: last, debug };
    if (code !== ErrorCode.NO_ERROR) {
      this.goAwayError = new EndpointUnavailableError(this.address, "goaway", `${errorCodeName(code)}${debug ? `: ${debug}` : ""}`);
    }
    if (this.state === "connecting") {
      this.destroy(this.goAwayError ?? new EndpointUnavailableError(this.address, "goaway", "GOAWAY during the handshake"));
      return;
    }
    this.drain();
    const err = this.refusal();
    // Streams above the last ID were never processed: refused, safe to send elsewhere.
    for (const s of [...this.streams.values()]) if (s.id > last) this.finishStream(s, "refused", 0, err);
    this.emit("goaway", code, last, debug);
    this.maybeFinishDrain();
  }

  /** @internal */
  onWindowUpdate(streamId: number, increment: number): void {
    if (streamId === 0) {
      this.sendWindow = growSendWindow(this.sendWindow, increment, 0);
      this.pumpBlocked();
      return;
    }
    const s = this.streams.get(streamId);
    if (s === undefined) {
      this.checkKnownStream(streamId, "WINDOW_UPDATE");
      return;
    }
    s.sendWindow = growSendWindow(s.sendWindow, increment, streamId);
    // No longer waiting for a window (sendData blocks it again if it still is):
    // left marked, its later writes would wait for the next connection-level update.
    s.blocked = false;
    if (s.chunks.length > 0 || (s.endQueued && !s.endSent)) this.sendData(s, Infinity);
  }

  /** @internal */
  onStreamError(error: H2Error): void {
    const s = this.streams.get(error.streamId);
    if (s !== undefined) this.streamError(s, error.code, error.message);
  }
}

function findField(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

function listSize(fields: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < fields.length; i += 2) n += 32 + fields[i]!.length + fields[i + 1]!.length;
  return n;
}
