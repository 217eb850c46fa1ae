/**
 * Cluster membership: list members, add (as a voting member or a learner),
 * remove, change peer URLs, promote a learner. Membership changes are
 * writes: not retried once they may have reached the server (a retried add
 * could add a second member), unless the caller opts in with `retryWrites`.
 * @module
 */
import type { Member as MemberMessage, ResponseHeader } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { toConnectOptions, type CallOptions } from "../call-options.js";
import { Code } from "@connectrpc/connect";
import { EtcdError, InvalidOptionError } from "../errors.js";
import type { AdminContext } from "./endpoint-target.js";
import { ETCD_3_5, ServerVersions } from "./server-version.js";
import { describeValue } from "../describe-value.js";

/** A cluster member as the member list reports it. */
export interface Member {
  /** The member's ID. */
  id: bigint;
  /** Empty until the member has started and published itself. */
  name: string;
  /** URLs the other members reach it at. */
  peerURLs: string[];
  /** Empty until the member has started. */
  clientURLs: string[];
  /** A non-voting member that receives the log but does not count for quorum. */
  isLearner: boolean;
  /** True once the member has started (it has a name). */
  started: boolean;
}

/** The member list, and who answered. */
export interface MemberList {
  /** Every member, learners included. */
  members: Member[];
  /** The cluster's ID. */
  clusterId: bigint;
  /** ID of the member that answered. */
  memberId: bigint;
  /** Raft term of the answering member. */
  raftTerm: bigint;
}

/** Result of adding a member. */
export interface MemberAddResult {
  /** The new member: ID and peer URLs; name and client URLs come once it starts. */
  member: Member;
  /** The membership after the change. */
  members: Member[];
}

/** Options of {@link Cluster.list}. */
export interface MemberListOptions extends CallOptions {
  /**
   * Read the member list through raft (etcd 3.5+), so it reflects every
   * change committed before the call. Default false: the answering member's
   * own view, which may lag just after a change.
   */
  linearizable?: boolean;
}

/**
 * The Cluster API, as `etcd.cluster`.
 *
 * ```ts
 * const { member } = await etcd.cluster.addLearner(["http://10.0.0.4:2380"]);
 * // ... start etcd on 10.0.0.4 with --initial-cluster-state existing, let it catch up ...
 * await etcd.cluster.promote(member.id);
 * ```
 */
export class Cluster {
  private readonly versions: ServerVersions;

  /** @internal */
  constructor(
    private readonly ctx: AdminContext,
    versions?: ServerVersions,
  ) {
    this.versions = versions ?? new ServerVersions(ctx);
  }

  /**
   * The members of the cluster.
   *
   * @throws NotSupportedError with `linearizable` when a member runs etcd
   * older than 3.5 (it would ignore the flag); nothing is sent then.
   */
  async list(options?: MemberListOptions): Promise<MemberList> {
    if (options?.linearizable === true) await this.versions.require("linearizable member list", ETCD_3_5, options);
    const res = await this.ctx.raw.cluster.memberList({ linearizable: options?.linearizable === true }, toConnectOptions(options));
    return { members: res.members.map(toMember), ...headerIds(res.header) };
  }

  /**
   * Adds a member with the given peer URLs; start its etcd afterwards with
   * `--initial-cluster-state existing`. A voting member changes the quorum
   * at once, before it has started: prefer {@link Cluster.addLearner}.
   */
  async add(peerURLs: string[], options?: CallOptions & { learner?: boolean }): Promise<MemberAddResult> {
    const urls = checkPeerUrls(peerURLs);
    const res = await this.ctx.raw.cluster.memberAdd({ peerURLs: urls, isLearner: options?.learner === true }, toConnectOptions(options));
    if (res.member === undefined) throw new EtcdError("protocol error: MemberAdd answered without the new member", Code.Internal);
    return { member: toMember(res.member), members: res.members.map(toMember) };
  }

  /**
   * Adds a learner: a member that receives the log without voting, so a slow
   * or broken new member cannot cost the cluster its quorum. Promote it once
   * it has caught up. @throws TooManyLearnersError
   */
  addLearner(peerURLs: string[], options?: CallOptions): Promise<MemberAddResult> {
    return this.add(peerURLs, { ...options, learner: true });
  }

  /** Removes a member; returns the membership after the change. @throws MemberNotFoundError */
  async remove(id: bigint, options?: CallOptions): Promise<Member[]> {
    const res = await this.ctx.raw.cluster.memberRemove({ ID: checkId(id) }, toConnectOptions(options));
    return res.members.map(toMember);
  }

  /** Changes a member's peer URLs; returns the membership after the change. */
  async updatePeerURLs(id: bigint, peerURLs: string[], options?: CallOptions): Promise<Member[]> {
    const res = await this.ctx.raw.cluster.memberUpdate({ ID: checkId(id), peerURLs: checkPeerUrls(peerURLs) }, toConnectOptions(options));
    return res.members.map(toMember);
  }

  /**
   * Makes a learner a voting member; returns the membership after the change.
   * @throws LearnerNotReadyError while the learner lags the leader (retry later)
   * @throws MemberNotLearnerError for a member that is not a learner
   */
  async promote(id: bigint, options?: CallOptions): Promise<Member[]> {
    const res = await this.ctx.raw.cluster.memberPromote({ ID: checkId(id) }, toConnectOptions(options));
    return res.members.map(toMember);
  }
}

/** Converts a wire member. */
export function toMember(m: MemberMessage): Member {
  return { id: m.ID, name: m.name, peerURLs: m.peerURLs, clientURLs: m.clientURLs, isLearner: m.isLearner, started: m.name !== "" };
}

function headerIds(h: ResponseHeader | undefined): { clusterId: bigint; memberId: bigint; raftTerm: bigint } {
  return { clusterId: h?.clusterId ?? 0n, memberId: h?.memberId ?? 0n, raftTerm: h?.raftTerm ?? 0n };
}

/** A member ID: a non-zero unsigned 64-bit bigint. */
export function checkId(id: unknown): bigint {
  if (typeof id !== "bigint" || id <= 0n || id >= 1n << 64n) {
    throw new InvalidOptionError(`member ID must be a non-zero unsigned 64-bit bigint, got ${typeof id === "bigint" ? id.toString() : typeof id}`);
  }
  return id;
}

function checkPeerUrls(urls: unknown): string[] {
  if (!Array.isArray(urls) || urls.length === 0) throw new InvalidOptionError("peerURLs: give at least one peer URL, e.g. http://10.0.0.4:2380");
  for (const u of urls) {
    let ok = false;
    if (typeof u === "string") {
      try {
        const parsed = new URL(u);
        ok = (parsed.protocol === "http:" || parsed.protocol === "https:") && parsed.hostname !== "" && parsed.port !== "";
      } catch {
        ok = false;
      }
    }
    if (!ok) throw new InvalidOptionError(`peer URL ${describeValue(u)} is not of the form http(s)://host:port`);
  }
  return urls as string[];
}
