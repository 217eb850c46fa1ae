/**
 * A TypeScript client for etcd v3.
 *
 * Start with {@link Etcd}; build transactions with {@link Compare} and {@link Op}.
 * @module
 */
export { Etcd, DEFAULT_MAX_REQUEST_BYTES, type EtcdOptions, type RawClients, type EtcdEvents } from "./client.js";
export type { CallOptions } from "./call-options.js";
export type { Bytes } from "./kv/bytes.js";
export { Compare, type CompareOperator } from "./kv/compare.js";
export { Op, type GetOptions, type PutOptions, type DeleteOptions, type SortOrder, type SortTarget, type GetOp, type PutOp, type DeleteOp, type TxnOp } from "./kv/op.js";
export { Txn } from "./kv/txn.js";
export { KV, type CompactOptions, type KVLimits } from "./kv/kv.js";
export { KeyValue } from "./kv/key-value.js";
export { GetResult, PutResult, DeleteResult, TxnResult, type OpResult } from "./kv/results.js";
export type { PaginateOptions } from "./kv/paginate.js";
export { prefixEnd, type RangeSelector } from "./kv/key-range.js";
export { parseEndpoint, type Endpoint } from "./cluster/endpoint.js";
export { Connection, type TlsOptions, type ConnectionState, type ConnectionOptions, type ConnectionEvents } from "./transport/connection.js";
export type { BackoffOptions } from "./cluster/endpoint-pool.js";
export { createHttp2Transport, type Http2TransportOptions } from "./transport/http2-transport.js";
export * from "./errors.js";
export type { AuthCredentials } from "./cluster/auth-token.js";
export { formatEndpointTable, type EndpointInfo } from "./cluster/endpoint-status.js";
export {
  Leases,
  type LeaseGrantOptions,
  type LeaseGrantResult,
  type LeaseTimeToLiveOptions,
  type LeaseTimeToLiveResult,
  type KeepAliveOnceResult,
} from "./lease/lease.js";
export { KeptLease, type KeptLeaseState, type KeptLeaseEvents } from "./lease/kept-lease.js";
