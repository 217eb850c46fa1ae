/**
 * Maintenance: alarms, per-member status, defragmentation, hashes,
 * snapshots, leadership transfer and cluster downgrades.
 *
 * Status, defragment, hash, hashKV and snapshot concern one member: they go
 * to the member named by `endpoint` (one of the client's endpoints, or any
 * other member's client URL), or to the pinned endpoint, and are never moved
 * to another member on failure: an answer from a different member would be
 * an answer to a different question.
 * @module
 */
import { Code } from "@connectrpc/connect";
import type { Writable } from "node:stream";
import {
  AlarmRequest_AlarmAction,
  AlarmType,
  DowngradeRequest_DowngradeAction,
  Maintenance as MaintenanceService,
  type AlarmMember,
  type StatusResponse,
} from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { toConnectOptions, type CallOptions } from "../call-options.js";
import { DeadlineExceededError, InvalidOptionError, NoLeaderError, NotLeaderError } from "../errors.js";
import { checkId } from "./cluster.js";
import { onEndpoint, type AdminContext } from "./endpoint-target.js";
import { ETCD_3_5, ServerVersions } from "./server-version.js";
import { takeSnapshot, type SnapshotInfo, type SnapshotOptions } from "./snapshot.js";
import { describeValue } from "../describe-value.js";

/** Kinds of alarm a member raises. */
export type AlarmKind = "NOSPACE" | "CORRUPT";

/** An alarm raised by one member. */
export interface Alarm {
  /** The member that raised it. */
  memberId: bigint;
  /** `NOSPACE`: the backend quota is used up; `CORRUPT`: a hash check found an inconsistency. */
  alarm: AlarmKind;
}

/** Options of per-member calls: which member, plus the usual signal and deadline. */
export interface EndpointCallOptions extends Pick<CallOptions, "signal" | "timeoutMs"> {
  /** The member to ask (`host:port` or its client URL). Default: the pinned endpoint. */
  endpoint?: string;
}

/** What one member reports about itself. */
export interface MemberStatus {
  /** `host:port` that was asked. */
  endpoint: string;
  /** ID of the member that answered. */
  memberId: bigint;
  /** The cluster's ID. */
  clusterId: bigint;
  /** etcd server version, e.g. `3.5.16`. */
  version: string;
  /** Bytes of the backend database file. */
  dbSize: bigint;
  /** Bytes in use inside that file (the rest is reclaimed by defragment). */
  dbSizeInUse: bigint;
  /** The leader's member ID (0 when the member knows no leader). */
  leader: bigint;
  /** True when this member is the leader. */
  isLeader: boolean;
  /** True for a learner (non-voting) member. */
  isLearner: boolean;
  /** Committed raft index. */
  raftIndex: bigint;
  /** Raft term the member is in. */
  raftTerm: bigint;
  /** Applied raft index (equal to or behind `raftIndex`). */
  raftAppliedIndex: bigint;
  /** Store revision at the time of the answer. */
  revision: bigint;
  /** Problems the member reports: "no leader", raised alarms. */
  errors: string[];
  /** The backend quota in bytes (etcd 3.6+; 0 on older servers). */
  dbSizeQuota: bigint;
}

/** A member's hash of its whole backend (`hash`) or of its keys up to a revision (`hashKV`). */
export interface MemberHash {
  /** `host:port` that was asked. */
  endpoint: string;
  /** ID of the member that answered. */
  memberId: bigint;
  /** CRC-32 (Castagnoli) hash: compare it across members at the same revision. */
  hash: number;
  /** Store revision the hash was taken at. */
  revision: bigint;
}

/** A `hashKV` result: comparable across members for the same `revision`. */
export interface MemberKVHash extends MemberHash {
  /** Compaction revision the hash starts from. */
  compactRevision: bigint;
  /** Revision the hash covers up to (etcd 3.6+; 0 on older servers). */
  hashRevision: bigint;
}

const ALARM_NAMES: Record<number, AlarmKind> = { [AlarmType.NOSPACE]: "NOSPACE", [AlarmType.CORRUPT]: "CORRUPT" };
const ALARM_TYPES: Record<AlarmKind, AlarmType> = { NOSPACE: AlarmType.NOSPACE, CORRUPT: AlarmType.CORRUPT };

/**
 * The Maintenance API, as `etcd.maintenance`.
 *
 * ```ts
 * for (const a of await etcd.maintenance.alarms()) console.log(a.memberId, a.alarm);
 * const st = await etcd.maintenance.status({ endpoint: "127.0.0.1:2379" });
 * await etcd.maintenance.snapshot("backup.db", { onProgress: (p) => console.log(p.bytes) });
 * ```
 */
export class Maintenance {
  private readonly versions: ServerVersions;

  /** @internal */
  constructor(
    private readonly ctx: AdminContext,
    versions?: ServerVersions,
  ) {
    this.versions = versions ?? new ServerVersions(ctx);
  }

  /** Alarms raised in the cluster (NOSPACE when a member's backend hit its quota, CORRUPT after a failed consistency check). */
  async alarms(options?: CallOptions): Promise<Alarm[]> {
    const res = await this.ctx.raw.maintenance.alarm({ action: AlarmRequest_AlarmAction.GET }, toConnectOptions(options));
    return toAlarms(res.alarms);
  }

  /**
   * Clears an alarm, or every raised alarm when none is given. Returns the
   * alarms cleared. A NOSPACE alarm comes back on the next write unless space
   * was freed first: compact, then defragment each member, then disarm.
   */
  async disarm(alarm?: Alarm, options?: CallOptions): Promise<Alarm[]> {
    const targets = alarm === undefined ? await this.alarms(options) : [checkAlarm(alarm)];
    const cleared: Alarm[] = [];
    for (const a of targets) {
      const res = await this.ctx.raw.maintenance.alarm(
        { action: AlarmRequest_AlarmAction.DEACTIVATE, memberID: a.memberId, alarm: ALARM_TYPES[a.alarm] },
        toConnectOptions(options),
      );
      cleared.push(...toAlarms(res.alarms));
    }
    return cleared;
  }

  /** What one member reports: version, database size, leader, raft index and term, errors. */
  async status(options?: EndpointCallOptions): Promise<MemberStatus> {
    return onEndpoint(this.ctx, options?.endpoint, async (slot) =>
      toStatus(slot.endpoint.address, await this.ctx.transport.unaryOn(slot, MaintenanceService.method.status, {}, options?.timeoutMs, options?.signal)),
    );
  }

  /**
   * Rewrites one member's backend file to give space freed by compaction
   * back to the file system. The member serves nothing while it runs (on a
   * large database that takes a while: raise `timeoutMs`); do one member at
   * a time.
   */
  async defragment(options?: EndpointCallOptions): Promise<void> {
    await onEndpoint(this.ctx, options?.endpoint, (slot) =>
      this.ctx.transport.unaryOn(slot, MaintenanceService.method.defragment, {}, options?.timeoutMs, options?.signal),
    );
  }

  /** Hash of one member's whole backend (for tests; compare members with {@link Maintenance.hashKV}). */
  async hash(options?: EndpointCallOptions): Promise<MemberHash> {
    return onEndpoint(this.ctx, options?.endpoint, async (slot) => {
      const res = await this.ctx.transport.unaryOn(slot, MaintenanceService.method.hash, {}, options?.timeoutMs, options?.signal);
      return { endpoint: slot.endpoint.address, memberId: res.header?.memberId ?? 0n, hash: res.hash, revision: res.header?.revision ?? 0n };
    });
  }

  /**
   * Hash of one member's keys and history from the last compaction up to
   * `revision` (default: the latest). Members that agree on a revision hold
   * the same data up to it.
   */
  async hashKV(revision?: bigint, options?: EndpointCallOptions): Promise<MemberKVHash> {
    if (revision !== undefined && (typeof revision !== "bigint" || revision < 0n)) throw new InvalidOptionError("revision must be a non-negative bigint");
    return onEndpoint(this.ctx, options?.endpoint, async (slot) => {
      const res = await this.ctx.transport.unaryOn(slot, MaintenanceService.method.hashKV, { revision: revision ?? 0n }, options?.timeoutMs, options?.signal);
      return {
        endpoint: slot.endpoint.address,
        memberId: res.header?.memberId ?? 0n,
        hash: res.hash,
        revision: res.header?.revision ?? 0n,
        compactRevision: res.compactRevision,
        hashRevision: res.hashRevision,
      };
    });
  }

  /**
   * Streams one member's backend snapshot into a file or any `Writable` and
   * verifies its SHA-256; see {@link SnapshotOptions}. A file path only ever
   * receives a complete, verified snapshot (it is written under `.part` and
   * renamed). Restore it with `etcdutl snapshot restore` (3.4: `etcdctl`).
   *
   * @throws SnapshotVerificationError when the stream is incomplete or does not match its digest.
   */
  snapshot(destination: string | Writable, options?: SnapshotOptions): Promise<SnapshotInfo> {
    return takeSnapshot(this.ctx, destination, options);
  }

  /**
   * Hands leadership to another voting member. The request must reach the
   * current leader: it is found from the members' status and the member
   * list, and asked again if leadership moved meanwhile. Resolves once the
   * target leads.
   *
   * @throws BadLeaderTransfereeError for a learner or a member that does not exist
   */
  async moveLeader(targetId: bigint, options?: Pick<CallOptions, "signal" | "timeoutMs">): Promise<void> {
    checkId(targetId);
    const started = Date.now();
    const budget = options?.timeoutMs;
    const left = (): number | undefined => {
      if (budget === undefined) return undefined;
      const ms = budget - (Date.now() - started);
      if (ms <= 0) throw new DeadlineExceededError(budget);
      return ms;
    };
    const signal = options?.signal;
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const leaderUrl = await this.leaderUrl(left(), signal);
      try {
        await onEndpoint(this.ctx, leaderUrl, (slot) =>
          this.ctx.transport.unaryOn(slot, MaintenanceService.method.moveLeader, { targetID: targetId }, left(), signal),
        );
        return;
      } catch (e) {
        // Leadership moved between finding the leader and asking it: nothing was done, find it again.
        if (!(e instanceof NotLeaderError)) throw e;
        lastError = e;
      }
    }
    throw lastError;
  }

  /**
   * Checks whether the cluster may be downgraded to `version` (`major.minor`,
   * one minor below the cluster version). Resolves with the cluster version.
   *
   * @throws NotSupportedError on etcd 3.4, which has no downgrade.
   */
  async downgradeValidate(
    version: string,
    options?: CallOptions,
  ): Promise<{
    /** The cluster version now. */
    clusterVersion: string;
  }> {
    return this.downgrade(DowngradeRequest_DowngradeAction.VALIDATE, checkVersion(version), options);
  }

  /**
   * Starts a downgrade to `version`: members then accept binaries of that
   * version. Resolves with the cluster version.
   *
   * @throws NotSupportedError on etcd 3.4.
   */
  async downgradeEnable(
    version: string,
    options?: CallOptions,
  ): Promise<{
    /** The cluster version when the downgrade was enabled. */
    clusterVersion: string;
  }> {
    return this.downgrade(DowngradeRequest_DowngradeAction.ENABLE, checkVersion(version), options);
  }

  /**
   * Cancels a downgrade under way. Resolves with the cluster version.
   *
   * @throws NoInflightDowngradeError when there is none.
   * @throws NotSupportedError on etcd 3.4.
   */
  async downgradeCancel(
    options?: CallOptions,
  ): Promise<{
    /** The cluster version now. */
    clusterVersion: string;
  }> {
    return this.downgrade(DowngradeRequest_DowngradeAction.CANCEL, "", options);
  }

  private async downgrade(action: DowngradeRequest_DowngradeAction, version: string, options: CallOptions | undefined): Promise<{ clusterVersion: string }> {
    const res = await this.versions.guard("Downgrade", ETCD_3_5, () => this.ctx.raw.maintenance.downgrade({ action, version }, toConnectOptions(options)), options);
    return { clusterVersion: res.version };
  }

  /** Client URL of the current leader, as the pinned member and the member list tell. */
  private async leaderUrl(timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<string> {
    const slot = this.ctx.pool.pick();
    const st = await this.ctx.transport.unaryOn(slot, MaintenanceService.method.status, {}, timeoutMs, signal);
    if (st.leader === 0n) throw new NoLeaderError("etcdserver: no leader", Code.Unavailable, { endpoint: slot.endpoint.address });
    if (st.header?.memberId === st.leader) return slot.endpoint.origin;
    const opts = { ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(signal ? { signal } : {}) };
    const list = await this.ctx.raw.cluster.memberList({}, opts);
    const leader = list.members.find((m) => m.ID === st.leader);
    const url = leader?.clientURLs[0];
    if (url === undefined) {
      throw new NoLeaderError(`the leader ${st.leader.toString(16)} has no client URL in the member list`, Code.Unavailable, { endpoint: slot.endpoint.address });
    }
    return url;
  }
}

function toAlarms(list: AlarmMember[]): Alarm[] {
  return list.flatMap((a) => {
    const alarm = ALARM_NAMES[a.alarm];
    return alarm === undefined ? [] : [{ memberId: a.memberID, alarm }];
  });
}

function toStatus(endpoint: string, st: StatusResponse): MemberStatus {
  const memberId = st.header?.memberId ?? 0n;
  return {
    endpoint,
    memberId,
    clusterId: st.header?.clusterId ?? 0n,
    version: st.version,
    dbSize: st.dbSize,
    dbSizeInUse: st.dbSizeInUse,
    leader: st.leader,
    isLeader: st.leader !== 0n && st.leader === memberId,
    isLearner: st.isLearner,
    raftIndex: st.raftIndex,
    raftTerm: st.raftTerm,
    raftAppliedIndex: st.raftAppliedIndex,
    revision: st.header?.revision ?? 0n,
    errors: st.errors,
    dbSizeQuota: st.dbSizeQuota,
  };
}

function checkAlarm(a: unknown): Alarm {
  const x = a as Partial<Alarm> | null;
  if (typeof x !== "object" || x === null || typeof x.memberId !== "bigint" || x.alarm === undefined || !(x.alarm in ALARM_TYPES)) {
    throw new InvalidOptionError('alarm: give { memberId: bigint, alarm: "NOSPACE" | "CORRUPT" }, as listed by alarms()');
  }
  return { memberId: x.memberId, alarm: x.alarm };
}

function checkVersion(v: unknown): string {
  if (typeof v !== "string" || !/^\d+\.\d+(\.\d+)?$/.test(v)) throw new InvalidOptionError(`downgrade version must look like "3.4", got ${describeValue(v)}`);
  return v;
}
