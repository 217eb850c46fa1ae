/**
 * etcd's `v3election` gRPC service, typed: the server runs the election
 * recipe for the client. Candidates campaign with a lease; the one whose key
 * (`name/<lease id in hex>`) has the lowest create revision leads; its value
 * is the election's current value. Leadership ends with `resign` or with the
 * lease.
 * @module
 */
import { Code, type Client } from "@connectrpc/connect";
import type { Election, LeaderKey as RawLeaderKey } from "../../gen/etcd/server/etcdserver/api/v3election/v3electionpb/v3election_pb.js";
import { toConnectOptions, type CallOptions } from "../call-options.js";
import type { Etcd } from "../client.js";
import { toBytes, type Bytes } from "../kv/bytes.js";
import { KeyValue } from "../kv/key-value.js";
import { ElectionNoLeaderError, EtcdError, InvalidOptionError } from "../errors.js";
import { Namespace } from "../namespace/namespace.js";
import type { KeyPrefix } from "../namespace/key-prefix.js";
import { checkLease, serviceName } from "./lock-service.js";

/**
 * Proof of leadership returned by {@link ElectionService.campaign}; pass it to
 * `proclaim` and `resign`. Keys are as the service that returned it sees them
 * (inside its namespace): use it with that same service.
 */
export interface LeaderKey {
  /** The election's name. */
  name: Uint8Array;
  /** The leader's key, `name/<lease id in hex>`. */
  key: Uint8Array;
  /** Create revision of the leader's key: leadership holds while the key exists with this revision. */
  rev: bigint;
  /** The lease the leader's key is attached to. */
  lease: bigint;
}

/**
 * The `v3election` service. Create one per client or namespace:
 *
 * ```ts
 * const elections = new ElectionService(etcd);
 * const { ID } = await etcd.raw.lease.leaseGrant({ TTL: 10n });
 * const { leader } = await elections.campaign("svc/leader", ID, "node-1", { timeoutMs: 60_000 });
 * // ... leader-only work, while the lease is kept alive ...
 * await elections.resign(leader);
 * ```
 *
 * `campaign`, `proclaim` and `resign` are writes: when their connection
 * breaks they fail with `OutcomeUnknownError`. `campaign` waits until the
 * caller leads: give it a `timeoutMs` that fits (the client's default request
 * timeout applies otherwise); the server withdraws the candidacy when it is
 * aborted while waiting.
 */
export class ElectionService {
  private readonly raw: Client<typeof Election>;
  private readonly keys: KeyPrefix | undefined;
  private readonly closed: AbortSignal;

  constructor(client: Etcd | Namespace) {
    const etcd = client instanceof Namespace ? client.etcd : client;
    this.raw = etcd.raw.election;
    this.keys = client instanceof Namespace ? client.keys : undefined;
    this.closed = etcd.closeSignal;
  }

  /** Waits until the caller, with `lease`, leads election `name` with `value`. */
  async campaign(name: Bytes, lease: bigint, value: Bytes, options?: CallOptions): Promise<{
    /** Proof of leadership, for `proclaim` and `resign`. */
    leader: LeaderKey;
    /** Store revision when the campaign won. */
    revision: bigint;
  }> {
    const req = { name: serviceName(name, this.keys), lease: checkLease(lease), value: toBytes(value, "value") };
    const res = await this.raw.campaign(req, toConnectOptions(options));
    if (res.leader === undefined) throw new EtcdError("campaign answered without a leader key", Code.Internal);
    return { leader: this.fromServer(res.leader), revision: res.header?.revision ?? 0n };
  }

  /**
   * Sets a new value while still leading, without a new election.
   * @throws ElectionNotLeaderError when `leader` no longer leads (resigned, or its lease ended).
   */
  async proclaim(
    leader: LeaderKey,
    value: Bytes,
    options?: CallOptions,
  ): Promise<{
    /** Store revision after the new value was written. */
    revision: bigint;
  }> {
    const res = await this.raw.proclaim({ leader: this.toServer(leader), value: toBytes(value, "value") }, toConnectOptions(options));
    return { revision: res.header?.revision ?? 0n };
  }

  /** The current leader's pair (its key and value), or undefined when nobody leads. */
  async leader(name: Bytes, options?: CallOptions): Promise<KeyValue | undefined> {
    try {
      const res = await this.raw.leader({ name: serviceName(name, this.keys) }, toConnectOptions(options));
      return res.kv === undefined ? undefined : new KeyValue(this.strip(res.kv));
    } catch (e) {
      if (e instanceof ElectionNoLeaderError) return undefined;
      throw e;
    }
  }

  /**
   * Gives up leadership (deletes the leader's key if it still leads); the next
   * candidate takes over. Resigning a leadership already lost is not an error.
   */
  async resign(
    leader: LeaderKey,
    options?: CallOptions,
  ): Promise<{
    /** Store revision after the leader's key was deleted. */
    revision: bigint;
  }> {
    const res = await this.raw.resign({ leader: this.toServer(leader) }, toConnectOptions(options));
    return { revision: res.header?.revision ?? 0n };
  }

  /**
   * The leader's pair now (once someone leads) and again at every change: a
   * new value proclaimed, or a new leader. A server stream: `for await` it.
   * It ends, without an error, when `signal` fires, when the client closes,
   * when the loop is left (which cancels the stream on the server) or when the
   * server ends it; a broken connection ends it with the error. It does not
   * resume by itself: observe again to carry on.
   */
  async *observe(name: Bytes, options?: { signal?: AbortSignal }): AsyncGenerator<KeyValue, void, undefined> {
    const req = { name: serviceName(name, this.keys) };
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    const signals = [this.closed, options?.signal].filter((s): s is AbortSignal => s !== undefined);
    if (signals.some((s) => s.aborted)) return;
    for (const s of signals) s.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const res of this.raw.observe(req, { signal: stop.signal })) {
        if (res.kv !== undefined) yield new KeyValue(this.strip(res.kv));
      }
    } catch (e) {
      if (stop.signal.aborted) return;
      throw e;
    } finally {
      for (const s of signals) s.removeEventListener("abort", onAbort);
      stop.abort();
    }
  }

  private strip<T extends { key: Uint8Array }>(kv: T): T {
    if (this.keys !== undefined) kv.key = this.keys.strip(kv.key);
    return kv;
  }

  private fromServer(l: RawLeaderKey): LeaderKey {
    const k = this.keys;
    return { name: k ? k.strip(l.name) : l.name, key: k ? k.strip(l.key) : l.key, rev: l.rev, lease: l.lease };
  }

  private toServer(l: LeaderKey): { name: Uint8Array; key: Uint8Array; rev: bigint; lease: bigint } {
    if (l === undefined || l === null || typeof l !== "object") throw new InvalidOptionError("a LeaderKey from campaign() is required");
    const k = this.keys;
    const name = toBytes(l.name, "leader name");
    const key = toBytes(l.key, "leader key");
    return { name: k ? k.key(name) : name, key: k ? k.key(key) : key, rev: l.rev, lease: checkLease(l.lease) };
  }
}
