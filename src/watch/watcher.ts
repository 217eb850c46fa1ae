/**
 * The public handle of one watch: its options, its state, and the batches it
 * delivers, as an async iterator or as events.
 * @module
 */
import { EventEmitter } from "node:events";
import { Code } from "@connectrpc/connect";
import type { Event as RawEvent } from "../../gen/etcd/api/mvccpb/kv_pb.js";
import type { WatchResponse } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { RangeSelector } from "../kv/key-range.js";
import { AbortedError, EtcdError } from "../errors.js";
import { batchOf, endOfRevision, progressBatch, revisionOf, type WatchBatch, type WatchEvent } from "./events.js";
import { emitSafely } from "./listeners.js";

/** Options of `etcd.watch(key, options)`. */
export interface WatchOptions extends RangeSelector {
  /**
   * First revision to deliver (inclusive). Default: changes after now. A
   * revision already compacted ends the watcher with `CompactedError`; a
   * future one waits until the store gets there.
   */
  startRevision?: bigint | number;
  /** Include the pair as it was before each change (`event.prevKv`). */
  prevKv?: boolean;
  /** Leave out put events (filtered by the server). */
  noPut?: boolean;
  /** Leave out delete events (filtered by the server). */
  noDelete?: boolean;
  /**
   * Ask the server for periodic progress notifications while nothing
   * changes (every 10 minutes unless the server's
   * `--experimental-watch-progress-notify-interval` says otherwise); they
   * arrive as batches with `progress: true`.
   */
  progressNotify?: boolean;
  /**
   * Let the server split a revision too large for one message into
   * fragments; they are put back together before delivery.
   */
  fragment?: boolean;
  /**
   * Watch only through members that have a leader (metadata `hasleader`).
   * Default true: a member cut off from the quorum ends the stream and the
   * watcher moves to another member, instead of going silent.
   */
  requireLeader?: boolean;
  /** Ends the watcher (the iterator finishes cleanly) and cancels it on the server. */
  signal?: AbortSignal;
  /**
   * Most events kept for a consumer that has not read them yet (default
   * 10,000). Past it, the watcher is cancelled on the server and re-created
   * from the next revision once the consumer has read half of them: memory
   * stays bounded and nothing is skipped or delivered twice.
   */
  maxBufferedEvents?: number;
}

/**
 * Where a watcher is:
 * - `creating`: asked the server for it, waiting for the answer;
 * - `watching`: the server confirmed it and sends its changes;
 * - `paused`: the consumer is behind; cancelled on the server until it catches up;
 * - `disconnected`: the stream broke; it will be re-created from where it was;
 * - `closed`: ended (see {@link Watcher.error}).
 */
export type WatcherState = "creating" | "watching" | "paused" | "disconnected" | "closed";

/** Events of a {@link Watcher}. */
export interface WatcherEvents {
  /** A batch: every event of one revision, or a progress notification. */
  batch: [batch: WatchBatch];
  /** One put, after its batch's `batch` event. */
  put: [event: WatchEvent];
  /** One delete, after its batch's `batch` event. */
  delete: [event: WatchEvent];
  /** The watcher changed {@link WatcherState}. */
  state: [state: WatcherState];
  /** The watcher ended with an error (compaction, a server cancel); `end` follows. */
  error: [error: EtcdError];
  /** The watcher ended. */
  end: [];
}

/** What a watcher needs from the stream that carries it. @internal */
export interface WatcherHost {
  /** Creates `w` on the server from `w.nextRevision`, now or when the stream is up. */
  attach(w: Watcher): void;
  /** Cancels `w` on the server (it stays with the stream, e.g. paused). */
  detach(w: Watcher): void;
  /** Cancels `w` on the server and forgets it; resolves when the server confirmed. */
  remove(w: Watcher): Promise<void> | undefined;
  /** Sends a progress request on the stream. */
  requestProgress(): void;
}

// Bits of Watcher.flags (fixed at creation).
/** @internal */ export const PREV_KV = 1;
/** @internal */ export const PROGRESS_NOTIFY = 2;
/** @internal */ export const FRAGMENT = 4;
/** @internal */ export const NO_PUT = 8;
/** @internal */ export const NO_DELETE = 16;
// Bits of Watcher.marks (change over its life).
const ITERATING = 1;
const WANTS_PROGRESS = 2;
const CONFIRMED = 4;
const AUTH_RETRIED = 8;
const ERROR_DELIVERED = 16;
const ONCE_USED = 32;

const DONE: Promise<IteratorResult<WatchBatch>> = Promise.resolve({ value: undefined, done: true });

interface Waiter {
  resolve(r: IteratorResult<WatchBatch>): void;
  reject(e: unknown): void;
}

/** Settles pending `ready()` calls. */
interface ReadyWaiter {
  resolve(): void;
  reject(e: unknown): void;
}

/** Default of {@link WatchOptions.maxBufferedEvents}. */
export const DEFAULT_MAX_BUFFERED_EVENTS = 10_000;

/**
 * A watch on a key or range: an async iterator of {@link WatchBatch}es, one
 * per revision, in revision order, each revision exactly once, across
 * reconnects and moves to other members.
 *
 * ```ts
 * for await (const batch of etcd.watch("config/", { prefix: true })) {
 *   for (const e of batch.events) console.log(batch.revision, e.type, e.keyText, e.text);
 * }
 * ```
 *
 * The loop ends cleanly when the watcher is closed ({@link Watcher.close},
 * `break`, its `signal`, or the client's `close()`), and throws when the
 * watcher ends with an error: `CompactedError` (with `compactRevision`) when
 * the revision it needs next was compacted, or the typed error of a server
 * cancel (e.g. `PermissionDeniedError`). Breaking out of the loop cancels the
 * watcher on the server.
 *
 * Events instead of a loop: `watcher.on("put", e => ...)`, `on("delete")`,
 * `on("batch")`, `on("error")`, `on("end")`. While listeners for
 * `batch`/`put`/`delete` are attached and nobody iterates, batches go to the
 * listeners only and nothing is buffered.
 *
 * A consumer that falls behind is bounded by `maxBufferedEvents`: past it the
 * watcher is cancelled on the server (state `paused`) and re-created from the
 * next revision once the consumer has read half the buffer.
 */
export class Watcher implements AsyncIterableIterator<WatchBatch> {
  /** @internal Watch ID on the stream while the server has it, else 0. */
  wid = 0;
  /** @internal The revision a (re)create starts from; 0n means "now". */
  nextRevision: bigint;
  /** @internal Options as bits. */
  readonly flags: number;
  private marks = 0;
  private st: WatcherState = "creating";
  private err: EtcdError | undefined;
  /** Why a watcher that ended cleanly ended, when it was not its own close(): for `ready()`. */
  private why: EtcdError | undefined;
  private buf: WatchBatch[] | undefined;
  private bufHead = 0;
  private buffered = 0;
  private readonly limit: number;
  private waiter: Waiter | undefined;
  private fragments: RawEvent[] | undefined;
  private emitter: EventEmitter<WatcherEvents> | undefined;
  private readyWaiters: ReadyWaiter[] | undefined;
  /** Listeners for batch, put and delete; -1 when not counted since the last change. */
  private dataListeners = -1;
  private signal: AbortSignal | undefined;
  private onAbort: (() => void) | undefined;

  /** @internal Made by `etcd.watch()`. */
  constructor(
    private readonly host: WatcherHost,
    /** The watched key (or range start) as sent. */
    readonly key: Uint8Array,
    /** The range end as sent (empty: the single key). */
    readonly rangeEnd: Uint8Array,
    startRevision: bigint,
    flags: number,
    maxBufferedEvents: number,
    signal: AbortSignal | undefined,
  ) {
    this.nextRevision = startRevision;
    this.flags = flags;
    this.limit = maxBufferedEvents;
    if (signal !== undefined) {
      this.signal = signal;
      this.onAbort = () => void this.finish(undefined, new AbortedError(signal.reason));
      signal.addEventListener("abort", this.onAbort, { once: true });
    }
  }

  /** Where the watcher is; see {@link WatcherState}. */
  get state(): WatcherState {
    return this.st;
  }

  /**
   * The last revision this watcher has delivered or buffered, or that a
   * progress notification of its own confirmed: it resumes after it.
   * 0n before the server confirmed a watcher that started "now".
   */
  get revision(): bigint {
    return this.nextRevision === 0n ? 0n : this.nextRevision - 1n;
  }

  /** The error the watcher ended with, if it ended with one. */
  get error(): EtcdError | undefined {
    return this.err;
  }

  /** Events waiting for the consumer. */
  get bufferedEvents(): number {
    return this.buffered;
  }

  /**
   * Resolves once the server has confirmed the watcher (changes from then on
   * will be delivered); rejects if it ends first: with its error, with
   * `ClientClosedError` when the client was closed, `AbortedError` when its
   * signal fired.
   */
  ready(): Promise<void> {
    if ((this.marks & CONFIRMED) !== 0) return Promise.resolve();
    if (this.st === "closed") return Promise.reject(this.err ?? this.why ?? closedBeforeReady());
    return new Promise((resolve, reject) => (this.readyWaiters ??= []).push({ resolve, reject }));
  }

  /**
   * Asks the server for a progress notification on this watcher's stream.
   * It arrives as a batch with `progress: true` and the store's revision.
   * Older servers (etcd issue 15220; 3.4.23 here) may send that answer ahead
   * of events of lower revisions still on their way, so it is not used as a
   * resume point; a watcher's own periodic notifications (`progressNotify`) are.
   */
  requestProgress(): void {
    if (this.st === "closed") return;
    this.marks |= WANTS_PROGRESS;
    this.host.requestProgress();
  }

  /**
   * Ends the watcher: the iterator finishes (after what is buffered), and
   * the watcher is cancelled on the server. Resolves when the server has
   * confirmed the cancel (at once when it did not have the watcher).
   */
  close(): Promise<void> {
    return this.finish(undefined) ?? Promise.resolve();
  }

  /** The next batch; the async iterator protocol (use `for await`). */
  next(): Promise<IteratorResult<WatchBatch>> {
    const buf = this.buf;
    if (buf !== undefined && this.bufHead < buf.length) {
      const value = buf[this.bufHead]!;
      buf[this.bufHead++] = undefined as unknown as WatchBatch;
      if (this.bufHead === buf.length) {
        this.buf = undefined;
        this.bufHead = 0;
      }
      this.buffered -= weight(value);
      if (this.st === "paused" && this.buffered <= this.limit >> 1) this.host.attach(this);
      return Promise.resolve({ value, done: false });
    }
    if (this.st === "closed") {
      if (this.err !== undefined && (this.marks & ERROR_DELIVERED) === 0) {
        this.marks |= ERROR_DELIVERED;
        return Promise.reject(this.err);
      }
      return DONE;
    }
    if (this.waiter !== undefined) return Promise.reject(new EtcdError("next() called while an earlier call is pending", Code.FailedPrecondition));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Stops the loop and cancels the watcher on the server (what `break` calls). */
  return(): Promise<IteratorResult<WatchBatch>> {
    void this.close();
    return DONE;
  }

  /** The watcher is its own async iterator: `for await (const batch of watcher)`. */
  [Symbol.asyncIterator](): this {
    this.marks |= ITERATING;
    return this;
  }

  /** Adds a listener; see {@link WatcherEvents}. */
  on<K extends keyof WatcherEvents>(event: K, listener: (...args: WatcherEvents[K]) => void): this {
    (this.emitter ??= new EventEmitter<WatcherEvents>()).on(event, listener as never);
    this.dataListeners = -1;
    return this;
  }

  /** Adds a one-time listener. */
  once<K extends keyof WatcherEvents>(event: K, listener: (...args: WatcherEvents[K]) => void): this {
    (this.emitter ??= new EventEmitter<WatcherEvents>()).once(event, listener as never);
    // One-time listeners leave by themselves: count data listeners on every batch from now on.
    this.marks |= ONCE_USED;
    return this;
  }

  /** Removes a listener. */
  off<K extends keyof WatcherEvents>(event: K, listener: (...args: WatcherEvents[K]) => void): this {
    this.emitter?.off(event, listener as never);
    this.dataListeners = -1;
    return this;
  }

  // ---------------------------------------------------------------------------
  // Called by the stream.

  /** @internal Not paused or closed: belongs on the server. */
  get wanted(): boolean {
    return this.st !== "paused" && this.st !== "closed";
  }

  /** @internal */
  setState(state: WatcherState): void {
    if (this.st === state || this.st === "closed") return;
    this.st = state;
    if (this.emitter !== undefined) emitSafely(this.emitter, "state", state);
  }

  /** @internal The server confirmed the create; `revision` is its header revision. */
  created(revision: bigint): void {
    // A watch from "now" starts just after the revision the server reports.
    if (this.nextRevision === 0n) this.nextRevision = revision + 1n;
    this.marks = (this.marks | CONFIRMED) & ~AUTH_RETRIED;
    this.setState("watching");
    const waiters = this.readyWaiters;
    if (waiters !== undefined) {
      this.readyWaiters = undefined;
      for (const w of waiters) w.resolve();
    }
  }

  /** @internal True once, when a refused create may be retried on a fresh stream (a stale token). */
  retryAfterAuthRefusal(): boolean {
    if ((this.marks & AUTH_RETRIED) !== 0) return false;
    this.marks |= AUTH_RETRIED;
    return true;
  }

  /** @internal The stream broke; the stream re-creates the watcher when it is back. */
  disconnected(): void {
    this.fragments = undefined;
    if (this.st === "creating" || this.st === "watching") this.setState("disconnected");
  }

  /** @internal Events or a progress notification of this watcher. */
  receive(res: WatchResponse): void {
    let events = res.events;
    if (res.fragment || this.fragments !== undefined) {
      // Fragments of one response: hold them until the last one.
      if (this.fragments === undefined) this.fragments = events.slice();
      else for (const e of events) this.fragments.push(e);
      if (res.fragment) return;
      events = this.fragments;
      this.fragments = undefined;
    }
    if (events.length === 0) {
      // The watcher's own progress notification: it has seen everything up to this revision.
      const rev = res.header?.revision ?? 0n;
      if (rev >= this.nextRevision) this.nextRevision = rev + 1n;
      if ((this.flags & PROGRESS_NOTIFY) !== 0 || (this.marks & WANTS_PROGRESS) !== 0) this.progress(rev);
      return;
    }
    // Events below nextRevision were delivered already (never expected; never delivered twice).
    let i = 0;
    const next = this.nextRevision;
    while (i < events.length && revisionOf(events[i]!) < next) i++;
    while (i < events.length) {
      const j = endOfRevision(events, i);
      if (!this.deliver(batchOf(events, i, j))) return;
      i = j;
    }
  }

  /** @internal A progress notification for the whole stream (not a resume point, see requestProgress). */
  progressForStream(revision: bigint): void {
    if ((this.flags & PROGRESS_NOTIFY) !== 0 || (this.marks & WANTS_PROGRESS) !== 0) this.progress(revision);
  }

  /**
   * @internal Ends the watcher with `error` (or cleanly); `why` is what a
   * pending `ready()` rejects with after a clean end (default: closed before
   * confirmed). Returns the server's cancel confirmation, if one is due.
   */
  finish(error: EtcdError | undefined, why?: EtcdError): Promise<void> | undefined {
    if (this.st === "closed") return undefined;
    this.err = error;
    this.why = why;
    this.st = "closed";
    this.fragments = undefined;
    const ack = this.host.remove(this);
    if (this.onAbort !== undefined) {
      this.signal!.removeEventListener("abort", this.onAbort);
      this.onAbort = undefined;
      this.signal = undefined;
    }
    const w = this.waiter;
    if (w !== undefined) {
      // Nothing is buffered while a reader waits.
      this.waiter = undefined;
      if (error !== undefined) {
        this.marks |= ERROR_DELIVERED;
        w.reject(error);
      } else w.resolve({ value: undefined, done: true });
    }
    const ready = this.readyWaiters;
    if (ready !== undefined) {
      this.readyWaiters = undefined;
      const e = error ?? why ?? closedBeforeReady();
      for (const r of ready) r.reject(e);
    }
    const em = this.emitter;
    if (em !== undefined) {
      emitSafely(em, "state", "closed");
      if (error !== undefined && em.listenerCount("error") > 0) emitSafely(em, "error", error);
      emitSafely(em, "end");
    }
    return ack;
  }

  private progress(revision: bigint): void {
    this.marks &= ~WANTS_PROGRESS;
    this.deliver(progressBatch(revision));
  }

  /** Hands a batch to listeners and the reader; false when the watcher stopped taking more (paused or closed). */
  private deliver(batch: WatchBatch): boolean {
    if (!batch.progress) this.nextRevision = batch.revision + 1n;
    const em = this.emitter;
    if (em !== undefined) {
      if (this.dataListeners < 0 || (this.marks & ONCE_USED) !== 0) {
        this.dataListeners = em.listenerCount("batch") + em.listenerCount("put") + em.listenerCount("delete");
      }
      const listened = this.dataListeners > 0 && emitBatch(em, batch);
      if (this.st === "closed") return false;
      if (listened && (this.marks & ITERATING) === 0) return true;
    }
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.resolve({ value: batch, done: false });
      return this.st !== "closed";
    }
    (this.buf ??= []).push(batch);
    this.buffered += weight(batch);
    if (this.buffered >= this.limit && this.st !== "paused") {
      // A slow consumer: stop the server sending; resume from nextRevision once drained.
      this.fragments = undefined;
      this.host.detach(this);
      this.setState("paused");
      return false;
    }
    return true;
  }
}

/** Emits a batch, then each of its events, to listeners; returns true. */
function emitBatch(em: EventEmitter<WatcherEvents>, batch: WatchBatch): boolean {
  emitSafely(em, "batch", batch);
  for (const e of batch.events) emitSafely(em, e.type, e);
  return true;
}

/** Buffer cost of a batch: its events, and at least one. */
function weight(b: WatchBatch): number {
  return b.events.length || 1;
}

function closedBeforeReady(): EtcdError {
  return new EtcdError("the watcher was closed before the server confirmed it", Code.Canceled);
}
