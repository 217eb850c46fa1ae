/**
 * What a watcher delivers: events grouped into batches, one batch per revision.
 * @module
 */
import { Event_EventType, type Event as RawEvent, type KeyValue as RawKeyValue } from "../../gen/etcd/api/mvccpb/kv_pb.js";
import { KeyValue } from "../kv/key-value.js";
import { toText } from "../kv/bytes.js";

/** Kind of a {@link WatchEvent}. */
export type WatchEventType = "put" | "delete";

const EMPTY_KV: RawKeyValue = {
  $typeName: "mvccpb.KeyValue",
  key: new Uint8Array(0),
  createRevision: 0n,
  modRevision: 0n,
  version: 0n,
  value: new Uint8Array(0),
  lease: 0n,
};

/**
 * One change to one key. For a `delete`, `kv` holds the key, the revision of
 * the deletion (`kv.modRevision`) and an empty value; watch with `prevKv` to
 * see what was deleted.
 *
 * Keys and values are views into the buffer the response arrived in: copy
 * them (`slice()`) to keep a small one for long without keeping the rest.
 */
export class WatchEvent {
  /** The key-value pair after the change. */
  readonly kv: KeyValue;

  constructor(
    /** The event as received. */
    readonly raw: RawEvent,
  ) {
    // An event always carries a kv; a missing one (a server bug) reads as an empty pair.
    this.kv = new KeyValue(raw.kv ?? EMPTY_KV);
  }

  /** `put` or `delete`. */
  get type(): WatchEventType {
    return this.raw.type === Event_EventType.DELETE ? "delete" : "put";
  }

  /** The pair before the change, when the watcher asked for `prevKv` and the key existed. */
  get prevKv(): KeyValue | undefined {
    const p = this.raw.prevKv;
    return p === undefined ? undefined : new KeyValue(p);
  }

  /** The key as bytes. */
  get key(): Uint8Array {
    return this.kv.key;
  }

  /** The key decoded as UTF-8. */
  get keyText(): string {
    return toText(this.kv.key);
  }

  /** The new value as bytes (empty for a delete). */
  get value(): Uint8Array {
    return this.kv.value;
  }

  /** The new value decoded as UTF-8 (empty for a delete). */
  get text(): string {
    return toText(this.kv.value);
  }

  /** The revision of the change. */
  get revision(): bigint {
    return this.kv.modRevision;
  }
}

/**
 * What a watcher yields: every event of one revision that matched the
 * watcher (a transaction's changes arrive together), or, with `progress`, a
 * progress notification: no events, and `revision` says how far the watch
 * has got.
 */
export interface WatchBatch {
  /** The revision of every event in the batch; for a progress notification, the store revision it reports. */
  readonly revision: bigint;
  /** The changes, in the order the revision made them; empty for a progress notification. */
  readonly events: readonly WatchEvent[];
  /** True for a progress notification (no events). */
  readonly progress: boolean;
}

/** The revision of a raw event. */
export function revisionOf(e: RawEvent): bigint {
  return e.kv?.modRevision ?? 0n;
}

/** Index just past the run of events starting at `from` that share its revision. */
export function endOfRevision(events: readonly RawEvent[], from: number): number {
  const rev = revisionOf(events[from]!);
  let j = from + 1;
  while (j < events.length && revisionOf(events[j]!) === rev) j++;
  return j;
}

/** The batch of `events[from..to)`, which share one revision. */
export function batchOf(events: readonly RawEvent[], from: number, to: number): WatchBatch {
  const out = new Array<WatchEvent>(to - from);
  for (let k = from; k < to; k++) out[k - from] = new WatchEvent(events[k]!);
  return { revision: revisionOf(events[from]!), events: out, progress: false };
}

/** A progress notification at `revision`. */
export function progressBatch(revision: bigint): WatchBatch {
  return { revision, events: NO_EVENTS, progress: true };
}

const NO_EVENTS: readonly WatchEvent[] = Object.freeze([]);
