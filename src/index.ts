/**
 * A TypeScript client for etcd v3.
 *
 * Start with {@link Etcd}; build transactions with {@link Compare} and {@link Op}.
 * @module etcd-connect
 */
export { Etcd, DEFAULT_MAX_REQUEST_BYTES, type EtcdOptions, type RawClients, type EtcdEvents } from "./client.js";
export type { CallOptions } from "./call-options.js";
export type { Bytes } from "./kv/bytes.js";
export { Compare, type CompareOperator } from "./kv/compare.js";
export { Op, type GetOptions, type PutOptions, type DeleteOptions, type SortOrder, type SortTarget, type GetOp, type PutOp, type DeleteOp, type TxnOp } from "./kv/op.js";
export { Txn } from "./kv/txn.js";
export { KV, type CompactOptions, type KVLimits } from "./kv/kv.js";
export { KeyValue } from "./kv/key-value.js";
export { GetResult, PutResult, DeleteResult, TxnResult, CompactResult, type OpResult } from "./kv/results.js";
export type { Int64 } from "./kv/int64.js";
export type { PaginateOptions } from "./kv/paginate.js";
export { prefixEnd, type RangeSelector } from "./kv/key-range.js";
export { parseEndpoint, type Endpoint } from "./cluster/endpoint.js";
export { Connection, type TlsOptions, type ConnectionState, type ConnectionOptions, type ConnectionEvents } from "./transport/connection.js";
export type { LookupFunction, ResolvedAddress } from "./transport/dial.js";
export type { BackoffOptions } from "./cluster/endpoint-pool.js";
export { createHttp2Transport, type Http2TransportOptions } from "./transport/http2-transport.js";
export * from "./errors.js";
export type { AuthCredentials } from "./cluster/auth-token.js";
export { formatEndpointTable, type EndpointInfo } from "./cluster/endpoint-status.js";
export { runStm, DEFAULT_STM_RETRIES, type Stm, type StmOptions, type StmResult, type StmStore, type Isolation } from "./concurrency/stm.js";
export { LockService, type LockResult } from "./concurrency/lock-service.js";
export { ElectionService, type LeaderKey } from "./concurrency/election-service.js";
export { Namespace, type KVMethods } from "./namespace/namespace.js";
export { KeyPrefix } from "./namespace/key-prefix.js";
export { Auth, type AuthStatus, type PermissionGrant, type PermissionRange, type PermissionType, type RolePermission, type RoleInfo, type UserCredentials, type UserInfo } from "./admin/auth.js";
export { Cluster, type Member, type MemberAddResult, type MemberList, type MemberListOptions } from "./admin/cluster.js";
export {
  Maintenance,
  type Alarm,
  type AlarmKind,
  type EndpointCallOptions,
  type MemberHash,
  type MemberKVHash,
  type MemberStatus,
} from "./admin/maintenance.js";
export { SnapshotVerifier, verifySnapshotFile, type SnapshotInfo, type SnapshotOptions, type SnapshotProgress } from "./admin/snapshot.js";
export { compareVersions } from "./admin/server-version.js";
export { WatchManager, type WatchInfo, type WatchLimits } from "./watch/watch-manager.js";
export { Watcher, type WatchOptions, type WatcherState, type WatcherEvents } from "./watch/watcher.js";
export { WatchEvent, type WatchBatch, type WatchEventType } from "./watch/events.js";
export type { WatchStreamInfo, WatchStreamState } from "./watch/watch-stream.js";
export { Mirror, type MirrorOptions, type MirrorEvents, type MirrorRelist, type MirrorState, type RelistReason } from "./watch/mirror.js";
export {
  Leases,
  type LeaseGrantOptions,
  type LeaseGrantResult,
  type LeaseTimeToLiveOptions,
  type LeaseTimeToLiveResult,
  type KeepAliveOnceResult,
} from "./lease/lease.js";
export { KeptLease, type KeptLeaseState, type KeptLeaseEvents } from "./lease/kept-lease.js";
