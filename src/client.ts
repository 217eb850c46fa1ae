/**
 * The client: endpoints, connections and the per-service APIs behind one object.
 * @module
 */
import { EventEmitter } from "node:events";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { Auth, Cluster, KV as KVService, Lease, Maintenance, Watch } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { Election } from "../gen/etcd/server/etcdserver/api/v3election/v3electionpb/v3election_pb.js";
import { Lock } from "../gen/etcd/server/etcdserver/api/v3lock/v3lockpb/v3lock_pb.js";
import { AuthTokenSource, type AuthCredentials } from "./cluster/auth-token.js";
import type { Bytes } from "./kv/bytes.js";
import type { CallOptions } from "./call-options.js";
import { ClusterTransport } from "./cluster/cluster-transport.js";
import { Connection, type ConnectionState, type TlsOptions } from "./transport/connection.js";
import { createConnectNodeTransport } from "./transport/connect-node-transport.js";
import { parseEndpoint, type Endpoint } from "./cluster/endpoint.js";
import { EndpointPool, type BackoffOptions, type EndpointSlot } from "./cluster/endpoint-pool.js";
import { localInfo, type EndpointInfo } from "./cluster/endpoint-status.js";
import { EtcdError, toEtcdError } from "./errors.js";
import { createHttp2Transport } from "./transport/http2-transport.js";
import type { KeyValue } from "./kv/key-value.js";
import { KV, type CompactOptions } from "./kv/kv.js";
import type { DeleteOptions, GetOptions, Op, PutOptions } from "./kv/op.js";
import type { PaginateOptions } from "./kv/paginate.js";
import type { DeleteResult, GetResult, OpResult, PutResult } from "./kv/results.js";
import type { Txn } from "./kv/txn.js";
import type { CompactionResponse } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { Leases } from "./lease/lease.js";

/** Options of {@link Etcd}. Only `endpoints` is required. */
export interface EtcdOptions {
  /**
   * Cluster members to talk to: `host:port`, `http://host:port` or `https://host:port`.
   * Bare `host:port` uses TLS when `tls` is set.
   */
  endpoints: string | string[];
  /** Time allowed to open a connection (TCP, TLS and the HTTP/2 handshake). Default 5000 ms. */
  dialTimeoutMs?: number;
  /** Deadline of every unary call without its own `timeoutMs`, retries included. Default 15000 ms. */
  requestTimeoutMs?: number;
  /**
   * PING interval while calls or streams are open, to find dead or hung
   * members. etcd refuses pings closer than 5 s. Default 7000 ms; 0 disables.
   */
  keepAliveIntervalMs?: number;
  /** A PING unanswered for this long marks the connection dead. Default 3000 ms. */
  keepAliveTimeoutMs?: number;
  /** TLS for `https` endpoints (or all, when endpoints carry no scheme). `true` = Node's default CAs. */
  tls?: TlsOptions | boolean;
  /** Send `hasleader` so members without a leader refuse calls instead of serving them. Default false. */
  requireLeader?: boolean;
  /**
   * Retry writes (put, delete, txn, ...) even when they may have reached the
   * server. Default false: such a write fails with `OutcomeUnknownError`
   * rather than risk being applied twice.
   */
  retryWrites?: boolean;
  /**
   * The server's request size limit (`--max-request-bytes`, default 1.5 MiB):
   * larger requests fail before they are sent, with `RequestTooLargeError`.
   */
  maxRequestBytes?: number;
  /** Largest response accepted, in bytes. Default 2 GiB - 1. */
  maxResponseBytes?: number;
  /** The server's `--max-txn-ops` (default 128): larger transactions are refused before sending. */
  maxTxnOps?: number;
  /** connect interceptors (logging, tracing, metrics) run around every call. */
  interceptors?: Interceptor[];
  /**
   * `http2` (default): the built-in gRPC transport over `node:http2`.
   * `connect-node`: connect-node's stock `createGrpcTransport`, slower, kept as a cross-check.
   */
  transport?: "http2" | "connect-node";
  /** Backoff of failed endpoints before they are tried again. */
  backoff?: Partial<BackoffOptions>;
  /**
   * Authenticate with a user name and password: a token is fetched on first
   * use, shared by all calls, and fetched again when it expires.
   */
  auth?: AuthCredentials;
  /**
   * Refresh the endpoint list from the cluster's member list at this interval
   * (client URLs of started, non-learner members). Default 0: never.
   */
  autoSyncIntervalMs?: number;
}

/** Events of {@link Etcd.events}. */
export interface EtcdEvents {
  /** A connection changed state (built-in transport only); `error` says why it dropped. */
  connection: [endpoint: string, state: ConnectionState, error: EtcdError | undefined];
  /** Calls now go to this endpoint. */
  pinned: [endpoint: string];
  /** An endpoint failed and is avoided until `retryAt` (epoch ms). */
  endpointFailed: [endpoint: string, error: EtcdError, retryAt: number];
  /** A failed endpoint answered again. */
  endpointRecovered: [endpoint: string];
  /** The endpoint list was refreshed from the member list. */
  endpointsChanged: [endpoints: string[]];
  /** A background task (auto-sync) failed; the client goes on. */
  error: [error: EtcdError];
}

/** Default of {@link EtcdOptions.maxRequestBytes}: etcd's own default, 1.5 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/** Typed connect clients of every etcd service, for calls and fields the wrappers do not cover. */
export interface RawClients {
  readonly kv: Client<typeof KVService>;
  readonly watch: Client<typeof Watch>;
  readonly lease: Client<typeof Lease>;
  readonly cluster: Client<typeof Cluster>;
  readonly maintenance: Client<typeof Maintenance>;
  readonly auth: Client<typeof Auth>;
  readonly lock: Client<typeof Lock>;
  readonly election: Client<typeof Election>;
}

/**
 * A client for an etcd v3 cluster.
 *
 * ```ts
 * const etcd = new Etcd({ endpoints: ["127.0.0.1:2379"] });
 * await etcd.put("greeting", "hello");
 * console.log((await etcd.get("greeting")).text);
 * etcd.close();
 * ```
 *
 * Connections open on first use. Call {@link Etcd.close} (or use
 * `await using`) when done.
 */
export class Etcd implements AsyncDisposable {
  /** The key-value API (also exposed directly on the client). */
  readonly kv: KV;
  /** Leases: grant, revoke, and keep alive over one shared stream. See {@link Leases}. */
  readonly lease: Leases;
  /** Typed connect clients of every service. */
  readonly raw: RawClients;
  /** The transport all calls go through; pass it to `createClient` for other services. */
  readonly transport: Transport;

  /** Connection and endpoint events, for logging and metrics. */
  readonly events = new EventEmitter<EtcdEvents>();

  /** @internal */
  readonly pool: EndpointPool;
  private readonly cluster: ClusterTransport;
  private readonly createSlot: (e: Endpoint) => EndpointSlot;
  private readonly secureDefault: boolean;
  private readonly syncTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: EtcdOptions) {
    const list = typeof options.endpoints === "string" ? [options.endpoints] : options.endpoints;
    if (!Array.isArray(list) || list.length === 0) throw new TypeError("endpoints: give at least one endpoint");
    const tls = options.tls === true ? {} : options.tls === false ? undefined : options.tls;
    this.secureDefault = tls !== undefined;
    const endpoints = list.map((e) => parseEndpoint(e, this.secureDefault));
    const connOptions = {
      dialTimeoutMs: options.dialTimeoutMs ?? 5000,
      keepAliveIntervalMs: options.keepAliveIntervalMs ?? 7000,
      keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 3000,
      tls,
    };
    const maxSend = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    const stock = options.transport === "connect-node";
    this.createSlot = (endpoint) => {
      if (stock) {
        const transport = createConnectNodeTransport(endpoint, {
          ...connOptions,
          interceptors: options.interceptors,
          maxReceiveMessageBytes: options.maxResponseBytes,
          maxSendMessageBytes: maxSend,
        });
        return slot(endpoint, undefined, transport, () => transport.close());
      }
      const connection = new Connection(endpoint, connOptions);
      connection.on("state", (state, error) => this.events.emit("connection", endpoint.address, state, error));
      const transport = createHttp2Transport(connection, {
        maxSendMessageBytes: maxSend,
        ...(options.maxResponseBytes !== undefined ? { maxReceiveMessageBytes: options.maxResponseBytes } : {}),
        ...(options.interceptors !== undefined ? { interceptors: options.interceptors } : {}),
      });
      return slot(endpoint, connection, transport, () => connection.close());
    };
    this.pool = new EndpointPool(endpoints.map(this.createSlot), {
      initialMs: options.backoff?.initialMs ?? 100,
      maxMs: options.backoff?.maxMs ?? 5000,
    });
    this.pool.on("pinned", (a) => this.events.emit("pinned", a));
    this.pool.on("failed", (a, e, at) => this.events.emit("endpointFailed", a, e, at));
    this.pool.on("recovered", (a) => this.events.emit("endpointRecovered", a));
    this.cluster = new ClusterTransport(this.pool, {
      requestTimeoutMs: options.requestTimeoutMs ?? 15000,
      retryWrites: options.retryWrites === true,
      requireLeader: options.requireLeader === true,
    });
    this.transport = this.cluster;
    this.raw = {
      kv: createClient(KVService, this.cluster),
      watch: createClient(Watch, this.cluster),
      lease: createClient(Lease, this.cluster),
      cluster: createClient(Cluster, this.cluster),
      maintenance: createClient(Maintenance, this.cluster),
      auth: createClient(Auth, this.cluster),
      lock: createClient(Lock, this.cluster),
      election: createClient(Election, this.cluster),
    };
    this.kv = new KV(this.raw.kv, { maxTxnOps: options.maxTxnOps ?? 128 });
    this.lease = new Leases(this.raw.lease, this.cluster, {
      requestTimeoutMs: options.requestTimeoutMs ?? 15000,
      // Interceptors see only calls made through the transport, so the raw keep-alive stream is used without them.
      rawStream: !stock && (options.interceptors?.length ?? 0) === 0,
      maxResponseBytes: options.maxResponseBytes,
    });
    if (options.auth !== undefined) {
      const { username, password } = options.auth;
      const auth = this.raw.auth;
      this.cluster.tokens = new AuthTokenSource(async () => (await auth.authenticate({ name: username, password })).token);
    }
    const every = options.autoSyncIntervalMs ?? 0;
    if (every > 0) {
      this.syncTimer = setInterval(() => {
        this.sync().catch((e: unknown) => {
          if (!this.closed && this.events.listenerCount("error") > 0) this.events.emit("error", toEtcdError(e));
        });
      }, every);
      this.syncTimer.unref();
    }
  }

  /** Reads a key, or a range with `prefix`, `fromKey` or `rangeEnd`. See {@link KV.get}. */
  get(key: Bytes, options?: GetOptions & CallOptions): Promise<GetResult> {
    return this.kv.get(key, options);
  }

  /** Writes a key. See {@link KV.put}. */
  put(key: Bytes, value: Bytes, options?: PutOptions & CallOptions): Promise<PutResult> {
    return this.kv.put(key, value, options);
  }

  /** Deletes a key or range. See {@link KV.delete}. */
  delete(key: Bytes, options?: DeleteOptions & CallOptions): Promise<DeleteResult> {
    return this.kv.delete(key, options);
  }

  /** Starts a transaction. See {@link Txn}. */
  txn(): Txn {
    return this.kv.txn();
  }

  /** Runs one op. See {@link KV.do}. */
  do(op: Op, options?: CallOptions): Promise<OpResult> {
    return this.kv.do(op, options);
  }

  /** Discards history before `revision`. See {@link KV.compact}. */
  compact(revision: bigint, options?: CompactOptions): Promise<CompactionResponse> {
    return this.kv.compact(revision, options);
  }

  /** Iterates over a large range page by page at one revision. See {@link KV.paginate}. */
  paginate(key: Bytes, options?: PaginateOptions): AsyncGenerator<KeyValue, void, undefined> {
    return this.kv.paginate(key, options);
  }

  /**
   * Refreshes the endpoint list from the member list now: the client URLs of
   * started, non-learner members. Connections to endpoints that stay are kept.
   * Returns the new list.
   */
  async sync(options?: CallOptions): Promise<string[]> {
    const res = await this.raw.cluster.memberList({}, { ...(options?.signal ? { signal: options.signal } : {}), ...(options?.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) });
    const urls = res.members.filter((m) => !m.isLearner && m.name !== "").flatMap((m) => m.clientURLs);
    if (urls.length === 0 || this.closed) return this.pool.slots.map((s) => s.endpoint.origin);
    const endpoints = urls.map((u) => parseEndpoint(u, this.secureDefault));
    const before = this.pool.slots.map((s) => s.endpoint.origin).join(",");
    const removed = this.pool.replace(endpoints, this.createSlot);
    // Let calls in flight on removed endpoints finish before their connections close.
    if (removed.length > 0) setTimeout(() => removed.forEach((s) => s.closeTransport?.()), 30_000).unref();
    const after = this.pool.slots.map((s) => s.endpoint.origin);
    if (after.join(",") !== before) this.events.emit("endpointsChanged", after);
    return after;
  }

  /**
   * The client's view of its endpoints, without any network call: state,
   * pinned or not, backoff countdown, failures, open streams, last error.
   * See {@link Etcd.status} for what the members report.
   */
  info(): EndpointInfo[] {
    const pinned = this.pool.pinned;
    return this.pool.slots.map((s) => localInfo(s, s === pinned, this.closed));
  }

  /**
   * {@link Etcd.info} plus what each member reports: member ID and name,
   * leader or not, version, raft term and DB size. Asks every endpoint
   * directly (in parallel, bounded by `timeoutMs`, default 2000 ms); an
   * unreachable member gets `statusError`. Print it with `formatEndpointTable`.
   */
  async status(options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<EndpointInfo[]> {
    const timeoutMs = options?.timeoutMs ?? 2000;
    const slots = this.pool.slots;
    const [statuses, members] = await Promise.all([
      Promise.allSettled(
        slots.map(async (s) => {
          const t0 = performance.now();
          const res = await this.cluster.unaryOn(s, Maintenance.method.status, {}, timeoutMs, options?.signal);
          return { res, rttMs: performance.now() - t0 };
        }),
      ),
      this.raw.cluster.memberList({}, { timeoutMs, ...(options?.signal ? { signal: options.signal } : {}) }).catch(() => undefined),
    ]);
    const pinned = this.pool.pinned;
    return slots.map((s, i) => {
      const info = localInfo(s, s === pinned, this.closed);
      const r = statuses[i]!;
      if (r.status === "rejected") {
        info.statusError = r.reason instanceof Error ? r.reason.message : String(r.reason);
        return info;
      }
      const st = r.value.res;
      // A fresh measurement of the whole Status round trip beats a stale PING time.
      info.rttMs = r.value.rttMs;
      const id = st.header?.memberId;
      if (id !== undefined) info.memberId = id;
      info.isLeader = id !== undefined && id === st.leader;
      info.version = st.version;
      info.raftTerm = st.raftTerm;
      info.dbSize = st.dbSize;
      info.dbSizeInUse = st.dbSizeInUse;
      info.isLearner = st.isLearner;
      const m = members?.members.find((x) => x.ID === id);
      if (m !== undefined) info.name = m.name;
      return info;
    });
  }

  /** Closes every connection; calls in flight and later calls fail with `ClientClosedError`. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    this.lease.close();
    this.cluster.close();
    for (const s of this.pool.slots) s.closeTransport?.();
  }

  /** Same as {@link Etcd.close}, for `await using etcd = new Etcd(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

function slot(endpoint: Endpoint, connection: Connection | undefined, transport: Transport, closeTransport: () => void): EndpointSlot {
  return { endpoint, connection, transport, closeTransport, failures: 0, retryAt: 0, lastError: undefined, lastFailureAt: undefined };
}
