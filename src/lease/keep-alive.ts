/**
 * The client's one LeaseKeepAlive stream, shared by every lease it keeps
 * alive.
 *
 * - Each lease is refreshed a third of its TTL after its last answer. Refreshes
 *   that fall due together (within one slot of the {@link Schedule}) go out
 *   as one write.
 * - A lease is lost when the server answers TTL <= 0, or when its deadline
 *   (the TTL, counted from when its last answered refresh was sent) passes
 *   without an answer. Both are reported, with the reason.
 * - When the stream fails it is opened again at once (then with backoff) on
 *   the endpoint the pool picks, which moves away from a failed endpoint, and
 *   every refresh that is due or was left unanswered is sent again at once.
 * - The stream moves to the leader once it is found: followers forward each
 *   renewal to the leader, one at a time.
 * - A stream whose member stops answering (SIGSTOP, a network blackhole)
 *   sends no error: when requests are outstanding and nothing comes back for
 *   a fifth of the shortest TTL among them (0.25-2 s), the endpoint is marked
 *   failed and the stream moves, long before TCP or PINGs would notice.
 * - The stream is open only while there is something to keep alive.
 * @module
 */
import { ClientClosedError, DeadlineExceededError, AbortedError, EndpointUnavailableError, EtcdError, LeaseLostError, LeaseNotFoundError, toEtcdError, type LeaseLostReason } from "../errors.js";
import { Code } from "@connectrpc/connect";
import type { EndpointSlot } from "../cluster/endpoint-pool.js";
import { classifyFailure, retryDelayMs } from "../cluster/retry.js";
import { encodeKeepAliveFrame, leaseIdHalves, leaseIdOf } from "./keep-alive-codec.js";
import { LeaseTable, type TableEntry } from "./lease-table.js";
import { Schedule, systemClock, type Clock, type Scheduled } from "./schedule.js";
import type { KeptLease } from "./kept-lease.js";

/** One keep-alive request: the lease ID and its framed bytes. */
export interface KeepAliveRequest {
  readonly id: bigint;
  readonly frame: Uint8Array;
}

/** What a wire reports to the stream that opened it. */
export interface WireEvents {
  /** A `LeaseKeepAliveResponse`: the lease ID's unsigned 32-bit halves and its TTL in seconds (<= 0: gone). */
  response(idHi: number, idLo: number, ttl: number): void;
  /** The stream ended: `error` is what the transport or the server said (undefined: a clean end). Called once. */
  end(error: unknown): void;
}

/** One open LeaseKeepAlive stream on one endpoint (see `keep-alive-wire.ts`). */
export interface KeepAliveWire {
  /** Sends the requests, in one write where the transport allows. */
  send(requests: readonly KeepAliveRequest[]): void;
  /** Cancels the stream; no event follows. */
  close(): void;
}

/** Opens a wire on an endpoint. */
export type OpenWire = (slot: EndpointSlot, events: WireEvents) => KeepAliveWire;

/** The part of the endpoint pool the stream uses. */
export interface WirePool {
  readonly slots: readonly EndpointSlot[];
  pick(): EndpointSlot;
  failed(slot: EndpointSlot, error: EtcdError): void;
  succeeded(slot: EndpointSlot): void;
}

/** Options of a {@link KeepAliveStream}. */
export interface KeepAliveStreamOptions {
  pool: WirePool;
  openWire: OpenWire;
  /** Finds the leader's endpoint, where the stream is best placed (see `leader-locator.ts`). */
  locateLeader?: () => Promise<EndpointSlot | undefined>;
  clock?: Clock;
  /**
   * Granularity of the refresh schedule in ms (default 100): refreshes go out
   * up to this much early, losses are reported up to this much late. Coarser
   * slots mean fewer, larger writes (measured: 100 ms costs about a third
   * less CPU than 50 ms with 5,000 leases).
   */
  slotMs?: number;
}

/** Least time between two searches for the leader; doubled (up to a minute) while none is found. */
const LOCATE_EVERY_MS = 5000;
const LOCATE_MAX_MS = 60_000;
/** Bounds of the "no answer" time after which a stream counts as hung. */
const HUNG_MIN_MS = 250;
const HUNG_MAX_MS = 2000;

/** @internal One kept lease's bookkeeping (times are monotonic ms). */
export class LeaseEntry implements Scheduled, KeepAliveRequest, TableEntry {
  wakeSlot = -1;
  kept = false;
  readonly idHi: number;
  readonly idLo: number;
  readonly frame: Uint8Array;
  handle!: KeptLease;
  /** The TTL the server last reported, in ms. */
  ttlMs: number;
  /** When the lease expires unless refreshed (conservative). */
  expiresAt: number;
  /** When the next refresh falls due. */
  dueAt: number;
  /** When the oldest unanswered refresh was sent; 0 when none is outstanding. */
  sentAt = 0;
  /** Set while this client revokes the lease, so its loss reads `revoked`. */
  revoking = false;

  constructor(
    readonly id: bigint,
    ttlSeconds: number,
    startedAt: number,
    dueAt: number,
    private readonly clock: Clock,
  ) {
    [this.idHi, this.idLo] = leaseIdHalves(id);
    this.frame = encodeKeepAliveFrame(id);
    this.ttlMs = ttlSeconds * 1000;
    this.expiresAt = startedAt + this.ttlMs;
    this.dueAt = dueAt;
  }

  /** Converts a monotonic time of this entry to epoch ms. */
  wallTime(mono: number): number {
    return Date.now() + (mono - this.clock.now());
  }
}

interface OnceWaiter {
  resolve(r: { ttl: number; sentAt: number }): void;
  reject(e: unknown): void;
  sentAt: number;
}

/** The state of one opened wire. */
interface WireState {
  wire: KeepAliveWire | undefined;
  slot: EndpointSlot;
}

/** @internal The multiplexed keep-alive stream of one client. */
export class KeepAliveStream {
  private readonly entries = new LeaseTable<LeaseEntry>();
  private readonly waiters = new Map<bigint, OnceWaiter[]>();
  private readonly schedule: Schedule<LeaseEntry>;
  private readonly clock: Clock;
  private readonly slotMs: number;
  private current: WireState | undefined;
  /** Requests sent on the current wire and not answered yet. */
  private outstanding = 0;
  /**
   * When the current wire counts as hung unless an answer comes: each request
   * may wait a fifth of its lease's TTL, counted from its send or from the
   * last answer, whichever is later (etcd answers a stream's requests in order).
   */
  private hungAt = Infinity;
  /** The shortest wait allowed to any request outstanding since the wire was last idle. */
  private hungAfterMs = Infinity;
  private hungTimer: unknown;
  private hungConfirm: unknown;
  /** Leases past their deadline at the last wake-up, checked again once pending answers are read. */
  private suspects: LeaseEntry[] = [];
  private lossCheck: unknown;
  private reopenTimer: unknown;
  /** The leader's endpoint, once found; forgotten when a stream on it fails. */
  private leader: EndpointSlot | undefined;
  private locating = false;
  private lastLocateAt = -Infinity;
  private locateEveryMs = LOCATE_EVERY_MS;
  private locateTimer: unknown;
  /** Wires that failed since the last answer. */
  private failures = 0;
  /** Why the last wire failed, until an answer comes. */
  private lastError: EtcdError | undefined;
  private pendingOnce: KeepAliveRequest[] = [];
  private flushQueued = false;
  private idleCheck: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly options: KeepAliveStreamOptions) {
    this.clock = options.clock ?? systemClock;
    this.slotMs = options.slotMs ?? 100;
    this.schedule = new Schedule(this.slotMs, (items, now) => this.onDue(items, now), this.clock);
  }

  /** Leases kept alive now. */
  get size(): number {
    return this.entries.size;
  }

  /** `host:port` the stream is open on, if it is. */
  get endpoint(): string | undefined {
    return this.current?.slot.endpoint.address;
  }

  /** The entry of a kept lease. */
  entry(id: bigint): LeaseEntry | undefined {
    return this.entries.get(id);
  }

  /**
   * Starts keeping `id` alive. `ttl` (s) was reported by an answer to a
   * request sent at `startedAt` (monotonic ms), so the lease lives at least
   * until `startedAt + ttl`. The first refresh is due a third of the TTL from
   * now, or at once with `refreshNow`.
   */
  keep(id: bigint, ttl: number, startedAt: number, refreshNow: boolean, makeHandle: (e: LeaseEntry) => KeptLease): LeaseEntry {
    if (this.closed) throw new ClientClosedError();
    const existing = this.entries.get(id);
    if (existing !== undefined) return existing;
    const now = this.clock.now();
    const e = new LeaseEntry(id, ttl, startedAt, refreshNow ? now : now + (ttl * 1000) / 3, this.clock);
    e.handle = makeHandle(e);
    this.entries.add(e);
    this.schedule.at(e, e.dueAt, "early");
    return e;
  }

  /** Stops keeping a lease alive (it lapses on the server). */
  release(e: LeaseEntry): void {
    if (!this.entries.delete(e)) return;
    this.schedule.cancel(e);
    e.handle.markStopped();
    this.closeIfIdle();
  }

  /** Reports a kept lease lost because this client revoked it, or found it gone. */
  revoked(id: bigint, reason: "revoked" | "not-found"): void {
    const e = this.entries.get(id);
    if (e !== undefined) this.lose(e, reason, this.clock.now());
  }

  /**
   * One refresh of `id`, answered over the shared stream: its TTL, and when
   * the answered request was sent. Rejects with `LeaseNotFoundError` when the
   * lease does not exist.
   */
  once(id: bigint, timeoutMs: number, signal: AbortSignal | undefined): Promise<{ ttl: number; sentAt: number }> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    if (signal?.aborted) return Promise.reject(new AbortedError(signal.reason));
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const settle = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const list = this.waiters.get(id);
        if (list !== undefined) {
          const i = list.indexOf(waiter);
          if (i >= 0) list.splice(i, 1);
          if (list.length === 0) this.waiters.delete(id);
        }
        this.closeIfIdle();
      };
      const waiter: OnceWaiter = {
        sentAt: 0,
        resolve: (r) => {
          settle();
          resolve(r);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      };
      const onAbort = (): void => waiter.reject(new AbortedError(signal!.reason));
      signal?.addEventListener("abort", onAbort, { once: true });
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => waiter.reject(new DeadlineExceededError(timeoutMs, this.lastError !== undefined ? [this.lastError] : [], this.endpoint)), timeoutMs);
      }
      const list = this.waiters.get(id);
      if (list !== undefined) list.push(waiter);
      else this.waiters.set(id, [waiter]);
      this.pendingOnce.push({ id, frame: encodeKeepAliveFrame(id) });
      if (!this.flushQueued) {
        this.flushQueued = true;
        queueMicrotask(this.flushOnce);
      }
    });
  }

  /** Ends everything: leases become `stopped`, waiters fail with `ClientClosedError`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.schedule.clear();
    this.dropWire();
    if (this.lossCheck !== undefined) this.clock.cancelAfterIo(this.lossCheck);
    this.lossCheck = undefined;
    this.suspects = [];
    if (this.idleCheck !== undefined) clearImmediate(this.idleCheck);
    this.idleCheck = undefined;
    if (this.reopenTimer !== undefined) this.clock.clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    if (this.locateTimer !== undefined) this.clock.clearTimeout(this.locateTimer);
    this.locateTimer = undefined;
    const entries = this.entries.clear();
    for (const e of entries) e.handle.markStopped();
    const waiters = [...this.waiters.values()].flat();
    this.waiters.clear();
    for (const w of waiters) w.reject(new ClientClosedError());
  }

  // -------------------------------------------------------------------------

  private readonly flushOnce = (): void => {
    this.flushQueued = false;
    const reqs = this.pendingOnce;
    this.pendingOnce = [];
    // Without a wire, opening one sends every waiter's request.
    if (this.closed || reqs.length === 0) return;
    if (this.current?.wire === undefined) {
      this.ensureWire();
      return;
    }
    this.send(reqs.filter((r) => this.waiters.has(r.id)), this.clock.now());
  };

  /** Leases whose refresh fell due or whose deadline came. */
  private onDue(items: LeaseEntry[], now: number): void {
    const batch: LeaseEntry[] = [];
    const early = now + this.slotMs;
    for (const e of items) {
      if (!e.kept) continue;
      if (now >= e.expiresAt) {
        this.suspect(e);
        continue;
      }
      if (e.sentAt === 0 && e.dueAt <= early) {
        batch.push(e);
        // Now watch its deadline; an answer reschedules it.
        this.schedule.at(e, e.expiresAt, "late");
      } else if (e.sentAt !== 0) {
        // Sent and not answered yet: wait for the answer or the deadline.
        this.schedule.at(e, e.expiresAt, "late");
      } else {
        this.schedule.at(e, e.dueAt, "early");
      }
    }
    if (batch.length === 0) return;
    if (this.current?.wire !== undefined) this.send(batch, now);
    else this.ensureWire();
  }

  private send(reqs: readonly KeepAliveRequest[], now: number): void {
    const state = this.current;
    if (state?.wire === undefined || reqs.length === 0) return;
    this.outstanding += reqs.length;
    let minTtl = Infinity;
    for (let i = 0; i < reqs.length; i++) {
      const r = reqs[i]!;
      const e = r instanceof LeaseEntry ? r : this.entries.get(r.id);
      if (e !== undefined) {
        if (e.sentAt === 0) e.sentAt = now;
        if (e.ttlMs < minTtl) minTtl = e.ttlMs;
      }
      if (!(r instanceof LeaseEntry)) {
        const ws = this.waiters.get(r.id);
        if (ws !== undefined) for (const w of ws) if (w.sentAt === 0) w.sentAt = now;
      }
    }
    const allowed = Math.min(HUNG_MAX_MS, Math.max(HUNG_MIN_MS, minTtl / 5));
    if (allowed < this.hungAfterMs) this.hungAfterMs = allowed;
    if (now + allowed < this.hungAt) this.hungAt = now + allowed;
    state.wire.send(reqs);
    this.armHungCheck(now);
  }

  /** Opens a wire unless one is open or a reopen is scheduled. */
  private ensureWire(): void {
    if (this.closed || this.current !== undefined || this.reopenTimer !== undefined) return;
    if (this.entries.size === 0 && this.waiters.size === 0) return;
    this.open();
  }

  private open(): void {
    const pool = this.options.pool;
    const leader = this.leader;
    const slot = leader !== undefined && leader.retryAt <= Date.now() && pool.slots.includes(leader) ? leader : pool.pick();
    const state: WireState = { wire: undefined, slot };
    this.current = state;
    this.outstanding = 0;
    this.hungAfterMs = Infinity;
    this.hungAt = Infinity;
    const events: WireEvents = {
      response: (idHi, idLo, ttl) => {
        if (this.current === state) this.onResponse(state, idHi, idLo, ttl);
      },
      end: (error) => {
        if (this.current === state) this.onEnd(state, error, undefined);
      },
    };
    let wire: KeepAliveWire;
    try {
      wire = this.options.openWire(slot, events);
    } catch (e) {
      this.onEnd(state, e, undefined);
      return;
    }
    if (this.current !== state) {
      // It failed while opening.
      wire.close();
      return;
    }
    state.wire = wire;
    // Everything due, left unanswered by the last wire, or awaited by a caller.
    const now = this.clock.now();
    const early = now + this.slotMs;
    const reqs: KeepAliveRequest[] = [];
    for (const e of this.entries.values()) if (e.sentAt !== 0 || e.dueAt <= early) reqs.push(e);
    for (const id of this.waiters.keys()) reqs.push({ id, frame: encodeKeepAliveFrame(id) });
    this.send(reqs, now);
    if (slot !== this.leader) this.locate();
  }

  /**
   * Looks for the leader (at most every 5 s, less often while none is found)
   * and moves the stream there: everything due or unanswered goes out again
   * on the new stream.
   */
  private locate(): void {
    const find = this.options.locateLeader;
    if (find === undefined || this.locating || this.closed || this.locateTimer !== undefined) return;
    if (this.options.pool.slots.length < 2) return;
    const wait = this.lastLocateAt + this.locateEveryMs - this.clock.now();
    if (wait > 0) {
      this.locateTimer = this.clock.setTimeout(() => {
        this.locateTimer = undefined;
        if (this.current !== undefined && this.current.slot !== this.leader) this.locate();
      }, wait);
      return;
    }
    this.locating = true;
    this.lastLocateAt = this.clock.now();
    find().then(
      (slot) => {
        this.locating = false;
        if (this.closed) return;
        this.leader = slot;
        this.locateEveryMs = slot === undefined ? Math.min(LOCATE_MAX_MS, this.locateEveryMs * 2) : LOCATE_EVERY_MS;
        const state = this.current;
        if (state?.wire === undefined || state.slot === slot) return;
        if (slot === undefined || slot.retryAt > Date.now()) {
          // Not found (an election, say): look again later.
          this.locate();
          return;
        }
        this.dropWire();
        this.open();
      },
      () => {
        this.locating = false;
      },
    );
  }

  private onResponse(state: WireState, idHi: number, idLo: number, ttl: number): void {
    const now = this.clock.now();
    if (this.outstanding > 0) this.outstanding--;
    if (this.outstanding === 0) {
      this.hungAfterMs = Infinity;
      this.hungAt = Infinity;
    } else {
      this.hungAt = now + this.hungAfterMs;
    }
    if (this.failures !== 0) {
      this.failures = 0;
      this.lastError = undefined;
      this.options.pool.succeeded(state.slot);
    }
    const e = this.entries.find(idHi, idLo);
    if (e !== undefined) {
      if (ttl <= 0) {
        this.lose(e, e.revoking ? "revoked" : now < e.expiresAt ? "not-found" : "expired", now);
      } else {
        // The server restarted the TTL at some point after the request left: count from the send, to err early.
        const start = e.sentAt !== 0 ? e.sentAt : now;
        e.sentAt = 0;
        e.ttlMs = ttl * 1000;
        e.expiresAt = start + e.ttlMs;
        e.dueAt = now + e.ttlMs / 3;
        this.schedule.at(e, e.dueAt, "early");
        e.handle.refreshed(ttl);
      }
    }
    if (this.waiters.size !== 0) {
      const ws = this.waiters.get(e !== undefined ? e.id : leaseIdOf(idHi, idLo));
      if (ws !== undefined) {
        for (const w of [...ws]) {
          if (ttl > 0) w.resolve({ ttl, sentAt: w.sentAt !== 0 ? w.sentAt : now });
          else w.reject(new LeaseNotFoundError("etcdserver: requested lease not found", Code.NotFound, { endpoint: state.slot.endpoint.address }));
        }
      }
    }
  }

  /**
   * The current wire ended (error from the transport or server), or is
   * abandoned as hung (`hung` set, its endpoint already marked failed).
   */
  private onEnd(state: WireState, error: unknown, hung: EtcdError | undefined): void {
    if (this.current !== state) return;
    this.dropWire();
    // Whoever leads now, the stream goes where the pool says until the leader is found again.
    if (state.slot === this.leader) this.leader = undefined;
    const address = state.slot.endpoint.address;
    let err: EtcdError;
    if (hung !== undefined) {
      err = hung;
    } else if (error === undefined) {
      err = new EndpointUnavailableError(address, "closed", "the server ended the keep-alive stream");
    } else {
      err = toEtcdError(error, address);
      if (classifyFailure(error).endpointFailed) this.options.pool.failed(state.slot, err);
    }
    this.lastError = err;
    this.failures++;
    if (this.entries.size === 0 && this.waiters.size === 0) return;
    // At once on the first failure (the pool has moved to another endpoint), then with backoff.
    const delay = this.failures === 1 ? 0 : retryDelayMs(this.failures - 1, 50, 1000);
    this.reopenTimer = this.clock.setTimeout(() => {
      this.reopenTimer = undefined;
      this.ensureWire();
    }, delay);
  }

  /** Forgets the current wire (cancelling it) and its hung check. */
  private dropWire(): void {
    const state = this.current;
    this.current = undefined;
    this.outstanding = 0;
    this.hungAfterMs = Infinity;
    this.hungAt = Infinity;
    if (this.hungTimer !== undefined) this.clock.clearTimeout(this.hungTimer);
    this.hungTimer = undefined;
    if (this.hungConfirm !== undefined) this.clock.cancelAfterIo(this.hungConfirm);
    this.hungConfirm = undefined;
    state?.wire?.close();
  }

  /** One timer, armed while requests are outstanding; it re-arms itself while answers keep coming. */
  private armHungCheck(now: number): void {
    if (this.hungTimer !== undefined || this.outstanding === 0) return;
    this.hungTimer = this.clock.setTimeout(this.checkHung, Math.max(1, this.hungAt - now));
  }

  private readonly checkHung = (): void => {
    this.hungTimer = undefined;
    const state = this.current;
    if (state === undefined || this.outstanding === 0) return;
    const now = this.clock.now();
    if (now < this.hungAt) {
      this.armHungCheck(now);
      return;
    }
    // Answers may be waiting unread behind a busy turn of the event loop: decide after reading them.
    if (this.hungConfirm === undefined) this.hungConfirm = this.clock.afterIo(this.confirmHung);
  };

  private readonly confirmHung = (): void => {
    this.hungConfirm = undefined;
    const state = this.current;
    if (state === undefined || this.outstanding === 0) return;
    const now = this.clock.now();
    if (now < this.hungAt) {
      this.armHungCheck(now);
      return;
    }
    const err = new EndpointUnavailableError(
      state.slot.endpoint.address,
      "other",
      `no answer on the keep-alive stream within ${Math.round(this.hungAfterMs)} ms (${this.outstanding} refreshes outstanding)`,
    );
    this.options.pool.failed(state.slot, err);
    this.onEnd(state, undefined, err);
  };

  /**
   * A lease past its deadline: lost, unless an answer that already arrived is
   * still waiting to be read (timers run before I/O in each turn of the event
   * loop, so a busy process would otherwise report leases that were refreshed).
   */
  private suspect(e: LeaseEntry): void {
    this.suspects.push(e);
    if (this.lossCheck !== undefined) return;
    this.lossCheck = this.clock.afterIo(() => {
      this.lossCheck = undefined;
      const suspects = this.suspects;
      this.suspects = [];
      const now = this.clock.now();
      for (const s of suspects) {
        if (!s.kept) continue;
        if (now >= s.expiresAt) this.lose(s, "keepalive-failed", now);
        else if (s.wakeSlot === -1) this.schedule.at(s, s.dueAt > now ? s.dueAt : s.expiresAt, s.dueAt > now ? "early" : "late");
      }
    });
  }

  private lose(e: LeaseEntry, reason: LeaseLostReason, now: number): void {
    if (!this.entries.delete(e)) return;
    this.schedule.cancel(e);
    const since =
      reason === "keepalive-failed" ? Math.min(e.dueAt, e.sentAt !== 0 ? e.sentAt : Infinity) : now;
    e.handle.markLost(new LeaseLostError(e.id, reason, new Date(e.wallTime(since)), reason === "keepalive-failed" ? this.lastError : undefined));
    this.closeIfIdle();
  }

  /**
   * With nothing left to keep alive, the stream and its timers go: checked
   * once the current turn is over, so that a lease kept right after a
   * one-off refresh (`keepAlive`) reuses the stream.
   */
  private closeIfIdle(): void {
    if (this.closed || this.entries.size !== 0 || this.waiters.size !== 0 || this.idleCheck !== undefined) return;
    this.idleCheck = setImmediate(() => {
      this.idleCheck = undefined;
      if (this.entries.size !== 0 || this.waiters.size !== 0) return;
      this.dropWire();
      if (this.reopenTimer !== undefined) this.clock.clearTimeout(this.reopenTimer);
      this.reopenTimer = undefined;
      if (this.locateTimer !== undefined) this.clock.clearTimeout(this.locateTimer);
      this.locateTimer = undefined;
    });
  }
}
