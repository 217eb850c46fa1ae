/**
 * A local copy of every key under a prefix, kept current by a watch: list
 * in pages at one revision, watch from the next, and list again by itself
 * when the watch cannot resume (compaction) or was away too long.
 * @module
 */
import { EventEmitter } from "node:events";
import { Code } from "@connectrpc/connect";
import type { KeyValue as RawKeyValue } from "../../gen/etcd/api/mvccpb/kv_pb.js";
import { toBytes, type Bytes } from "../kv/bytes.js";
import { KeyValue } from "../kv/key-value.js";
import type { KV } from "../kv/kv.js";
import { sleep } from "../deadline.js";
import { retryDelayMs } from "../cluster/retry.js";
import { ClientClosedError, CompactedError, EtcdError, InvalidOptionError, toEtcdError } from "../errors.js";
import type { WatchBatch } from "./events.js";
import type { Watcher } from "./watcher.js";
import { isPermanent } from "./watch-stream.js";
import { emitSafely } from "./listeners.js";
import { describeValue } from "../describe-value.js";

/** Options of `etcd.mirror(prefix, options)`. */
export interface MirrorOptions {
  /** Keys per page of the initial (and every later) listing. Default 1000. */
  pageSize?: number;
  /**
   * How keys are turned into the map's string keys. Default `utf8`;
   * use `latin1` or `hex` for keys that are not UTF-8 text (`utf8` would
   * merge keys whose invalid bytes decode alike).
   */
  keyEncoding?: BufferEncoding;
  /**
   * After the watch has been disconnected this long, list again instead of
   * replaying everything missed once it is back. Default 60000 ms; 0 never.
   */
  relistAfterDisconnectMs?: number;
  /** Watch only through members that have a leader (default true). */
  requireLeader?: boolean;
  /** Closes the mirror. */
  signal?: AbortSignal;
}

/** Why a mirror listed its prefix again. */
export type RelistReason = "compacted" | "disconnected";

/** What a re-list reports. */
export interface MirrorRelist {
  /** Why the prefix was listed again. */
  reason: RelistReason;
  /** The revision the new listing was taken at. */
  revision: bigint;
  /** With `compacted`: the compaction revision the watch ran into. */
  compactRevision?: bigint;
  /** Keys that differed between the old and the new listing (a put or delete event was emitted for each). */
  changed: number;
}

/** Events of a {@link Mirror}. */
export interface MirrorEvents {
  /** A key was created or changed; `prev` is the pair before, if the mirror had it. */
  put: [key: string, kv: KeyValue, prev: KeyValue | undefined];
  /** A key was deleted; `prev` is the pair the mirror had. */
  delete: [key: string, prev: KeyValue];
  /** The map now reflects the store at this revision (after each change and each listing). */
  revision: [revision: bigint];
  /** The prefix was listed again; the differences were emitted as put and delete events before this. */
  relisted: [info: MirrorRelist];
  /** The mirror stopped for good (e.g. permission denied); `closed` follows. */
  error: [error: EtcdError];
  /** The mirror was closed. */
  closed: [];
}

/** Where a mirror is. */
export type MirrorState = "listing" | "watching" | "closed";

const DEFAULT_PAGE_SIZE = 1000;
const DEFAULT_RELIST_AFTER_DISCONNECT_MS = 60_000;

/** A watcher the mirror follows and how that ended. */
interface Ending {
  reason: RelistReason;
  compactRevision?: bigint;
}

/** Just what the mirror needs from the key-value API (of the client or a namespace). */
export type MirrorKV = Pick<KV, "get" | "paginate">;

/** Just what the mirror needs from the watch manager. */
interface WatchSource {
  watch(key: Bytes, options: { prefix: true; startRevision: bigint; requireLeader: boolean }): Watcher;
}

/**
 * Every key under a prefix, in memory, kept current:
 *
 * ```ts
 * const services = etcd.mirror("services/");
 * await services.ready;
 * console.log(services.revision, [...services.map.keys()]);
 * services.on("put", (key, kv) => console.log("up", key, kv.text));
 * services.on("delete", (key) => console.log("down", key));
 * services.on("relisted", (r) => console.log("listed again:", r.reason));
 * ```
 *
 * It lists the prefix in pages at one revision, then watches from the next
 * revision and applies each change. When the watch cannot resume because
 * the revision it needs was compacted, or it has been disconnected longer
 * than `relistAfterDisconnectMs`, the mirror lists again by itself, emits
 * the differences as `put`/`delete` events and reports a `relisted` event
 * with the reason. At every `revision` event, `map` equals the prefix as the
 * store had it at `revision`.
 *
 * Stored keys and values are copies, so the mirror keeps no network buffer alive.
 */
export class Mirror extends EventEmitter<MirrorEvents> {
  /** The mirrored prefix. */
  readonly prefix: Uint8Array;
  /** Resolves after the first listing is in `map`; rejects if the mirror closes or fails first. */
  readonly ready: Promise<void>;
  private entries = new Map<string, KeyValue>();
  private rev = 0n;
  private st: MirrorState = "listing";
  private watcher: Watcher | undefined;
  private readonly abort = new AbortController();
  private readonly pageSize: number;
  private readonly keyEncoding: BufferEncoding;
  private readonly relistAfterMs: number;
  private readonly requireLeader: boolean;
  private readyResolve!: () => void;
  private readyReject!: (e: unknown) => void;
  private isReady = false;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => this.close();

  /** @internal Made by `etcd.mirror()`. */
  constructor(
    private readonly kv: MirrorKV,
    private readonly watches: WatchSource,
    prefix: Bytes,
    options: MirrorOptions,
    private readonly onClose: (m: Mirror) => void,
  ) {
    super();
    this.prefix = toBytes(prefix);
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isSafeInteger(this.pageSize) || this.pageSize <= 0) {
      throw new InvalidOptionError(`pageSize must be a positive integer, got ${describeValue(options.pageSize)}`);
    }
    this.keyEncoding = options.keyEncoding ?? "utf8";
    if (!Buffer.isEncoding(this.keyEncoding)) throw new InvalidOptionError(`keyEncoding: unknown encoding ${describeValue(options.keyEncoding)}`);
    this.relistAfterMs = options.relistAfterDisconnectMs ?? DEFAULT_RELIST_AFTER_DISCONNECT_MS;
    if (!(this.relistAfterMs >= 0)) throw new InvalidOptionError(`relistAfterDisconnectMs must be >= 0, got ${describeValue(options.relistAfterDisconnectMs)}`);
    this.requireLeader = options.requireLeader !== false;
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Nobody may await `ready`; a failure is also reported through `error`.
    this.ready.catch(() => undefined);
    this.signal = options.signal;
    if (this.signal?.aborted) {
      this.close();
      return;
    }
    this.signal?.addEventListener("abort", this.onAbort, { once: true });
    void this.run();
  }

  /** The mirrored pairs by key (decoded with `keyEncoding`). Do not modify it. */
  get map(): ReadonlyMap<string, KeyValue> {
    return this.entries;
  }

  /** The store revision `map` reflects (0n before the first listing). */
  get revision(): bigint {
    return this.rev;
  }

  /** Where the mirror is. */
  get state(): MirrorState {
    return this.st;
  }

  /** The pair of `key`, if the mirror has it. */
  get(key: Bytes): KeyValue | undefined {
    return this.entries.get(this.keyOf(toBytes(key)));
  }

  /** Stops following the prefix. The map stays as it was. */
  close(): void {
    this.stop(undefined);
  }

  private stop(error: EtcdError | undefined): void {
    if (this.st === "closed") return;
    this.st = "closed";
    this.signal?.removeEventListener("abort", this.onAbort);
    this.abort.abort();
    const w = this.watcher;
    this.watcher = undefined;
    void w?.close();
    if (!this.isReady) this.readyReject(error ?? new EtcdError("the mirror was closed before its first listing", Code.Canceled));
    if (error !== undefined && this.listenerCount("error") > 0) emitSafely(this, "error", error);
    this.onClose(this);
    emitSafely(this, "closed");
  }

  private async run(): Promise<void> {
    let ending: Ending | undefined;
    let failures = 0;
    while (!this.isClosed()) {
      let listed: { map: Map<string, KeyValue>; revision: bigint };
      try {
        listed = await this.list();
        failures = 0;
      } catch (e) {
        if (this.isClosed()) return;
        const err = toEtcdError(e);
        if (err instanceof ClientClosedError || isPermanent(err)) {
          this.stop(err instanceof ClientClosedError ? undefined : err);
          return;
        }
        // The listing's revision was compacted under it: list again at once. Anything else: back off.
        if (!(err instanceof CompactedError)) {
          try {
            await sleep(retryDelayMs(++failures, 100, 5000), this.abort.signal);
          } catch {
            return;
          }
        }
        continue;
      }
      if (this.isClosed()) return;
      this.install(listed.map, listed.revision, ending);
      ending = await this.follow(listed.revision + 1n);
      if (ending === undefined) return;
      this.st = "listing";
    }
  }

  /** Lists the prefix page by page, all at one revision. */
  private async list(): Promise<{ map: Map<string, KeyValue>; revision: bigint }> {
    const signal = this.abort.signal;
    // The first read fixes the revision every page is read at.
    const head = await this.kv.get(this.prefix, { prefix: true, limit: 1, keysOnly: true, signal });
    const revision = head.revision;
    const map = new Map<string, KeyValue>();
    for await (const kv of this.kv.paginate(this.prefix, { prefix: true, revision, pageSize: this.pageSize, signal })) {
      const own = copyOf(kv.raw);
      map.set(this.keyOf(own.key), own);
    }
    return { map, revision };
  }

  /** Puts a listing in place; after the first, reports what changed. */
  private install(map: Map<string, KeyValue>, revision: bigint, ending: Ending | undefined): void {
    const old = this.entries;
    this.entries = map;
    this.rev = revision;
    this.st = "watching";
    if (!this.isReady) {
      this.isReady = true;
      this.readyResolve();
      emitSafely(this, "revision", revision);
      return;
    }
    let changed = 0;
    for (const [k, prev] of old) {
      if (!map.has(k)) {
        changed++;
        emitSafely(this, "delete", k, prev);
      }
    }
    for (const [k, kv] of map) {
      const prev = old.get(k);
      if (prev === undefined || prev.modRevision !== kv.modRevision) {
        changed++;
        emitSafely(this, "put", k, kv, prev);
      }
    }
    const info: MirrorRelist = { reason: ending!.reason, revision, changed };
    if (ending!.compactRevision !== undefined) info.compactRevision = ending!.compactRevision;
    emitSafely(this, "relisted", info);
    emitSafely(this, "revision", revision);
  }

  /** Watches from `start` and applies changes until the watch needs a new listing (or the mirror ends). */
  private follow(start: bigint): Promise<Ending | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (e: Ending | undefined): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        if (this.watcher === w) this.watcher = undefined;
        resolve(e);
      };
      let w: Watcher;
      try {
        w = this.watches.watch(this.prefix, { prefix: true, startRevision: start, requireLeader: this.requireLeader });
      } catch (e) {
        this.stop(toEtcdError(e) instanceof ClientClosedError ? undefined : toEtcdError(e));
        resolve(undefined);
        return;
      }
      this.watcher = w;
      w.on("batch", (b) => this.apply(b));
      w.on("state", (state) => {
        if (state === "disconnected" && timer === undefined && this.relistAfterMs > 0) {
          timer = setTimeout(() => {
            timer = undefined;
            settle({ reason: "disconnected" });
            void w.close();
          }, this.relistAfterMs);
        } else if (state === "watching" && timer !== undefined) {
          clearTimeout(timer);
          timer = undefined;
        }
      });
      w.on("end", () => {
        if (settled) return;
        const err = w.error;
        if (this.isClosed()) settle(undefined);
        else if (err instanceof CompactedError) {
          const e: Ending = { reason: "compacted" };
          if (err.compactRevision !== undefined) e.compactRevision = err.compactRevision;
          settle(e);
        } else {
          settle(undefined);
          this.stop(err);
        }
      });
      if (w.state === "closed") {
        settle(undefined);
        this.stop(w.error);
      }
    });
  }

  private apply(b: WatchBatch): void {
    if (this.st !== "watching" || b.progress) return;
    // The whole revision goes into the map before any listener hears of it,
    // so listeners always see the map at a revision boundary.
    const changes: Array<[key: string, kv: KeyValue | undefined, prev: KeyValue | undefined]> = [];
    for (const e of b.events) {
      const key = this.keyOf(e.kv.key);
      const prev = this.entries.get(key);
      if (e.type === "put") {
        const kv = copyOf(e.kv.raw);
        this.entries.set(key, kv);
        changes.push([key, kv, prev]);
      } else if (prev !== undefined) {
        this.entries.delete(key);
        changes.push([key, undefined, prev]);
      }
    }
    this.rev = b.revision;
    for (const [key, kv, prev] of changes) {
      if (kv !== undefined) emitSafely(this, "put", key, kv, prev);
      else emitSafely(this, "delete", key, prev!);
    }
    emitSafely(this, "revision", b.revision);
  }

  /** A method, not a field read, so TypeScript does not narrow it across awaits. */
  private isClosed(): boolean {
    return this.st === "closed";
  }

  private keyOf(key: Uint8Array): string {
    return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString(this.keyEncoding);
  }
}

/** A pair with its own copies of key and value (received ones are views into a network buffer). */
function copyOf(raw: RawKeyValue): KeyValue {
  return new KeyValue({ ...raw, key: raw.key.slice(), value: raw.value.slice() });
}
