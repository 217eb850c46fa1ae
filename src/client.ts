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
import { toConnectOptions, type CallOptions } from "./call-options.js";
import { ClusterTransport } from "./cluster/cluster-transport.js";
import { Connection, type ConnectionState, type TlsOptions } from "./transport/connection.js";
import { createConnectNodeTransport } from "./transport/connect-node-transport.js";
import { parseEndpoint, type Endpoint } from "./cluster/endpoint.js";
import { EndpointPool, type BackoffOptions, type EndpointSlot } from "./cluster/endpoint-pool.js";
import { localInfo, type EndpointInfo } from "./cluster/endpoint-status.js";
import { DEFAULT_MAX_REQUEST_BYTES, resolveOptions } from "./client-options.js";
import { ClientClosedError, InvalidOptionError, type EtcdError, toEtcdError } from "./errors.js";
import { createHttp2Transport } from "./transport/http2-transport.js";
import type { KeyValue } from "./kv/key-value.js";
import { KV, type CompactOptions } from "./kv/kv.js";
import type { DeleteOptions, GetOptions, Op, PutOptions } from "./kv/op.js";
import type { PaginateOptions } from "./kv/paginate.js";
import type { CompactResult, DeleteResult, GetResult, OpResult, PutResult } from "./kv/results.js";
import type { Txn } from "./kv/txn.js";
import { runStm, type Stm, type StmOptions, type StmResult } from "./concurrency/stm.js";
import { Namespace } from "./namespace/namespace.js";
import { Auth as AuthApi } from "./admin/auth.js";
import { Cluster as ClusterApi } from "./admin/cluster.js";
import type { AdminContext } from "./admin/endpoint-target.js";
import { Maintenance as MaintenanceApi } from "./admin/maintenance.js";
import { ServerVersions } from "./admin/server-version.js";
import { WatchManager } from "./watch/watch-manager.js";
import type { Watcher, WatchOptions } from "./watch/watcher.js";
import type { Mirror, MirrorOptions } from "./watch/mirror.js";
import { Leases } from "./lease/lease.js";
import { Session, type SessionOptions } from "./concurrency/session.js";
import type { Mutex } from "./concurrency/mutex.js";

/**
 * Options of {@link Etcd}. Only `endpoints` is required. Every option is
 * checked when the client is created: a wrong value throws `InvalidOptionError`.
 * Durations are milliseconds; where `Infinity` is allowed it means "no limit".
 */
export interface EtcdOptions {
  /**
   * Cluster members to talk to: `host:port`, `http://host:port` or `https://host:port`.
   * Bare `host:port` uses TLS when `tls` is set.
   */
  endpoints: string | string[];
  /**
   * Time allowed to open a connection: name lookup, TCP, TLS and the HTTP/2
   * handshake together. Default 5000 ms. The stages may have their own,
   * shorter limits (`lookupTimeoutMs`, `connectTimeoutMs`, `tlsTimeoutMs`);
   * a failure names its stage in `EndpointUnavailableError.reason`.
   */
  dialTimeoutMs?: number;
  /** Most of `dialTimeoutMs` the host name lookup may take (reason `dns-timeout`). Default: no own limit. */
  lookupTimeoutMs?: number;
  /** Most of `dialTimeoutMs` the TCP connect may take (reason `connect-timeout`). Default: no own limit. */
  connectTimeoutMs?: number;
  /** Most of `dialTimeoutMs` the TLS handshake may take (reason `tls-timeout`). Default: no own limit. */
  tlsTimeoutMs?: number;
  /**
   * Deadline of every call without its own `timeoutMs`, from the moment it is
   * made (dials, token fetches, backoff and retries included); for a stream,
   * the deadline of opening it. Default 15000 ms; `Infinity` for none.
   */
  requestTimeoutMs?: number;
  /**
   * PING interval while calls or streams are open, to find dead or hung
   * members. Values under 10000 are raised to 10000: etcd answers pings closer
   * than 5 s apart with GOAWAY, and we keep a margin like grpc-go's client.
   * Default 10000 ms; 0 disables.
   */
  keepAliveIntervalMs?: number;
  /**
   * A PING unanswered this long after it was sent marks the connection dead
   * (time the client's own event loop was blocked does not count). Default 3000 ms.
   */
  keepAliveTimeoutMs?: number;
  /** TLS for `https` endpoints (or all, when endpoints carry no scheme). `true` = Node's default CAs. */
  tls?: TlsOptions | boolean;
  /**
   * With `tls` set, endpoints given as `http://...` (or learned as such from the
   * member list) are refused, so tokens and passwords never travel in the clear.
   * Set this to allow them anyway. Default false.
   */
  allowPlaintext?: boolean;
  /**
   * When every endpoint refuses the connection, does not resolve, or fails
   * TLS, keep retrying until the call's deadline (gRPC's "wait for ready")
   * instead of failing at once with `NoEndpointAvailableError`. Default false.
   */
  waitForReady?: boolean;
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
   * `http2` (default): the built-in gRPC transport over this client's own HTTP/2 engine.
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

export { DEFAULT_MAX_REQUEST_BYTES };

/** Typed connect clients of every etcd service, for calls and fields the wrappers do not cover. */
export interface RawClients {
  /** Range, Put, DeleteRange, Txn, Compact. */
  readonly kv: Client<typeof KVService>;
  /** The bidirectional Watch stream. */
  readonly watch: Client<typeof Watch>;
  /** LeaseGrant, LeaseRevoke, LeaseKeepAlive, LeaseTimeToLive, LeaseLeases. */
  readonly lease: Client<typeof Lease>;
  /** MemberAdd, MemberRemove, MemberUpdate, MemberList, MemberPromote. */
  readonly cluster: Client<typeof Cluster>;
  /** Alarm, Status, Defragment, Hash, HashKV, Snapshot, MoveLeader, Downgrade. */
  readonly maintenance: Client<typeof Maintenance>;
  /** Authentication, users and roles. */
  readonly auth: Client<typeof Auth>;
  /** The `v3lock` service (see {@link LockService}). */
  readonly lock: Client<typeof Lock>;
  /** The `v3election` service (see {@link ElectionService}). */
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
 * `await using`) when done: the process cannot exit while connections are open.
 */
export class Etcd implements AsyncDisposable {
  /** The key-value API (also exposed directly on the client). */
  readonly kv: KV;
  /** Leases: grant, revoke, and keep alive over one shared stream. See {@link Leases}. */
  readonly lease: Leases;
  /** Typed connect clients of every service. */
  readonly raw: RawClients;
  /** Authentication: enable/disable, users, roles, permissions. */
  readonly auth: AuthApi;
  /** Cluster membership: list, add (learners too), remove, update, promote. */
  readonly cluster: ClusterApi;
  /** Alarms, per-member status, defragment, hashes, snapshots, leadership, downgrade. */
  readonly maintenance: MaintenanceApi;
  /** Watches and mirrors (`watch()` and `mirror()` are also on the client); `watches.info()` shows the streams. */
  readonly watches: WatchManager;
  /** The transport all calls go through; pass it to `createClient` for other services. */
  readonly transport: Transport;

  /** Connection and endpoint events, for logging and metrics. */
  readonly events = new EventEmitter<EtcdEvents>();

  private readonly pool: EndpointPool;
  private readonly clusterTransport: ClusterTransport;
  /** Connections the admin APIs opened for one call to a member outside the endpoint list. */
  private readonly temporary = new Set<EndpointSlot>();
  /** Aborted first thing in close(): long-lived helpers end with it. */
  private readonly closeController = new AbortController();
  private readonly createSlot: (e: Endpoint) => EndpointSlot;
  private readonly parse: (url: string) => Endpoint;
  private readonly syncTimer: NodeJS.Timeout | undefined;
  /** Endpoints dropped by a sync, closed a little later (or by close()). */
  private readonly retired = new Map<EndpointSlot, NodeJS.Timeout>();
  private readonly closeHooks: Array<() => void | Promise<void>> = [];
  private closing: Promise<void> | undefined;

  /** @throws InvalidOptionError for any option that is missing, of the wrong type or out of range. */
  constructor(options: EtcdOptions) {
    const o = resolveOptions(options);
    const tls = o.tls;
    this.parse = (url) => {
      const e = parseEndpoint(url, tls !== undefined);
      if (tls !== undefined && !e.secure && !o.allowPlaintext) {
        throw new InvalidOptionError(`endpoint "${url}" is plaintext but tls is set: tokens and passwords would travel in the clear (use https, or set allowPlaintext)`);
      }
      return e;
    };
    const endpoints = o.endpoints.map(this.parse);
    const connOptions = {
      dialTimeoutMs: o.dialTimeoutMs,
      lookupTimeoutMs: o.lookupTimeoutMs,
      connectTimeoutMs: o.connectTimeoutMs,
      tlsTimeoutMs: o.tlsTimeoutMs,
      keepAliveIntervalMs: o.keepAliveIntervalMs,
      keepAliveTimeoutMs: o.keepAliveTimeoutMs,
      tls,
    };
    const maxSend = o.maxRequestBytes;
    this.createSlot = (endpoint) => {
      if (o.transport === "connect-node") {
        const transport = createConnectNodeTransport(endpoint, {
          ...connOptions,
          interceptors: options.interceptors,
          maxReceiveMessageBytes: o.maxResponseBytes,
          maxSendMessageBytes: maxSend,
        });
        return slot(endpoint, undefined, transport, () => transport.close());
      }
      const connection = new Connection(endpoint, connOptions);
      connection.on("state", (state, error) => this.events.emit("connection", endpoint.address, state, error));
      const transport = createHttp2Transport(connection, {
        maxSendMessageBytes: maxSend,
        ...(o.maxResponseBytes !== undefined ? { maxReceiveMessageBytes: o.maxResponseBytes } : {}),
        ...(options.interceptors !== undefined ? { interceptors: options.interceptors } : {}),
      });
      return slot(endpoint, connection, transport, () => connection.close());
    };
    this.pool = new EndpointPool(endpoints.map(this.createSlot), o.backoff);
    this.pool.on("pinned", (a) => this.events.emit("pinned", a));
    this.pool.on("failed", (a, e, at) => this.events.emit("endpointFailed", a, e, at));
    this.pool.on("recovered", (a) => this.events.emit("endpointRecovered", a));
    this.clusterTransport = new ClusterTransport(this.pool, {
      requestTimeoutMs: o.requestTimeoutMs,
      retryWrites: o.retryWrites,
      requireLeader: o.requireLeader,
      waitForReady: o.waitForReady,
    });
    this.transport = this.clusterTransport;
    this.raw = {
      kv: createClient(KVService, this.clusterTransport),
      watch: createClient(Watch, this.clusterTransport),
      lease: createClient(Lease, this.clusterTransport),
      cluster: createClient(Cluster, this.clusterTransport),
      maintenance: createClient(Maintenance, this.clusterTransport),
      auth: createClient(Auth, this.clusterTransport),
      lock: createClient(Lock, this.clusterTransport),
      election: createClient(Election, this.clusterTransport),
    };
    this.kv = new KV(this.raw.kv, { maxTxnOps: o.maxTxnOps });
    const admin: AdminContext = { transport: this.clusterTransport, pool: this.pool, createSlot: this.createSlot, parse: this.parse, temporary: this.temporary, raw: this.raw };
    const versions = new ServerVersions(admin);
    this.auth = new AuthApi(admin, versions);
    this.cluster = new ClusterApi(admin, versions);
    this.maintenance = new MaintenanceApi(admin, versions);
    this.watches = new WatchManager(this.clusterTransport, this.kv, { maxRequestBytes: maxSend, requestTimeoutMs: o.requestTimeoutMs });
    this.addCloseHook(() => this.watches.close());
    this.lease = new Leases(this.raw.lease, this.clusterTransport, {
      requestTimeoutMs: o.requestTimeoutMs,
      // Interceptors see only calls made through the transport, so the raw keep-alive stream is used without them.
      rawStream: o.transport !== "connect-node" && (options.interceptors?.length ?? 0) === 0,
      maxResponseBytes: o.maxResponseBytes,
    });
    this.addCloseHook(() => this.lease.close());
    if (options.auth !== undefined) {
      const { username, password } = options.auth;
      const auth = this.raw.auth;
      this.clusterTransport.tokens = new AuthTokenSource(async () => (await auth.authenticate({ name: username, password })).token);
    }
    const every = o.autoSyncIntervalMs;
    if (every > 0) {
      this.syncTimer = setInterval(() => {
        this.sync().catch((e: unknown) => this.reportBackgroundError(e));
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
  compact(revision: number | bigint, options?: CompactOptions): Promise<CompactResult> {
    return this.kv.compact(revision, options);
  }

  /** Iterates over a large range page by page at one revision. See {@link KV.paginate}. */
  paginate(key: Bytes, options?: PaginateOptions): AsyncGenerator<KeyValue, void, undefined> {
    return this.kv.paginate(key, options);
  }

  /**
   * Runs `fn` as a software transaction: its reads see a consistent view, its
   * writes are buffered and committed in one transaction, and when what it
   * read (or wrote) changed meanwhile, `fn` runs again on fresh data.
   *
   * ```ts
   * await etcd.stm(async (tx) => {
   *   const a = Number(await tx.get("acct/a")), b = Number(await tx.get("acct/b"));
   *   tx.put("acct/a", String(a - 10));
   *   tx.put("acct/b", String(b + 10));
   * });
   * ```
   * See `src/concurrency/stm.ts` for the isolation levels and {@link StmOptions}.
   */
  stm<T>(fn: (stm: Stm) => T | Promise<T>, options?: StmOptions): Promise<StmResult<T>> {
    return runStm(this.kv, fn, options);
  }

  /** A view of this client in which every key lives under `prefix`. See {@link Namespace}. */
  namespace(prefix: Bytes): Namespace {
    return new Namespace(this, prefix);
  }

  /**
   * Starts a {@link Session}: a lease (TTL `ttl` seconds, default 60) kept
   * alive until `session.close()`, for locks and elections.
   *
   * ```ts
   * const session = await etcd.session({ ttl: 10 });
   * await session.withLock("jobs/cleanup", async (mutex) => { ... });
   * await session.close();
   * ```
   */
  session(options?: SessionOptions): Promise<Session> {
    return Session.create(this, this, options);
  }

  /**
   * Runs `fn` holding the lock `name`, in a session of its own (TTL
   * `options.ttl`, default 60 s) that is closed afterwards, releasing the
   * lock, also when `fn` throws. See {@link Session.withLock}.
   */
  async withLock<T>(name: Bytes, fn: (mutex: Mutex) => T | Promise<T>, options?: SessionOptions): Promise<T> {
    const session = await this.session(options);
    try {
      return await session.withLock(name, fn, options);
    } finally {
      await session.close();
    }
  }

  /** Aborted by {@link Etcd.close}: long-lived helpers (streams, waits) end with it. @internal */
  get closeSignal(): AbortSignal {
    return this.closeController.signal;
  }

  /**
   * Watches a key, or a range with `prefix`, `fromKey` or `rangeEnd`: an
   * async iterator of batches, one per revision, that never skips or repeats
   * a revision across reconnects. See {@link Watcher}.
   *
   * ```ts
   * for await (const batch of etcd.watch("jobs/", { prefix: true })) {
   *   for (const e of batch.events) console.log(batch.revision, e.type, e.keyText);
   * }
   * ```
   */
  watch(key: Bytes, options?: WatchOptions): Watcher {
    return this.watches.watch(key, options);
  }

  /**
   * Keeps every key under `prefix` in memory, current with the store, and
   * lists again by itself after a compaction or a long disconnect. See {@link Mirror}.
   */
  mirror(prefix: Bytes, options?: MirrorOptions): Mirror {
    return this.watches.mirror(prefix, options);
  }

  /**
   * Refreshes the endpoint list from the member list now: the client URLs of
   * started, non-learner members. Connections to endpoints that stay are kept.
   * Returns the new list.
   */
  async sync(options?: CallOptions): Promise<string[]> {
    if (this.closed) throw new ClientClosedError();
    const res = await this.raw.cluster.memberList({}, toConnectOptions(options));
    const urls = res.members.filter((m) => !m.isLearner && m.name !== "").flatMap((m) => m.clientURLs);
    if (urls.length === 0 || this.closed) return this.pool.slots.map((s) => s.endpoint.origin);
    // With TLS on, plaintext member URLs are skipped (a member may advertise both); none left is an error.
    const endpoints: Endpoint[] = [];
    const refused: string[] = [];
    for (const u of urls) {
      try {
        endpoints.push(this.parse(u));
      } catch (e) {
        if (!(e instanceof InvalidOptionError)) throw e;
        refused.push(u);
      }
    }
    if (endpoints.length === 0) {
      throw new InvalidOptionError(`the member list has only plaintext client URLs (${refused.join(", ")}) but tls is set; set allowPlaintext to use them`);
    }
    const before = this.pool.slots.map((s) => s.endpoint.origin).join(",");
    const removed = this.pool.replace(endpoints, this.createSlot);
    // Let calls in flight on removed endpoints finish before their connections close (close() does it at once).
    for (const s of removed) {
      const t = setTimeout(() => {
        this.retired.delete(s);
        void s.closeTransport?.();
      }, 30_000);
      t.unref();
      this.retired.set(s, t);
    }
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
          const res = await this.clusterTransport.unaryOn(s, Maintenance.method.status, {}, timeoutMs, options?.signal);
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

  /** True once {@link Etcd.close} was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Closes the client: calls in flight (and waiting for a connection, a token
   * or a backoff) and open streams end with `ClientClosedError`, as does every
   * later call; dials in flight are abandoned; every connection closes, those
   * of endpoints dropped by auto-sync and those draining after GOAWAY
   * included. The promise resolves once every socket is closed, after which
   * the client holds no timer or socket: the process can exit. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closeController.abort(new ClientClosedError());
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    // The layers above (leases, watches) wind down first, while the transport still works.
    const hooks = this.closeHooks.map((hook) => {
      try {
        return Promise.resolve(hook());
      } catch (e) {
        return Promise.reject(e);
      }
    });
    const closeTransports = (): Promise<void> => {
      this.clusterTransport.close();
      const slots = [...this.pool.slots, ...this.retired.keys(), ...this.temporary];
      for (const t of this.retired.values()) clearTimeout(t);
      this.retired.clear();
      return Promise.all(slots.map((s) => s.closeTransport?.())).then(() => undefined);
    };
    this.closing =
      hooks.length === 0
        ? closeTransports()
        : Promise.allSettled(hooks).then((results) => {
            for (const r of results) {
              if (r.status === "rejected" && this.events.listenerCount("error") > 0) this.events.emit("error", toEtcdError(r.reason));
            }
            return closeTransports();
          });
    return this.closing;
  }

  /** Same as {@link Etcd.close}, for `await using etcd = new Etcd(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Registers work for {@link Etcd.close} to run before the connections close
   * (the lease and watch layers end their streams here). Hooks start in
   * registration order and are awaited together; one that fails is reported
   * on `events` ("error") and does not stop the others.
   * @internal
   */
  addCloseHook(hook: () => void | Promise<void>): void {
    this.closeHooks.push(hook);
  }

  private reportBackgroundError(e: unknown): void {
    if (!this.closed && this.events.listenerCount("error") > 0) this.events.emit("error", toEtcdError(e));
  }
}

function slot(endpoint: Endpoint, connection: Connection | undefined, transport: Transport, closeTransport: () => Promise<void>): EndpointSlot {
  return { endpoint, connection, transport, closeTransport, failures: 0, retryAt: 0, lastError: undefined, lastFailureAt: undefined };
}
