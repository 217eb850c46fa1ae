/**
 * The lease API: grant, revoke, time-to-live, list, and keep-alive over the
 * client's one shared keep-alive stream.
 * @module
 */
import type { Client } from "@connectrpc/connect";
import type { Lease as LeaseService } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { toConnectOptions, type CallOptions } from "../call-options.js";
import type { ClusterTransport } from "../cluster/cluster-transport.js";
import { LeaseNotFoundError } from "../errors.js";
import { Code } from "@connectrpc/connect";
import { grantLease, revokeLease } from "./grant-revoke.js";
import { KeepAliveStream, type LeaseEntry } from "./keep-alive.js";
import { wireFactory } from "./keep-alive-wire.js";
import { locateLeader } from "./leader-locator.js";
import { KeptLease, type KeptLeaseOwner } from "./kept-lease.js";
import { checkLeaseId, checkTtl } from "./lease-id.js";

/** Options of {@link Leases.grant} and {@link Leases.create}. */
export interface LeaseGrantOptions extends CallOptions {
  /**
   * The lease ID to grant (1 to 2^63 - 1). Default: a random one chosen by
   * the client, which makes the grant safe to retry after a lost connection.
   * With an ID of your own, a grant whose outcome cannot be known fails with
   * `OutcomeUnknownError`.
   */
  id?: bigint;
}

/** A granted lease. */
export interface LeaseGrantResult {
  /** The lease ID. */
  id: bigint;
  /** Its TTL in seconds (the server raises TTLs below its minimum). */
  ttl: number;
}

/** Options of {@link Leases.timeToLive}. */
export interface LeaseTimeToLiveOptions extends CallOptions {
  /** Also list the keys attached to the lease. */
  keys?: boolean;
}

/** What {@link Leases.timeToLive} reports. */
export interface LeaseTimeToLiveResult {
  /** The lease ID. */
  id: bigint;
  /** Seconds left. */
  ttl: number;
  /** The TTL it was granted with, in seconds. */
  grantedTtl: number;
  /** Keys attached to the lease (only with `keys: true`; empty otherwise). */
  keys: Uint8Array[];
}

/** What {@link Leases.keepAliveOnce} reports. */
export interface KeepAliveOnceResult {
  /** The lease ID. */
  id: bigint;
  /** The lease's TTL in seconds, now running from the start again. */
  ttl: number;
}

/** What the lease API needs from the client. */
export interface LeasesOptions {
  /** Default deadline of calls, retries included. */
  requestTimeoutMs: number;
  /**
   * Carry keep-alives on the built-in transport's raw stream (batched writes,
   * hand-coded messages) when the endpoint has one; otherwise on the typed
   * stream of the transport (which interceptors see).
   */
  rawStream: boolean;
  /** Largest response accepted, in bytes. */
  maxResponseBytes?: number | undefined;
}

/**
 * Leases: grant, revoke, inspect, and keep alive. Reached as `etcd.lease`.
 *
 * ```ts
 * // A lease kept alive until stop(), revoke() or close(); loss is reported.
 * const lease = await etcd.lease.create(10);
 * await etcd.put("service/a", "10.0.0.1:80", { lease: lease.id });
 * lease.on("lost", (err) => console.error(`lease lost (${err.reason})`));
 *
 * // The parts on their own:
 * const { id } = await etcd.lease.grant(30);
 * const { ttl, keys } = await etcd.lease.timeToLive(id, { keys: true });
 * await etcd.lease.keepAliveOnce(id);
 * await etcd.lease.revoke(id);
 * ```
 *
 * Every lease the client keeps alive goes over one LeaseKeepAlive stream,
 * which moves to another member when its member fails or stops answering.
 */
export class Leases {
  private readonly stream: KeepAliveStream;
  private readonly owner: KeptLeaseOwner;

  /** @internal */
  constructor(
    /** The typed connect client of the Lease service. */
    readonly raw: Client<typeof LeaseService>,
    cluster: ClusterTransport,
    private readonly options: LeasesOptions,
  ) {
    this.stream = new KeepAliveStream({
      pool: cluster.pool,
      openWire: wireFactory({ tokens: () => cluster.tokens, raw: options.rawStream, maxReceiveMessageBytes: options.maxResponseBytes }),
      locateLeader: () => locateLeader(cluster),
    });
    this.owner = {
      stop: (entry: LeaseEntry) => this.stream.release(entry),
      revoke: (id: bigint, o?: CallOptions) => this.revoke(id, o),
    };
  }

  /**
   * Grants a lease of `ttl` seconds (it is not kept alive: see
   * {@link Leases.create}). Retried safely after a lost connection.
   *
   * ```ts
   * const { id, ttl } = await etcd.lease.grant(60);
   * await etcd.put("job/42/owner", "worker-7", { lease: id });
   * ```
   *
   * @throws InvalidOptionError for a TTL that is not a whole number >= 1, or a bad ID
   * @throws LeaseTtlTooLargeError above the server's maximum (9,000,000,000 s)
   * @throws LeaseExistsError when the given `id` is taken
   */
  async grant(ttl: number, options?: LeaseGrantOptions): Promise<LeaseGrantResult> {
    checkTtl(ttl);
    const id = options?.id === undefined ? undefined : checkLeaseId(options.id);
    const g = await grantLease(this.raw, ttl, id, options, this.options.requestTimeoutMs);
    return { id: g.id, ttl: g.ttl };
  }

  /**
   * Revokes a lease: it ends now and its keys are deleted. A lease this
   * client keeps alive is reported lost with reason `revoked`. Retried safely
   * after a lost connection.
   *
   * @throws LeaseNotFoundError when there is no such lease (expired, or never granted)
   */
  async revoke(id: bigint, options?: CallOptions): Promise<void> {
    checkLeaseId(id);
    const kept = this.stream.entry(id);
    if (kept !== undefined) kept.revoking = true;
    try {
      await revokeLease(this.raw, id, options, this.options.requestTimeoutMs);
    } catch (e) {
      if (e instanceof LeaseNotFoundError) this.stream.revoked(id, "not-found");
      else if (kept !== undefined) kept.revoking = false;
      throw e;
    }
    this.stream.revoked(id, "revoked");
  }

  /**
   * The time left of a lease, its granted TTL, and optionally its keys.
   *
   * @throws LeaseNotFoundError when there is no such lease
   */
  async timeToLive(id: bigint, options?: LeaseTimeToLiveOptions): Promise<LeaseTimeToLiveResult> {
    checkLeaseId(id);
    const res = await this.raw.leaseTimeToLive({ ID: id, keys: options?.keys === true }, toConnectOptions(options));
    // etcd answers an unknown lease with TTL -1, not an error.
    if (res.TTL < 0n) throw new LeaseNotFoundError("etcdserver: requested lease not found", Code.NotFound);
    return { id: res.ID, ttl: Number(res.TTL), grantedTtl: Number(res.grantedTTL), keys: res.keys };
  }

  /** IDs of every lease the cluster has. */
  async leases(options?: CallOptions): Promise<bigint[]> {
    const res = await this.raw.leaseLeases({}, toConnectOptions(options));
    return res.leases.map((l) => l.ID);
  }

  /**
   * Refreshes a lease once (its TTL starts again), over the shared
   * keep-alive stream.
   *
   * @throws LeaseNotFoundError when there is no such lease
   */
  async keepAliveOnce(id: bigint, options?: CallOptions): Promise<KeepAliveOnceResult> {
    checkLeaseId(id);
    const r = await this.stream.once(id, options?.timeoutMs ?? this.options.requestTimeoutMs, options?.signal);
    return { id, ttl: r.ttl };
  }

  /**
   * Keeps an existing lease alive until {@link KeptLease.stop},
   * {@link KeptLease.revoke} or the client's `close()`. Resolves after the
   * first refresh is answered; a lease already kept alive by this client
   * gives its existing handle.
   *
   * ```ts
   * const lease = await etcd.lease.keepAlive(id);
   * const err = await lease.lost; // LeaseLostError: reason, since
   * ```
   *
   * @throws LeaseNotFoundError when there is no such lease
   */
  async keepAlive(id: bigint, options?: CallOptions): Promise<KeptLease> {
    checkLeaseId(id);
    const existing = this.stream.entry(id);
    if (existing !== undefined) return existing.handle;
    const r = await this.stream.once(id, options?.timeoutMs ?? this.options.requestTimeoutMs, options?.signal);
    return this.keep(id, r.ttl, r.sentAt, false);
  }

  /**
   * Grants a lease and keeps it alive: {@link Leases.grant} then
   * {@link Leases.keepAlive}. Resolves once granted; the first refresh
   * follows at once.
   *
   * ```ts
   * const lease = await etcd.lease.create(10);
   * await etcd.put("lock/owner", "me", { lease: lease.id });
   * // ... later
   * await lease.revoke();
   * ```
   */
  async create(ttl: number, options?: LeaseGrantOptions): Promise<KeptLease> {
    checkTtl(ttl);
    const id = options?.id === undefined ? undefined : checkLeaseId(options.id);
    const startedAt = performance.now();
    const g = await grantLease(this.raw, ttl, id, options, this.options.requestTimeoutMs);
    const answeredAt = performance.now();
    // The server granted it between the call and the answer, so it lives at
    // least until startedAt + TTL: the deadline, with the first refresh at a
    // third of the TTL as usual. But a call that waited long (behind
    // thousands of others) makes that bound useless: then count from the
    // answer (as Go's client does) and refresh at once, so that the answer
    // to a refresh whose send time is known soon sets a deadline that errs early.
    const slow = answeredAt - startedAt > (g.ttl * 1000) / 6;
    return this.keep(g.id, g.ttl, slow ? answeredAt : startedAt, slow);
  }

  /** How many leases this client keeps alive. */
  get keptCount(): number {
    return this.stream.size;
  }

  /** `host:port` of the member the keep-alive stream is on, if it is open. */
  get keepAliveEndpoint(): string | undefined {
    return this.stream.endpoint;
  }

  /** @internal Stops every keep-alive and ends the stream; called by the client's `close()`. */
  close(): void {
    this.stream.close();
  }

  private keep(id: bigint, ttl: number, startedAt: number, refreshNow: boolean): KeptLease {
    return this.stream.keep(id, ttl, startedAt, refreshNow, (e) => new KeptLease(e, this.owner)).handle;
  }
}
