/**
 * Calls aimed at one member rather than at whichever endpoint is pinned
 * (status, defragment, hash, snapshot, move leader): the member is named by
 * its client URL or `host:port`; one of the client's own endpoints is used
 * with its open connection, any other member gets a connection for the
 * call alone, closed when the call ends.
 * @module
 */
import type { Client } from "@connectrpc/connect";
import type { Auth, Cluster, Maintenance } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { ClusterTransport } from "../cluster/cluster-transport.js";
import type { Endpoint } from "../cluster/endpoint.js";
import type { EndpointPool, EndpointSlot } from "../cluster/endpoint-pool.js";
import { InvalidOptionError } from "../errors.js";

/** What the admin APIs need from the client. @internal */
export interface AdminContext {
  readonly transport: ClusterTransport;
  readonly pool: EndpointPool;
  /** Makes a slot (transport and connection) for an endpoint, with the client's TLS and limits. */
  readonly createSlot: (e: Endpoint) => EndpointSlot;
  /** Parses an endpoint with the client's rules (TLS default, plaintext refused under TLS). */
  readonly parse: (url: string) => Endpoint;
  /** Connections opened for one call (members outside the endpoint list); the client closes them on close(). */
  readonly temporary: Set<EndpointSlot>;
  readonly raw: {
    readonly auth: Client<typeof Auth>;
    readonly cluster: Client<typeof Cluster>;
    readonly maintenance: Client<typeof Maintenance>;
  };
}

/**
 * Runs `fn` on the slot of `endpoint`: the pinned endpoint when none is
 * given, one of the client's endpoints when it matches, else a connection
 * opened for this call and closed after it.
 *
 * @throws InvalidOptionError when `endpoint` is not a valid endpoint.
 */
export async function onEndpoint<T>(ctx: AdminContext, endpoint: string | undefined, fn: (slot: EndpointSlot) => Promise<T>): Promise<T> {
  if (endpoint === undefined) return fn(ctx.pool.pick());
  if (typeof endpoint !== "string") throw new InvalidOptionError(`endpoint must be a string such as "127.0.0.1:2379", got ${typeof endpoint}`);
  let parsed: Endpoint;
  try {
    parsed = ctx.parse(endpoint);
  } catch (e) {
    throw new InvalidOptionError(e instanceof Error ? e.message : String(e));
  }
  const own = ctx.pool.slots.find((s) => s.endpoint.origin === parsed.origin);
  if (own !== undefined) return fn(own);
  const slot = ctx.createSlot(parsed);
  ctx.temporary.add(slot);
  try {
    return await fn(slot);
  } finally {
    ctx.temporary.delete(slot);
    void slot.closeTransport?.();
  }
}
