// Checks what watchers delivered against the cluster's history (see
// cluster-history.ts), for etcd's documented watch guarantees:
// - ordered: event revisions only go up;
// - unique: no revision (no event) delivered twice;
// - atomic: a revision's events arrive together, in one batch, all of them;
// - reliable: no revision of the watched range skipped between the start and
//   the last revision the watcher is known to have reached;
// - accurate: each event is what the history has at that revision;
// - progress: notifications never go back, and promise that everything up to
//   their revision was delivered;
// - resumable: a watcher re-created after a break resumes after the last event
//   it delivered and no later than just after the last revision it reached.
// Optionally: every acknowledged write in range was delivered, and the watcher
// reached a given revision (it did not go silent).
import type { ClusterHistory, KvEvent } from "./cluster-history.js";
import { Violations } from "./violation.js";

/** The keys a watcher watches. */
export type WatchRange = { key: string } | { prefix: string } | { from: string; end: string };

/** One delivered event, as the watcher saw it. */
export interface WatchEventRecord {
  type: "put" | "delete";
  key: string;
  /** The event's mod revision. */
  revision: bigint;
  value?: string;
}

/** One thing that happened to a watcher, in the order it happened. */
export type WatchLogEntry =
  /** A batch of events delivered together (one watch response); `revision` is its header revision. */
  | { kind: "batch"; at: number; revision: bigint; events: WatchEventRecord[] }
  /** A progress notification: every event up to `revision` was delivered. */
  | { kind: "progress"; at: number; revision: bigint }
  /** The watcher was re-created on the server from `fromRevision` (after a broken stream or a move). */
  | { kind: "resume"; at: number; fromRevision: bigint }
  /** The watcher ended because its next revision was compacted. */
  | { kind: "compacted"; at: number; compactRevision: bigint }
  /** The watcher ended for another reason (closed, aborted, error). */
  | { kind: "end"; at: number; reason: string };

/** Everything one watcher did. */
export interface WatcherLog {
  id: string;
  range: WatchRange;
  /** The first revision it watched from (for a watch "from now", the creation's header revision + 1). */
  startRevision: bigint;
  filters?: { noPut?: boolean; noDelete?: boolean };
  entries: WatchLogEntry[];
}

/** Extra expectations of one check. */
export interface WatchExpectations {
  /** The watcher must have reached this revision (events or progress): it did not go silent. */
  reach?: bigint;
  /** Acknowledged writes (from the writers' histories) that must be delivered when in range and reached. */
  acknowledged?: ReadonlyArray<{ key: string; type: "put" | "delete"; revision: bigint; value?: string }>;
}

/** True when `key` is in `range`. */
export function inRange(range: WatchRange, key: string): boolean {
  if ("key" in range) return key === range.key;
  if ("prefix" in range) return key.startsWith(range.prefix);
  return key >= range.from && (range.end === "" || key < range.end);
}

function wanted(log: WatcherLog, e: { type: "put" | "delete"; key: string }): boolean {
  if (!inRange(log.range, e.key)) return false;
  if (e.type === "put" && log.filters?.noPut) return false;
  if (e.type === "delete" && log.filters?.noDelete) return false;
  return true;
}

function show(e: WatchEventRecord | KvEvent): string {
  return `${e.type} ${e.key}${e.value !== undefined ? `=${JSON.stringify(e.value)}` : ""}@${e.revision}`;
}

/** Checks one watcher's log. */
export function checkWatcher(log: WatcherLog, history: ClusterHistory, expect: WatchExpectations = {}, v = new Violations()): Violations {
  const w = `watcher ${log.id}`;
  const delivered = new Map<bigint, { batch: number; events: WatchEventRecord[] }>();
  /** Highest event revision delivered so far. */
  let lastEvent = log.startRevision - 1n;
  /** Highest revision the watcher knows it has everything up to (events or progress). */
  let reached = log.startRevision - 1n;
  let lastProgress: bigint | undefined;
  let ended = false;

  /** Revisions of the history in (from, to] with events for this watcher that were not delivered. */
  const missingBetween = (from: bigint, to: bigint): bigint[] => {
    const out: bigint[] = [];
    for (const e of history.events) {
      if (e.revision <= from || e.revision > to || e.revision < log.startRevision) continue;
      if (wanted(log, e) && !delivered.has(e.revision) && out[out.length - 1] !== e.revision) out.push(e.revision);
    }
    return out;
  };

  log.entries.forEach((entry, index) => {
    if (ended) {
      v.add("watch-after-end", `${w}: entry ${index} (${entry.kind}) after the watcher ended`);
      return;
    }
    switch (entry.kind) {
      case "batch": {
        // Group the batch's events by revision, checking order within the batch.
        const groups = new Map<bigint, WatchEventRecord[]>();
        let prev: bigint | undefined;
        for (const e of entry.events) {
          if (prev !== undefined && e.revision < prev) {
            v.add("watch-order", `${w}: in batch ${index}, ${show(e)} comes after revision ${prev}`);
          }
          prev = e.revision;
          let g = groups.get(e.revision);
          if (g === undefined) groups.set(e.revision, (g = []));
          g.push(e);
        }
        for (const [rev, events] of groups) {
          const want = history.covers(rev) ? history.at(rev).filter((e) => wanted(log, e)).map(show).sort() : undefined;
          const got = events.map(show).sort();
          const before = delivered.get(rev);
          if (before !== undefined) {
            // The revision came before: either again (duplicate) or its remaining events (split).
            const earlier = before.events.map(show);
            if (got.some((x) => earlier.includes(x)) || new Set(got).size < got.length) {
              v.add("watch-duplicate", `${w}: revision ${rev} delivered again in batch ${index} (first in batch ${before.batch})`);
            } else {
              v.add("watch-split-revision", `${w}: revision ${rev}'s events came in batches ${before.batch} and ${index}`);
              before.events.push(...events);
            }
            continue;
          }
          if (rev <= lastEvent) v.add("watch-order", `${w}: revision ${rev} delivered after revision ${lastEvent}`);
          if (lastProgress !== undefined && rev <= lastProgress) {
            v.add("watch-progress", `${w}: revision ${rev} delivered after a progress notification at ${lastProgress}`);
          }
          if (rev < log.startRevision) v.add("watch-order", `${w}: revision ${rev} is before the start revision ${log.startRevision}`);
          delivered.set(rev, { batch: index, events: [...events] });
          // Atomic and accurate: exactly the history's events of this revision in range, all in this batch.
          if (want === undefined) {
            v.add("watch-unverifiable", `${w}: revision ${rev} is outside the history read (${history.from}..${history.to})`);
          } else if (want.length === 0) {
            v.add("watch-phantom-event", `${w}: ${got.join(", ")} delivered, but the history has no such event`);
          } else if (new Set(got).size !== got.length) {
            v.add("watch-duplicate", `${w}: batch ${index} holds an event of revision ${rev} twice (${got.join(", ")})`);
          } else if (got.every((x) => want.includes(x)) && got.length < want.length) {
            v.add("watch-split-revision", `${w}: batch ${index} holds ${got.length} of revision ${rev}'s ${want.length} events (${got.join(", ")})`);
          } else if (got.join("|") !== want.join("|")) {
            v.add("watch-wrong-event", `${w}: revision ${rev} delivered as ${got.join(", ")}; the history has ${want.join(", ")}`);
          }
          if (rev > lastEvent) lastEvent = rev;
          if (rev > reached) reached = rev;
        }
        break;
      }
      case "progress": {
        if (lastProgress !== undefined && entry.revision < lastProgress) {
          v.add("watch-progress", `${w}: progress notification at ${entry.revision} after one at ${lastProgress}`);
        }
        // Everything up to the notified revision must be here already.
        const missing = missingBetween(reached, entry.revision);
        if (missing.length > 0) {
          v.add("watch-gap", `${w}: progress at ${entry.revision} but revision(s) ${missing.slice(0, 10).join(", ")} were never delivered`);
        }
        lastProgress = lastProgress === undefined || entry.revision > lastProgress ? entry.revision : lastProgress;
        if (entry.revision > reached) reached = entry.revision;
        break;
      }
      case "resume": {
        // Resuming past the next undelivered revision skips events; at or before a
        // delivered event re-delivers it. In between (after the last event, before a
        // progress notification's revision) nothing can come twice: the client need not
        // take a stream-wide notification as a resume point (3.4 sends it early).
        if (entry.fromRevision > reached + 1n) {
          v.add("watch-resume", `${w}: resumed from ${entry.fromRevision} but had only reached ${reached}`);
        } else if (entry.fromRevision <= lastEvent) {
          v.add("watch-resume", `${w}: resumed from ${entry.fromRevision} although it had delivered revision ${lastEvent} (events would come twice)`);
        }
        break;
      }
      case "compacted":
      case "end":
        ended = true;
        break;
    }
  });

  // Reliable: nothing skipped up to the last revision the watcher reached.
  const missing = missingBetween(log.startRevision - 1n, reached);
  if (missing.length > 0) {
    v.add("watch-gap", `${w}: revision(s) ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ` and ${missing.length - 10} more` : ""} never delivered (reached ${reached})`);
  }
  if (expect.reach !== undefined && reached < expect.reach) {
    v.add("watch-stalled", `${w}: reached revision ${reached}, expected at least ${expect.reach}`);
  }
  for (const a of expect.acknowledged ?? []) {
    if (a.revision < log.startRevision || a.revision > reached || !wanted(log, a)) continue;
    const got = delivered.get(a.revision)?.events.find((e) => e.key === a.key);
    if (got === undefined || got.type !== a.type || (a.type === "put" && got.value !== a.value)) {
      v.add("watch-lost-write", `${w}: acknowledged ${a.type} of ${a.key} at ${a.revision} was not delivered as such`);
    }
  }
  return v;
}
