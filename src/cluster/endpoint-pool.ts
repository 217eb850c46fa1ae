/**
 * The endpoints of a client and their health: calls go to one pinned
 * endpoint; when it fails the pin moves to the next healthy one, and the
 * failed one waits out an exponential, jittered, capped backoff before it is
 * tried again.
 * @module
 */
import { EventEmitter } from "node:events";
import type { Transport } from "@connectrpc/connect";
import type { Connection } from "../transport/connection.js";
import type { Endpoint } from "./endpoint.js";
import { InvalidOptionError, type EtcdError } from "../errors.js";

/** Backoff of failed endpoints. */
export interface BackoffOptions {
  /** First wait after a failure (default 100 ms). */
  initialMs: number;
  /** Longest wait (default 5000 ms). */
  maxMs: number;
}

/** One endpoint with its transport and health. */
export interface EndpointSlot {
  readonly endpoint: Endpoint;
  /** The HTTP/2 connection, when the built-in transport is used. */
  readonly connection: Connection | undefined;
  readonly transport: Transport;
  /** Closes what the transport holds open; resolves once its sockets are closed. */
  readonly closeTransport: (() => Promise<void>) | undefined;
  /** Failures since the last success, counted once per backoff period (not once per call that saw it). */
  failures: number;
  /** `Date.now()` before which the endpoint is not tried unless nothing else is left; 0 when healthy. */
  retryAt: number;
  lastError: EtcdError | undefined;
  /** `Date.now()` of the last failure, if any. */
  lastFailureAt: number | undefined;
}

/** Events of an {@link EndpointPool}. */
export interface EndpointPoolEvents {
  /** The pinned endpoint changed. */
  pinned: [address: string];
  /** An endpoint failed and backs off until `retryAt` (`Date.now()` scale). */
  failed: [address: string, error: EtcdError, retryAt: number];
  /** An endpoint that had failed answered again. */
  recovered: [address: string];
}

/** The endpoints of one client. */
export class EndpointPool extends EventEmitter<EndpointPoolEvents> {
  private pinnedIndex = 0;

  constructor(
    public slots: EndpointSlot[],
    private readonly backoff: BackoffOptions,
  ) {
    super();
    if (slots.length === 0) throw new InvalidOptionError("at least one endpoint is required");
  }

  /** The endpoint calls go to now. */
  get pinned(): EndpointSlot {
    return this.slots[this.pinnedIndex]!;
  }

  /**
   * The endpoint for the next attempt: the pinned one if it is healthy, else
   * the next healthy one (which becomes pinned), else, when all are backing
   * off, the one whose backoff ends first. `avoid` holds endpoints this call
   * already failed on; they are used again only when nothing else is left.
   */
  pick(avoid?: ReadonlySet<EndpointSlot>): EndpointSlot {
    const slots = this.slots;
    const pinned = slots[this.pinnedIndex]!;
    const now = Date.now();
    if (pinned.retryAt <= now && !avoid?.has(pinned)) return pinned;
    let best: EndpointSlot | undefined;
    for (let i = 1; i <= slots.length; i++) {
      const idx = (this.pinnedIndex + i) % slots.length;
      const s = slots[idx]!;
      if (s.retryAt <= now && !avoid?.has(s)) {
        this.pin(idx);
        return s;
      }
      if (best === undefined || this.rank(s, avoid) < this.rank(best, avoid)) best = s;
    }
    return best!;
  }

  /** Records a success; a failed endpoint becomes healthy again. */
  succeeded(slot: EndpointSlot): void {
    if (slot.failures === 0 && slot.retryAt === 0) return;
    slot.failures = 0;
    slot.retryAt = 0;
    this.emit("recovered", slot.endpoint.address);
  }

  /**
   * Records a failure: the endpoint backs off, and the pin moves away from it.
   * Failures while it already backs off (the other calls that were waiting on
   * the same dial or connection) do not lengthen the backoff: it grows with
   * connection attempts, not with the number of calls that saw one fail.
   */
  failed(slot: EndpointSlot, error: EtcdError): void {
    slot.lastError = error;
    const now = Date.now();
    slot.lastFailureAt = now;
    if (slot.retryAt > now) {
      this.movePinFrom(slot);
      return;
    }
    slot.failures++;
    const ceiling = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(slot.failures - 1, 20));
    // Jitter between half and all of the ceiling, so clients do not return in lockstep.
    slot.retryAt = now + ceiling * (0.5 + Math.random() / 2);
    this.emit("failed", slot.endpoint.address, error, slot.retryAt);
    this.movePinFrom(slot);
  }

  private movePinFrom(slot: EndpointSlot): void {
    if (this.slots[this.pinnedIndex] === slot && this.slots.length > 1) {
      this.pin((this.pinnedIndex + 1) % this.slots.length);
    }
  }

  /**
   * Replaces the endpoint list (from a member list refresh). Slots of
   * endpoints that stay are kept with their connections; `create` makes new ones;
   * removed ones are returned for the caller to close.
   */
  replace(endpoints: Endpoint[], create: (e: Endpoint) => EndpointSlot): EndpointSlot[] {
    if (endpoints.length === 0) return [];
    const old = new Map(this.slots.map((s) => [s.endpoint.origin, s]));
    const pinnedOrigin = this.pinned.endpoint.origin;
    const next = endpoints.map((e) => {
      const s = old.get(e.origin);
      old.delete(e.origin);
      return s ?? create(e);
    });
    this.slots = next;
    const idx = next.findIndex((s) => s.endpoint.origin === pinnedOrigin);
    this.pinnedIndex = idx >= 0 ? idx : 0;
    if (idx < 0) this.emit("pinned", this.pinned.endpoint.address);
    return [...old.values()];
  }

  private pin(idx: number): void {
    if (idx === this.pinnedIndex) return;
    this.pinnedIndex = idx;
    this.emit("pinned", this.slots[idx]!.endpoint.address);
  }

  private rank(s: EndpointSlot, avoid: ReadonlySet<EndpointSlot> | undefined): number {
    // Endpoints this call has not tried come first, then by the end of their backoff.
    return (avoid?.has(s) ? 1e15 : 0) + s.retryAt;
  }
}
