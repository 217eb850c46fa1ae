/**
 * "Not supported by this server": which etcd version a feature needs, and
 * how to tell. New RPCs (AuthStatus, Downgrade) answer `Unimplemented` on an
 * older server, which is turned into a {@link NotSupportedError} naming the
 * server's version. New request *fields* are worse: an older server drops
 * them without a word (a 3.4 member ignores `hashedPassword` and would store
 * a user with an empty password hash; `linearizable` would quietly give a
 * serializable member list), so those calls first check the version of every
 * member and are refused before anything is sent.
 * @module
 */
import { Code } from "@connectrpc/connect";
import { Maintenance as MaintenanceService } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { CallOptions } from "../call-options.js";
import { EtcdError, NotSupportedError, isConnectError } from "../errors.js";
import { onEndpoint, type AdminContext } from "./endpoint-target.js";

/** The etcd release that brought `AuthStatus`, `Downgrade`, `hashedPassword` and linearizable member lists. */
export const ETCD_3_5 = "3.5";

/**
 * Orders two etcd versions (`3.4.23`, `3.5`, `3.6.0-alpha.0`) by their
 * numeric major, minor and patch; a missing part counts as 0, anything after
 * the numbers is ignored. Negative when `a` is older.
 */
export function compareVersions(a: string, b: string): number {
  const pa = numbers(a);
  const pb = numbers(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function numbers(v: string): number[] {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim());
  if (m === null) return [];
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/** How long the oldest member's version is trusted before it is asked again. */
const CACHE_MS = 30_000;

/** Server versions of a client's cluster, for feature checks. */
export class ServerVersions {
  private cached: { version: string; endpoint: string; at: number } | undefined;

  constructor(private readonly ctx: AdminContext) {}

  /** The version one member reports (`3.5.16`), from its Status. */
  async of(endpoint: string | undefined, options?: CallOptions): Promise<string> {
    return onEndpoint(this.ctx, endpoint, async (slot) => {
      const st = await this.ctx.transport.unaryOn(slot, MaintenanceService.method.status, {}, options?.timeoutMs, options?.signal);
      return st.version;
    });
  }

  /**
   * The oldest version in the cluster: every member with a client URL in the
   * member list is asked directly (learners too: they apply the same log),
   * cached for 30 s. Rejects with a member's failure when one does not answer:
   * an unknown version cannot be shown to be new enough.
   */
  async oldest(options?: CallOptions): Promise<{ version: string; endpoint: string }> {
    const c = this.cached;
    if (c !== undefined && Date.now() - c.at < CACHE_MS) return c;
    const signal = options?.signal;
    const timeoutMs = options?.timeoutMs;
    const list = await this.ctx.raw.cluster.memberList({}, { ...(signal ? { signal } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    const urls = list.members.flatMap((m) => (m.clientURLs.length > 0 ? [m.clientURLs[0]!] : []));
    const answers = await Promise.allSettled(urls.map(async (u) => ({ version: await this.of(u, options), endpoint: u })));
    let found: { version: string; endpoint: string } | undefined;
    for (const a of answers) {
      if (a.status === "rejected") throw a.reason;
      if (found === undefined || compareVersions(a.value.version, found.version) < 0) found = a.value;
    }
    if (found === undefined) throw new EtcdError("no member reported its version", Code.Unavailable);
    this.cached = { ...found, at: Date.now() };
    return found;
  }

  /**
   * Resolves when every member runs at least `required`; otherwise rejects
   * with {@link NotSupportedError} naming the oldest one, or with the failure
   * of a member that could not be asked. For features an older server would
   * silently ignore (a 3.4 member applying a `hashedPassword` change would
   * store the hash of an empty password), so no member may be skipped.
   */
  async require(feature: string, required: string, options?: CallOptions): Promise<void> {
    const { version, endpoint } = await this.oldest(options);
    if (compareVersions(version, required) < 0) {
      throw new NotSupportedError(feature, required, version, { endpoint: endpointAddress(endpoint) });
    }
  }

  /**
   * Runs `call`; an `Unimplemented` answer becomes a {@link NotSupportedError}
   * naming the version of the member that gave it (asked for it now, if it answers).
   */
  async guard<T>(feature: string, required: string, call: () => Promise<T>, options?: CallOptions): Promise<T> {
    try {
      return await call();
    } catch (e) {
      if (!isConnectError(e) || e.code !== Code.Unimplemented || e instanceof NotSupportedError) throw e;
      const endpoint = e instanceof EtcdError ? e.endpoint : undefined;
      let version: string | undefined;
      try {
        version = await this.of(endpoint, { timeoutMs: Math.min(options?.timeoutMs ?? 2000, 2000), ...(options?.signal ? { signal: options.signal } : {}) });
      } catch {
        // The member's version is only for the message; the answer itself was clear.
      }
      throw new NotSupportedError(feature, required, version, { endpoint, cause: e });
    }
  }
}

function endpointAddress(url: string): string {
  return url.replace(/^[a-z]+:\/\//i, "").replace(/\/+$/, "");
}
