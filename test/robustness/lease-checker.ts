// Checks that leases kept alive by the client were not lost while the client
// could reach a quorum, and that no lease was lost without the client saying so.
//
// etcd expires a lease when its leader hears no keep-alive for TTL; a new
// leader extends every lease on election. A client refreshing at TTL/3 loses
// a lease only if it cannot reach a quorum for roughly 2/3 of the TTL or more.
import { Violations } from "./violation.js";

/** A lease the client kept alive, and what became of it. Times in ms on the run's monotonic clock. */
export interface LeaseRecord {
  id: string;
  ttlMs: number;
  /** When keep-alive started and stopped (stop, revoke or end of run). */
  keptAliveFrom: number;
  keptAliveUntil: number;
  /** When the client reported the lease lost, and why. */
  lostAt?: number;
  lostReason?: string;
  /** We revoked it ourselves: its end is expected. */
  revoked?: boolean;
  /** After the run: does the server still have it (false = gone)? Undefined when not asked. */
  existsAtEnd?: boolean;
}

/** A period during which the client could not reach a quorum (all its endpoints cut off, or no quorum). */
export interface Outage {
  from: number;
  to: number;
}

/** Tolerances. */
export interface LeaseCheckOptions {
  /**
   * Shortest outage that may cost a lease, as a fraction of its TTL. Default
   * 0.5 (below the 2/3 that keep-alives at TTL/3 allow, for reconnect time).
   */
  minOutageFraction?: number;
  /** Extra milliseconds allowed for clocks and scheduling. Default 500. */
  slackMs?: number;
}

/** Merges overlapping outages, sorted. */
export function mergeOutages(outages: readonly Outage[]): Outage[] {
  const sorted = [...outages].sort((a, b) => a.from - b.from);
  const out: Outage[] = [];
  for (const o of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && o.from <= last.to) last.to = Math.max(last.to, o.to);
    else out.push({ ...o });
  }
  return out;
}

/** Checks each lease. */
export function checkLeases(leases: readonly LeaseRecord[], outages: readonly Outage[], options: LeaseCheckOptions = {}, v = new Violations()): Violations {
  const minFraction = options.minOutageFraction ?? 0.5;
  const slack = options.slackMs ?? 500;
  const merged = mergeOutages(outages);
  for (const l of leases) {
    if (l.revoked) continue;
    if (l.lostAt !== undefined && l.lostAt <= l.keptAliveUntil) {
      // A loss needs a long enough outage in the TTL (plus slack) before it.
      const windowStart = l.lostAt - l.ttlMs - slack;
      const longest = merged.reduce((m, o) => Math.max(m, Math.min(o.to, l.lostAt!) - Math.max(o.from, windowStart)), 0);
      if (longest < l.ttlMs * minFraction) {
        v.add(
          "lease-lost-with-quorum",
          `lease ${l.id} (TTL ${l.ttlMs} ms) reported lost at ${l.lostAt.toFixed(0)} ms (${l.lostReason ?? "no reason"}) with a quorum reachable (longest outage in the TTL before: ${longest.toFixed(0)} ms)`,
        );
      }
    }
    if (l.existsAtEnd === false && l.lostAt === undefined) {
      v.add("lease-lost-silently", `lease ${l.id} is gone on the server but the client never reported it lost`);
    }
  }
  return v;
}
