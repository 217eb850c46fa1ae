/**
 * A debug view of the client's endpoints: what each connection is doing and,
 * on request, what each member reports about itself.
 * @module
 */
import type { EndpointSlot } from "./endpoint-pool.js";

/** What the client knows about one endpoint. */
export interface EndpointInfo {
  /** `http(s)://host:port`. */
  url: string;
  /**
   * `connected`: a live HTTP/2 connection; `connecting`: dialing;
   * `idle`: no connection open (opened on the next call);
   * `backing-off`: failed recently, not used before `retryAt` unless nothing else is left;
   * `closed`: the client was closed.
   */
  state: "connected" | "connecting" | "idle" | "backing-off" | "closed";
  /** True for the endpoint calls go to now. */
  pinned: boolean;
  /** When a backing-off endpoint is tried again. */
  retryAt?: Date;
  /** Seconds until `retryAt` (like eetcd's `Freeze` countdown). */
  retryInSeconds?: number;
  /** Failures since the last success. */
  failures: number;
  /** Calls and streams open on the connection now (built-in transport only). */
  openStreams?: number;
  /** Last measured round trip in milliseconds: of the Status call in `status()`, else of the last keep-alive PING (built-in transport). */
  rttMs?: number;
  /** Message of the last failure. */
  lastError?: string;
  /** When the last failure happened. */
  lastErrorAt?: Date;
  /** From the member itself (filled by `status()`, not by `info()`): */
  memberId?: bigint;
  /** Member name, from the member list. */
  name?: string;
  /** True when this member is the raft leader. */
  isLeader?: boolean;
  /** etcd server version. */
  version?: string;
  /** Raft term the member is in. */
  raftTerm?: bigint;
  /** Size of the member's backend database in bytes. */
  dbSize?: bigint;
  /** Bytes of the database in use (the rest is reclaimable by defragment). */
  dbSizeInUse?: bigint;
  /** True for a learner (non-voting) member. */
  isLearner?: boolean;
  /** Why `status()` could not reach the member, if it could not. */
  statusError?: string;
}

/** Local state of one endpoint, no network involved. */
export function localInfo(slot: EndpointSlot, pinned: boolean, closed: boolean, now = Date.now()): EndpointInfo {
  const c = slot.connection;
  let state: EndpointInfo["state"];
  if (closed) state = "closed";
  else if (slot.retryAt > now) state = "backing-off";
  else if (c === undefined) state = "idle";
  else state = c.state === "ready" ? "connected" : c.state === "connecting" ? "connecting" : c.state === "closed" ? "closed" : "idle";
  const info: EndpointInfo = { url: slot.endpoint.origin, state, pinned, failures: slot.failures };
  if (slot.retryAt > now) {
    info.retryAt = new Date(slot.retryAt);
    info.retryInSeconds = Math.ceil((slot.retryAt - now) / 100) / 10;
  }
  if (c !== undefined) {
    info.openStreams = c.openStreams;
    if (c.lastRttMs !== undefined) info.rttMs = c.lastRttMs;
  }
  if (slot.lastError !== undefined) info.lastError = slot.lastError.message;
  if (slot.lastFailureAt !== undefined) info.lastErrorAt = new Date(slot.lastFailureAt);
  return info;
}

/**
 * Renders endpoint infos as a fixed-width text table, for logs and terminals.
 *
 * ```ts
 * console.log(formatEndpointTable(etcd.info()));         // what the client knows, no network
 * console.log(formatEndpointTable(await etcd.status())); // asks every member too
 * ```
 */
export function formatEndpointTable(infos: readonly EndpointInfo[]): string {
  const cols: Array<[string, (i: EndpointInfo) => string]> = [
    ["ENDPOINT", (i) => (i.pinned ? "* " : "  ") + i.url],
    ["STATE", (i) => (i.state === "backing-off" ? `backing-off ${i.retryInSeconds}s` : i.state)],
    ["NAME", (i) => i.name ?? ""],
    ["ID", (i) => (i.memberId === undefined ? "" : i.memberId.toString(16))],
    ["LEADER", (i) => (i.isLeader === undefined ? "" : i.isLeader ? "yes" : "no")],
    ["VERSION", (i) => i.version ?? ""],
    ["TERM", (i) => i.raftTerm?.toString() ?? ""],
    ["DB", (i) => (i.dbSize === undefined ? "" : formatBytes(i.dbSize))],
    ["STREAMS", (i) => i.openStreams?.toString() ?? ""],
    ["RTT", (i) => (i.rttMs === undefined ? "" : `${i.rttMs.toFixed(1)}ms`)],
    ["FAILS", (i) => String(i.failures)],
    ["LAST ERROR", (i) => i.statusError ?? i.lastError ?? ""],
  ];
  const rows = [cols.map(([h]) => h), ...infos.map((i) => cols.map(([, f]) => f(i)))];
  const widths = cols.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n");
}

function formatBytes(n: bigint): string {
  const x = Number(n);
  if (x < 1024) return `${x} B`;
  if (x < 1024 * 1024) return `${(x / 1024).toFixed(1)} KiB`;
  return `${(x / 1024 / 1024).toFixed(1)} MiB`;
}
