/**
 * A session: one lease kept alive for as long as the session lives. Locks
 * and elections hang off it: their keys are attached to its lease, so they
 * vanish when the session ends, however it ends.
 * @module
 */
import type { CallOptions } from "../call-options.js";
import type { Etcd } from "../client.js";
import type { Bytes } from "../kv/bytes.js";
import { DeadlineExceededError, LeaseNotFoundError, type LeaseLostError, SessionClosedError, type EtcdError } from "../errors.js";
import type { KeptLease } from "../lease/kept-lease.js";
import { formatLeaseId } from "../lease/lease-id.js";
import { Election } from "./election.js";
import { Mutex } from "./mutex.js";

/**
 * Open sessions by client: one close listener per client ends them all
 * (a listener per session would pile up on the client's signal).
 */
const sessionsByClient = new WeakMap<Etcd, Set<Session>>();

function openSessions(etcd: Etcd): Set<Session> {
  let set = sessionsByClient.get(etcd);
  if (set === undefined) {
    const open = new Set<Session>();
    set = open;
    sessionsByClient.set(etcd, open);
    etcd.closeSignal.addEventListener("abort", () => {
      for (const s of [...open]) s.end(new SessionClosedError());
    }, { once: true });
  }
  return set;
}

/** Default TTL of a session's lease, in seconds. */
export const DEFAULT_SESSION_TTL = 60;

/** Options of `etcd.session()`. */
export interface SessionOptions extends CallOptions {
  /**
   * TTL of the session's lease in seconds (default 60): how long the locks
   * and candidacies of a crashed or cut-off process block the others.
   */
  ttl?: number;
  /**
   * Resume with an existing lease instead of granting one (e.g. after a
   * restart, to find the locks and candidacies it holds): it is kept alive
   * from now on, and `ttl` is ignored.
   */
  lease?: bigint;
}

/** What sessions, mutexes and elections need of the client or namespace they work in. */
export type KeyView = Pick<Etcd, "get" | "delete" | "txn" | "watch">;

/** The budget of one wait on a session; see `Session.wait`. @internal */
export interface SessionWait {
  /** Fires when the caller aborts, the deadline passes or the session ends. */
  signal: AbortSignal;
  /** Call options carrying `signal`. */
  call: CallOptions;
  /** The error to report for a wait that failed with `e`. */
  explain(e: unknown): unknown;
  /** Ends the budget (clears its timer). */
  done(): void;
}

/** Where a {@link Session} is: `alive`; `lost` (see {@link Session.lost}); `closed` by close(), orphan() or the client's close(). */
export type SessionState = "alive" | "lost" | "closed";

/**
 * A lease kept alive for the session's lifetime. Get one with
 * `await etcd.session({ ttl: 10 })` (or from a namespace, whose keys its
 * locks and elections then use):
 *
 * ```ts
 * const session = await etcd.session({ ttl: 10 });
 * session.lost.then((err) => console.error(`session lost: ${err.reason}`));
 * await session.withLock("jobs/cleanup", async (mutex) => {
 *   // writes guarded by mutex.isOwner() cannot land once the lock is lost
 *   await etcd.txn().if(mutex.isOwner()).then(Op.put("jobs/last", "now")).commit();
 * });
 * await session.close(); // revokes the lease: every lock and candidacy ends now
 * ```
 *
 * Loss is never silent: {@link Session.lost} resolves and {@link Session.signal}
 * aborts with the lease layer's `LeaseLostError` (its `reason` says why), and
 * every wait of the session's locks and elections rejects with it.
 */
export class Session {
  private st: SessionState = "alive";
  private readonly ended = new AbortController();
  private readonly lostPromise: Promise<LeaseLostError>;
  private resolveLost!: (e: LeaseLostError) => void;

  private constructor(
    /** The client the session's lease lives on. */
    readonly etcd: Etcd,
    /** The client or namespace the session's locks and elections use. @internal */
    readonly view: KeyView,
    /** The kept-alive lease. */
    readonly lease: KeptLease,
  ) {
    this.lostPromise = new Promise((resolve) => (this.resolveLost = resolve));
    lease.once("lost", (e) => {
      if (this.st !== "alive") return;
      this.st = "lost";
      openSessions(etcd).delete(this);
      this.resolveLost(e);
      this.ended.abort(e);
    });
    if (lease.lostError !== undefined) {
      this.st = "lost";
      this.resolveLost(lease.lostError);
      this.ended.abort(lease.lostError);
    }
    if (this.st === "alive") openSessions(etcd).add(this);
    if (etcd.closeSignal.aborted) this.end(new SessionClosedError());
  }

  /** @internal Made by `etcd.session()` and `namespace.session()`. */
  static async create(etcd: Etcd, view: KeyView, options: SessionOptions = {}): Promise<Session> {
    const call: CallOptions = {};
    if (options.signal !== undefined) call.signal = options.signal;
    if (options.timeoutMs !== undefined) call.timeoutMs = options.timeoutMs;
    const lease = options.lease !== undefined ? await etcd.lease.keepAlive(options.lease, call) : await etcd.lease.create(options.ttl ?? DEFAULT_SESSION_TTL, call);
    return new Session(etcd, view, lease);
  }

  /** The lease ID. */
  get id(): bigint {
    return this.lease.id;
  }

  /** The lease ID in hex, as it appears in lock and election keys. */
  get idHex(): string {
    return formatLeaseId(this.lease.id);
  }

  /** `alive`, `lost` or `closed`. */
  get state(): SessionState {
    return this.st;
  }

  /**
   * Resolves (never rejects) with the `LeaseLostError` when the lease is lost:
   * it expired, was revoked elsewhere, or could not be refreshed in time.
   * Stays pending when the session is closed or orphaned instead.
   */
  get lost(): Promise<LeaseLostError> {
    return this.lostPromise;
  }

  /**
   * Aborts when the session ends, however it ends: with the `LeaseLostError`
   * when lost, with `SessionClosedError` on close(), orphan() or the client's
   * close(). Pass it to work that must stop with the session.
   */
  get signal(): AbortSignal {
    return this.ended.signal;
  }

  /** A client-side mutex on `name` (keys `name/<lease hex>`). See {@link Mutex}. */
  mutex(name: Bytes): Mutex {
    return new Mutex(this, name);
  }

  /** A client-side election on `name` (keys `name/<lease hex>`). See {@link Election}. */
  election(name: Bytes): Election {
    return new Election(this, name);
  }

  /**
   * Runs `fn` while holding the lock `name`, and releases it afterwards,
   * also when `fn` throws. `fn` gets the held mutex: guard its writes with
   * `mutex.isOwner()`, and stop when `mutex.signal` aborts.
   */
  async withLock<T>(name: Bytes, fn: (mutex: Mutex) => T | Promise<T>, options?: CallOptions): Promise<T> {
    const mutex = this.mutex(name);
    await mutex.lock(options);
    try {
      return await fn(mutex);
    } finally {
      // A lost session released the lock already: nothing to undo then.
      if (this.st === "alive") await mutex.unlock();
    }
  }

  /**
   * Ends the session: stops the keep-alive and revokes the lease, which
   * deletes every key on it (locks released, candidacies withdrawn) at once.
   * A lease already gone is not an error. Idempotent.
   */
  async close(options?: CallOptions): Promise<void> {
    const wasAlive = this.st === "alive";
    this.end(new SessionClosedError());
    if (!wasAlive) return;
    try {
      await this.lease.revoke(options);
    } catch (e) {
      if (!(e instanceof LeaseNotFoundError)) throw e;
    }
  }

  /**
   * Ends the session without revoking its lease: the keep-alive stops and
   * the lease, with its locks and candidacies, lapses on the server after its
   * TTL (another process may resume it with the `lease` option meanwhile).
   */
  orphan(): void {
    if (this.st !== "alive") return;
    this.end(new SessionClosedError());
    this.lease.stop();
  }

  /**
   * The budget of a wait on this session (a lock, a campaign): the caller's
   * signal, its `timeoutMs` for the whole wait (none by default), and the
   * session's end, as one signal. Call `done()` when the wait is over. @internal
   */
  wait(options?: CallOptions): SessionWait {
    const signals = [this.signal];
    if (options?.signal !== undefined) signals.push(options.signal);
    let timer: NodeJS.Timeout | undefined;
    const ms = options?.timeoutMs;
    if (ms !== undefined && ms !== Infinity) {
      const deadline = new AbortController();
      timer = setTimeout(() => deadline.abort(new DeadlineExceededError(ms)), ms);
      signals.push(deadline.signal);
    }
    const signal = signals.length === 1 ? this.signal : AbortSignal.any(signals);
    return {
      signal,
      call: { signal },
      explain: (e) => {
        // The session's end explains a failed wait best; then the deadline; then the caller's abort.
        if (this.signal.aborted) return this.signal.reason as EtcdError;
        if (signal.aborted && signal.reason instanceof DeadlineExceededError) return signal.reason;
        return e;
      },
      done: () => clearTimeout(timer),
    };
  }

  /** @internal Ends the session without touching its lease (the client's close() stops every keep-alive). */
  end(reason: EtcdError): void {
    if (this.st !== "alive") return;
    this.st = "closed";
    openSessions(this.etcd).delete(this);
    this.ended.abort(reason);
  }
}

/**
 * Runs a call of the `v3lock`/`v3election` services for `session` (when
 * given): the call also ends when the session does, and then fails with the
 * session's `LeaseLostError` or `SessionClosedError`. @internal
 */
export async function callWithin<T>(session: Session | undefined, options: CallOptions | undefined, fn: (options: CallOptions | undefined) => Promise<T>): Promise<T> {
  if (session === undefined) return fn(options);
  const signal = options?.signal === undefined ? session.signal : AbortSignal.any([options.signal, session.signal]);
  try {
    return await fn({ ...options, signal });
  } catch (e) {
    throw session.signal.aborted ? session.signal.reason : e;
  }
}
