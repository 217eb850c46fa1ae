/**
 * The client's watches: validates options, picks the stream for each watcher
 * (one per distinct metadata), and ends everything on close.
 * @module
 */
import type { Transport } from "@connectrpc/connect";
import type { Bytes } from "../kv/bytes.js";
import { resolveRange } from "../kv/key-range.js";
import type { KV } from "../kv/kv.js";
import { AbortedError, ClientClosedError, InvalidOptionError, RequestTooLargeError } from "../errors.js";
import { DEFAULT_MAX_BUFFERED_EVENTS, FRAGMENT, NO_DELETE, NO_PUT, PREV_KV, PROGRESS_NOTIFY, Watcher, type WatchOptions } from "./watcher.js";
import { WatchStream, type WatchStreamInfo } from "./watch-stream.js";
import { Mirror, type MirrorKV, type MirrorOptions } from "./mirror.js";
import type { KeyPrefix } from "../namespace/key-prefix.js";
import { describeValue } from "../describe-value.js";

/** Limits the watch layer checks before sending. */
export interface WatchLimits {
  /** The server's request size limit: a create request larger than this is refused up front. */
  maxRequestBytes: number;
  /** The client's request deadline: creates unanswered this long make the stream open again. */
  requestTimeoutMs: number;
}

/** A snapshot of the client's watches, for debugging. */
export interface WatchInfo {
  /** Watchers open, on every stream. */
  watchers: number;
  /** Mirrors open. */
  mirrors: number;
  /** Each stream (at most one per distinct metadata). */
  streams: WatchStreamInfo[];
}

// Room for the rest of a create request besides key and range end.
const CREATE_OVERHEAD_BYTES = 64;

/**
 * Watches and mirrors of one client. `etcd.watch()` and `etcd.mirror()`
 * come here; `etcd.watches.info()` shows the streams.
 */
export class WatchManager {
  /** Streams by `requireLeader`: [without, with] `hasleader`. */
  private readonly streams: [WatchStream | undefined, WatchStream | undefined] = [undefined, undefined];
  private readonly mirrors = new Set<Mirror>();
  private closed = false;

  /** @internal Made by the client. */
  constructor(
    private readonly transport: Transport,
    private readonly kv: KV,
    private readonly limits: WatchLimits,
  ) {}

  /**
   * Watches a key, or a range with `prefix`, `fromKey` or `rangeEnd`.
   * See {@link Watcher} and {@link WatchOptions}. With `keys` (a namespace's),
   * the key and range are inside that prefix and events come back without it.
   *
   * @throws InvalidKeyError, InvalidOptionError for bad input;
   *   ClientClosedError after the client was closed.
   */
  watch(key: Bytes, options: WatchOptions = {}, keys?: KeyPrefix): Watcher {
    if (this.closed) throw new ClientClosedError();
    const given = resolveRange(key, options);
    const range = keys === undefined ? given : keys.range(given.key, given.rangeEnd);
    const size = range.key.length + range.rangeEnd.length + CREATE_OVERHEAD_BYTES;
    if (size > this.limits.maxRequestBytes) throw new RequestTooLargeError(size, this.limits.maxRequestBytes);
    const start = toRevision(options.startRevision);
    const limit = options.maxBufferedEvents ?? DEFAULT_MAX_BUFFERED_EVENTS;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new InvalidOptionError(`maxBufferedEvents must be a positive integer, got ${describeValue(options.maxBufferedEvents)}`);
    }
    const flags =
      (options.prevKv === true ? PREV_KV : 0) |
      (options.progressNotify === true ? PROGRESS_NOTIFY : 0) |
      (options.fragment === true ? FRAGMENT : 0) |
      (options.noPut === true ? NO_PUT : 0) |
      (options.noDelete === true ? NO_DELETE : 0);
    const stream = this.streamFor(options.requireLeader !== false);
    const signal = options.signal;
    const w = new Watcher(stream, range.key, range.rangeEnd, start, flags, limit, signal?.aborted ? undefined : signal, keys);
    if (signal?.aborted) {
      w.finish(undefined, new AbortedError(signal.reason));
      return w;
    }
    stream.add(w);
    return w;
  }

  /**
   * Mirrors every key under `prefix` in memory and keeps it current.
   * See {@link Mirror}. With `view` (a namespace), `prefix` and the
   * mirrored keys are inside the namespace.
   */
  mirror(prefix: Bytes, options: MirrorOptions = {}, view?: { kv: MirrorKV; keys: KeyPrefix }): Mirror {
    if (this.closed) throw new ClientClosedError();
    const source = view === undefined ? this : { watch: (k: Bytes, o: WatchOptions) => this.watch(k, o, view.keys) };
    const m = new Mirror(view?.kv ?? this.kv, source, prefix, options, (x) => this.mirrors.delete(x));
    if (m.state !== "closed") this.mirrors.add(m);
    return m;
  }

  /** A snapshot of the watch streams. */
  info(): WatchInfo {
    const streams = this.streams.filter((s): s is WatchStream => s !== undefined).map((s) => s.info());
    return { watchers: streams.reduce((n, s) => n + s.watchers, 0), mirrors: this.mirrors.size, streams };
  }

  /** @internal Ends every mirror, watcher and stream; called by the client's `close()`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const m of [...this.mirrors]) m.close();
    for (const s of this.streams) s?.close();
  }

  private streamFor(requireLeader: boolean): WatchStream {
    const i = requireLeader ? 1 : 0;
    return (this.streams[i] ??= new WatchStream(this.transport, requireLeader, this.limits.requestTimeoutMs));
  }
}

function toRevision(r: bigint | number | undefined): bigint {
  if (r === undefined) return 0n;
  if (typeof r === "bigint" && r >= 0n) return r;
  if (typeof r === "number" && Number.isSafeInteger(r) && r >= 0) return BigInt(r);
  throw new InvalidOptionError(`startRevision must be a non-negative integer, got ${String(r)}`);
}
