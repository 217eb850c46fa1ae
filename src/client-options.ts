/**
 * Checks every option of the client before anything is created, so a typo or
 * a wrong type fails at once with an `InvalidOptionError` that names the
 * option, instead of turning into odd behaviour later.
 * @module
 */
import { checkDuration } from "./deadline.js";
import { describeValue } from "./describe-value.js";
import { InvalidOptionError } from "./errors.js";
import type { TlsOptions } from "./transport/dial.js";
import type { EtcdOptions } from "./client.js";

/** {@link EtcdOptions} checked, with defaults filled in. */
export interface ResolvedOptions {
  endpoints: string[];
  dialTimeoutMs: number;
  lookupTimeoutMs: number | undefined;
  connectTimeoutMs: number | undefined;
  tlsTimeoutMs: number | undefined;
  requestTimeoutMs: number;
  keepAliveIntervalMs: number;
  keepAliveTimeoutMs: number;
  tls: TlsOptions | undefined;
  allowPlaintext: boolean;
  requireLeader: boolean;
  retryWrites: boolean;
  waitForReady: boolean;
  maxRequestBytes: number;
  maxResponseBytes: number;
  maxTxnOps: number;
  transport: "http2" | "connect-node";
  backoff: { initialMs: number; maxMs: number };
  autoSyncIntervalMs: number;
}

/** Default of `maxRequestBytes`: etcd's own default, 1.5 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/** Largest message size an option may name (2 GiB - 1, what HTTP/2 gRPC frames can carry). */
const MAX_MESSAGE_BYTES = 0x7fffffff;

/** Checks `options` and fills in defaults. @throws InvalidOptionError */
export function resolveOptions(options: EtcdOptions): ResolvedOptions {
  if (typeof options !== "object" || options === null) throw new InvalidOptionError("options: pass an object with at least `endpoints`");
  const o = options;
  const list = typeof o.endpoints === "string" ? [o.endpoints] : o.endpoints;
  if (!Array.isArray(list) || list.length === 0) {
    throw new InvalidOptionError("endpoints: give at least one endpoint (host:port, http://host:port or https://host:port)");
  }
  for (const e of list) {
    if (typeof e !== "string") throw new InvalidOptionError(`endpoints: each endpoint must be a string, got ${typeof e}`);
  }
  const backoffIn = optionalObject<{ initialMs?: unknown; maxMs?: unknown }>(o.backoff, "backoff") ?? {};
  const initialMs = duration(backoffIn.initialMs, "backoff.initialMs", 100, { positive: true, infinite: false });
  const maxMs = duration(backoffIn.maxMs, "backoff.maxMs", 5000, { positive: true, infinite: false });
  if (maxMs < initialMs) throw new InvalidOptionError(`backoff.maxMs (${maxMs}) must not be less than backoff.initialMs (${initialMs})`);
  const transport = o.transport ?? "http2";
  if (transport !== "http2" && transport !== "connect-node") {
    throw new InvalidOptionError(`transport must be "http2" or "connect-node", got ${describeValue(transport)}`);
  }
  if (o.interceptors !== undefined && (!Array.isArray(o.interceptors) || o.interceptors.some((i) => typeof i !== "function"))) {
    throw new InvalidOptionError("interceptors must be an array of connect interceptors (functions)");
  }
  if (o.auth !== undefined) {
    const a = optionalObject<{ username?: unknown; password?: unknown }>(o.auth, "auth")!;
    if (typeof a.username !== "string" || a.username === "") throw new InvalidOptionError("auth.username must be a non-empty string");
    if (typeof a.password !== "string") throw new InvalidOptionError("auth.password must be a string");
  }
  return {
    endpoints: list,
    dialTimeoutMs: duration(o.dialTimeoutMs, "dialTimeoutMs", 5000, { positive: true }),
    lookupTimeoutMs: optionalDuration(o.lookupTimeoutMs, "lookupTimeoutMs"),
    connectTimeoutMs: optionalDuration(o.connectTimeoutMs, "connectTimeoutMs"),
    tlsTimeoutMs: optionalDuration(o.tlsTimeoutMs, "tlsTimeoutMs"),
    requestTimeoutMs: duration(o.requestTimeoutMs, "requestTimeoutMs", 15000, { positive: true }),
    keepAliveIntervalMs: duration(o.keepAliveIntervalMs, "keepAliveIntervalMs", 10000, {}),
    keepAliveTimeoutMs: duration(o.keepAliveTimeoutMs, "keepAliveTimeoutMs", 3000, { positive: true, infinite: false }),
    tls: tlsOptions(o.tls),
    allowPlaintext: flag(o.allowPlaintext, "allowPlaintext"),
    requireLeader: flag(o.requireLeader, "requireLeader"),
    retryWrites: flag(o.retryWrites, "retryWrites"),
    waitForReady: flag(o.waitForReady, "waitForReady"),
    maxRequestBytes: size(o.maxRequestBytes, "maxRequestBytes", DEFAULT_MAX_REQUEST_BYTES),
    // Always set: connect-node's own default (4 GiB - 1) would wait for a message of any size a frame header announces.
    maxResponseBytes: size(o.maxResponseBytes, "maxResponseBytes", MAX_MESSAGE_BYTES),
    maxTxnOps: size(o.maxTxnOps, "maxTxnOps", 128),
    transport,
    backoff: { initialMs, maxMs },
    autoSyncIntervalMs: duration(o.autoSyncIntervalMs, "autoSyncIntervalMs", 0, { infinite: false }),
  };
}

function duration(v: unknown, what: string, fallback: number, rules: { positive?: boolean; infinite?: boolean }): number {
  return v === undefined ? fallback : checkDuration(v, what, rules);
}

function optionalDuration(v: unknown, what: string): number | undefined {
  return v === undefined ? undefined : checkDuration(v, what, { positive: true });
}

function flag(v: unknown, what: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new InvalidOptionError(`${what} must be true or false, got ${describeValue(v)}`);
  return v;
}

function size(v: unknown, what: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0 || v > MAX_MESSAGE_BYTES) {
    throw new InvalidOptionError(`${what} must be a positive integer up to ${MAX_MESSAGE_BYTES}, got ${describeValue(v)}`);
  }
  return v;
}

function optionalObject<T>(v: unknown, what: string): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new InvalidOptionError(`${what} must be an object`);
  return v as T;
}

function tlsOptions(v: unknown): TlsOptions | undefined {
  if (v === undefined || v === false) return undefined;
  if (v === true) return {};
  const t = optionalObject<Record<string, unknown>>(v, "tls")!;
  const pem = (x: unknown): boolean => typeof x === "string" || x instanceof Uint8Array;
  if (t.ca !== undefined && !(pem(t.ca) || (Array.isArray(t.ca) && t.ca.every(pem)))) throw new InvalidOptionError("tls.ca must be PEM text or bytes, or a list of them");
  if (t.cert !== undefined && !pem(t.cert)) throw new InvalidOptionError("tls.cert must be PEM text or bytes");
  if (t.key !== undefined && !pem(t.key)) throw new InvalidOptionError("tls.key must be PEM text or bytes");
  if ((t.cert === undefined) !== (t.key === undefined)) throw new InvalidOptionError("tls.cert and tls.key go together: give both or neither");
  if (t.servername !== undefined && (typeof t.servername !== "string" || t.servername === "")) throw new InvalidOptionError("tls.servername must be a non-empty string");
  if (t.insecureSkipVerify !== undefined && typeof t.insecureSkipVerify !== "boolean") throw new InvalidOptionError("tls.insecureSkipVerify must be true or false");
  return t as TlsOptions;
}
