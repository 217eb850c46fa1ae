/**
 * The handle of one lease the client keeps alive: its state, the client's
 * estimate of when it expires, and how its loss is reported (a promise, an
 * event, and the state), so that a lost lease is never silent.
 * @module
 */
import { EventEmitter } from "node:events";
import type { CallOptions } from "../call-options.js";
import type { LeaseLostError } from "../errors.js";
import type { LeaseEntry } from "./keep-alive.js";

/** Where a {@link KeptLease} is in its life. */
export type KeptLeaseState =
  /** Refreshed on time so far. */
  | "alive"
  /** Gone, or presumed gone: see {@link KeptLease.lostError}. */
  | "lost"
  /** {@link KeptLease.stop} (or the client's `close()`) ended its keep-alive; it lapses on the server after its TTL. */
  | "stopped";

/** Events of a {@link KeptLease}. */
export interface KeptLeaseEvents {
  /** A refresh was answered; `ttl` is the lease's TTL in seconds. */
  keepalive: [ttl: number];
  /** The lease was lost (emitted once). */
  lost: [error: LeaseLostError];
}

/** What a handle asks of the lease API that created it. */
export interface KeptLeaseOwner {
  stop(entry: LeaseEntry): void;
  revoke(id: bigint, options?: CallOptions): Promise<void>;
}

/**
 * A lease kept alive by the client: refreshed at a third of its TTL over the
 * client's one keep-alive stream, until {@link KeptLease.stop},
 * {@link KeptLease.revoke}, the client's `close()`, or its loss.
 *
 * ```ts
 * const lease = await etcd.lease.create(10);
 * await etcd.put("service/a", "10.0.0.1:80", { lease: lease.id });
 * lease.on("lost", (err) => console.error(err.reason, err.message));
 * const err = await lease.lost; // resolves (never rejects) when the lease is lost
 * ```
 */
export class KeptLease extends EventEmitter<KeptLeaseEvents> {
  /** The lease ID. */
  readonly id: bigint;
  private current: KeptLeaseState = "alive";
  private error: LeaseLostError | undefined;
  private lostPromise: Promise<LeaseLostError> | undefined;
  private resolveLost: ((e: LeaseLostError) => void) | undefined;

  /** @internal */
  constructor(
    private readonly entry: LeaseEntry,
    private readonly owner: KeptLeaseOwner,
  ) {
    super();
    this.id = entry.id;
  }

  /** `alive`, `lost` or `stopped`. */
  get state(): KeptLeaseState {
    return this.current;
  }

  /** The lease's TTL in seconds, as the server last reported it. */
  get ttl(): number {
    return this.entry.ttlMs / 1000;
  }

  /**
   * When the lease expires unless refreshed, as the client estimates it: the
   * TTL counted from when the last answered refresh was sent (the server
   * counts from a little later, so the estimate errs early). The lease is
   * reported lost when this passes without a refresh.
   */
  get expiresAt(): Date {
    return new Date(this.entry.wallTime(this.entry.expiresAt));
  }

  /** Milliseconds left until {@link KeptLease.expiresAt} (negative once past). */
  get remainingMs(): number {
    return this.entry.wallTime(this.entry.expiresAt) - Date.now();
  }

  /** Why the lease was lost, once it is; undefined until then. */
  get lostError(): LeaseLostError | undefined {
    return this.error;
  }

  /**
   * Resolves with the {@link LeaseLostError} when the lease is lost. It never
   * rejects, and stays pending after {@link KeptLease.stop} or the client's
   * `close()` (nothing is lost then; the lease just lapses).
   */
  get lost(): Promise<LeaseLostError> {
    if (this.lostPromise === undefined) {
      this.lostPromise =
        this.error !== undefined ? Promise.resolve(this.error) : new Promise<LeaseLostError>((resolve) => (this.resolveLost = resolve));
    }
    return this.lostPromise;
  }

  /**
   * Stops refreshing the lease; it expires on the server when its TTL runs
   * out (revoke it to end it now). The state becomes `stopped`. Idempotent.
   */
  stop(): void {
    if (this.current !== "alive") return;
    this.owner.stop(this.entry);
  }

  /**
   * Revokes the lease (deleting its keys) and stops refreshing it. The state
   * becomes `lost` with reason `revoked`. Safe to retry; see
   * `Leases.revoke`.
   */
  revoke(options?: CallOptions): Promise<void> {
    return this.owner.revoke(this.id, options);
  }

  /** @internal A refresh was answered. */
  refreshed(ttl: number): void {
    if (this.listenerCount("keepalive") > 0) this.notify("keepalive", ttl);
  }

  /** @internal The lease is lost. */
  markLost(error: LeaseLostError): void {
    if (this.current !== "alive") return;
    this.current = "lost";
    this.error = error;
    if (this.resolveLost !== undefined) this.resolveLost(error);
    else if (this.lostPromise === undefined) this.lostPromise = Promise.resolve(error);
    this.notify("lost", error);
  }

  /**
   * Emits to the user's listeners from inside the keep-alive machinery: a
   * listener that throws must not leave it half-updated, so the exception is
   * rethrown on its own (as an uncaught exception, like any listener's).
   */
  private notify<K extends keyof KeptLeaseEvents>(event: K, ...args: KeptLeaseEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: KeptLeaseEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  /** @internal Keep-alive ended without a loss. */
  markStopped(): void {
    if (this.current === "alive") this.current = "stopped";
  }
}
