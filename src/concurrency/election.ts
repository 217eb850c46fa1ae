/**
 * A client-side leader election on a key prefix, campaigned through a
 * {@link Session}.
 * @module
 */
import { Code } from "@connectrpc/connect";
import type { CallOptions } from "../call-options.js";
import { toBytes, type Bytes } from "../kv/bytes.js";
import { Compare } from "../kv/compare.js";
import type { KeyValue } from "../kv/key-value.js";
import { Op } from "../kv/op.js";
import { CompactedError, ElectionNotLeaderError } from "../errors.js";
import { Contender } from "./contender.js";
import { FIRST } from "./queue.js";
import type { KeyView } from "./session.js";

/**
 * An election on `name` for one session: get it with `session.election("name")`.
 *
 * ```ts
 * const election = session.election("svc/leader");
 * await election.campaign("node-1");          // waits until this session leads
 * const work = doLeaderWork(election.signal);  // stop when the session ends
 * await election.resign();
 *
 * for await (const leader of election.observe()) console.log("leader:", leader.text);
 * ```
 *
 * Each candidate writes `name/<lease id in hex>` with its value on its
 * session's lease; the key with the lowest create revision leads, and its
 * value is the election's value. A candidate waits only for the key just
 * ahead of it. Leadership lives in etcd, not in the client: after a
 * reconnect or a server restart, the same key (the same create revision)
 * still leads, and a campaign of the same session finds its key again
 * instead of queueing twice. So there are never two leaders: a leader
 * whose session is lost stops leading (its `signal` aborts) before the
 * server deletes its key, which is what lets the next one in.
 *
 * Guard the leader's writes with {@link Election.isLeader} in the same
 * client or namespace: they cannot land once it no longer leads.
 */
export class Election extends Contender {
  /** True from a won campaign to resign(). */
  private leads = false;

  /**
   * Stands for election with `value` and waits until this session leads.
   * Campaigning again with the same session (after a restart, or a lost
   * answer) resumes its candidacy and sets the new value. Rejects when
   * `options.signal` fires or `timeoutMs` passes (the candidacy is then
   * withdrawn), with the session's `LeaseLostError` or `SessionClosedError`
   * when the session ends, with `KeyLostError` when its key vanished.
   */
  async campaign(value: Bytes, options?: CallOptions): Promise<void> {
    const v = toBytes(value, "value");
    await this.enqueue(v, options, true, async (place, call) => {
      if (place.existing !== undefined && !Buffer.from(place.existing.value).equals(v)) await this.setValue(v, call);
    });
    this.leads = true;
  }

  /**
   * Sets a new value while leading, without a new election.
   * @throws ElectionNotLeaderError when this session does not lead (still campaigning, resigned, or its key is gone).
   */
  async proclaim(value: Bytes, options?: CallOptions): Promise<void> {
    const v = toBytes(value, "value");
    if (!this.leads) throw notLeader();
    await this.setValue(v, options);
  }

  /** Writes the candidacy's value, if its key is still the one campaigned with. */
  private async setValue(v: Uint8Array, options: CallOptions | undefined): Promise<void> {
    const r = await this.session.view
      .txn()
      .if(this.isLeader())
      .then(Op.put(this.key, v, { lease: this.session.id }))
      .commit(options);
    if (!r.succeeded) throw notLeader();
    this.hdr = r.header;
  }

  /** Gives up leadership or candidacy: deletes this session's key if it is still the one campaigned with. */
  async resign(options?: CallOptions): Promise<void> {
    this.leads = false;
    await this.leave(options);
  }

  /** The current leader's key and value, or undefined when nobody leads. */
  async leader(options?: CallOptions): Promise<KeyValue | undefined> {
    return (await this.session.view.get(this.prefix, { ...FIRST, ...options })).first;
  }

  /**
   * A comparison that holds only while this session's candidacy stands as
   * campaigned (its key exists with its create revision): once `campaign()`
   * resolved, while this session leads. Never holds before a campaign.
   */
  isLeader(): Compare {
    return this.held();
  }

  /**
   * The leader now (once someone leads), then at every change: a new leader,
   * or a new value proclaimed. Each leader is reported once per value, in
   * order. It ends when `signal` fires, when the loop is left, or when the
   * client closes; it carries on across reconnects and compactions.
   */
  async *observe(options?: { signal?: AbortSignal }): AsyncGenerator<KeyValue, void, undefined> {
    const view = this.session.view;
    const closed = this.session.etcd.closeSignal;
    const signal = options?.signal === undefined ? closed : AbortSignal.any([options.signal, closed]);
    let last: KeyValue | undefined;
    while (!signal.aborted) {
      let leader: KeyValue | undefined;
      let rev: bigint;
      try {
        const r = await view.get(this.prefix, { ...FIRST, signal });
        leader = r.first;
        rev = r.revision;
        if (leader === undefined) {
          // Nobody leads: the first key created from now on does.
          leader = await firstPut(view, this.prefix, rev, signal);
          if (leader === undefined) continue;
          rev = leader.modRevision;
        }
      } catch (e) {
        if (signal.aborted) return;
        throw e;
      }
      if (last === undefined || !sameLeader(last, leader)) {
        last = leader;
        yield leader;
      }
      // Follow the leader's key until it is deleted.
      const w = view.watch(leader.key, { startRevision: rev + 1n, signal });
      try {
        for await (const b of w) {
          const e = b.events[b.events.length - 1]!;
          if (e.type === "delete") break;
          if (!sameLeader(last, e.kv)) {
            last = e.kv;
            yield e.kv;
          }
        }
      } catch (e) {
        if (!(e instanceof CompactedError)) throw e;
      } finally {
        void w.close();
      }
    }
  }
}

/** Same leader and same value: same key, created and modified at the same revisions. */
function sameLeader(a: KeyValue, b: KeyValue): boolean {
  return a.createRevision === b.createRevision && a.modRevision === b.modRevision && Buffer.from(a.key).equals(b.key);
}

/** The first key created under `prefix` after `revision`; undefined when the watch ends first or history was compacted. */
async function firstPut(view: KeyView, prefix: Uint8Array, revision: bigint, signal: AbortSignal): Promise<KeyValue | undefined> {
  const w = view.watch(prefix, { prefix: true, startRevision: revision + 1n, noDelete: true, signal });
  try {
    for await (const b of w) {
      for (const e of b.events) if (e.kv.createRevision === e.kv.modRevision) return e.kv;
    }
  } catch (e) {
    if (!(e instanceof CompactedError)) throw e;
  } finally {
    void w.close();
  }
  return undefined;
}

function notLeader(): ElectionNotLeaderError {
  return new ElectionNotLeaderError("election: not leader", Code.FailedPrecondition);
}
