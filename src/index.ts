/**
 * A TypeScript client for etcd v3.
 *
 * Start with {@link Etcd}; build transactions with {@link Compare} and {@link Op}.
 * @module
 */
export { Etcd, DEFAULT_MAX_REQUEST_BYTES, type EtcdOptions, type RawClients, type EtcdEvents } from "./client.js";
export type { CallOptions } from "./call-options.js";
export type { Bytes } from "./bytes.js";
export { Compare, type CompareOperator } from "./compare.js";
export { Op, type GetOptions, type PutOptions, type DeleteOptions, type SortOrder, type SortTarget, type GetOp, type PutOp, type DeleteOp, type TxnOp } from "./op.js";
export { Txn } from "./txn.js";
export { KV, type CompactOptions, type KVLimits } from "./kv.js";
export { KeyValue } from "./key-value.js";
export { GetResult, PutResult, DeleteResult, TxnResult, type OpResult } from "./results.js";
export type { PaginateOptions } from "./paginate.js";
export { prefixEnd, type RangeSelector } from "./key-range.js";
export { parseEndpoint, type Endpoint } from "./endpoint.js";
export { Connection, type TlsOptions, type ConnectionState, type ConnectionOptions, type ConnectionEvents } from "./connection.js";
export type { BackoffOptions } from "./endpoint-pool.js";
export { createHttp2Transport, type Http2TransportOptions } from "./grpc-transport.js";
export * from "./errors.js";
export type { AuthCredentials } from "./auth-session.js";
export { formatEndpointTable, type EndpointInfo } from "./endpoint-status.js";
