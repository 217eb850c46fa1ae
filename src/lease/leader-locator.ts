/**
 * Which endpoint is the raft leader. The keep-alive stream belongs there: a
 * follower forwards every renewal to the leader over its own HTTP
 * connection, one at a time per stream, so a stream on a follower answers
 * later and in a trickle (measured with 5,000 leases on 3 members: 3.5x the
 * client CPU, and fewer refreshes answered, than on the leader).
 * @module
 */
import { Maintenance } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { ClusterTransport } from "../cluster/cluster-transport.js";
import type { EndpointSlot } from "../cluster/endpoint-pool.js";

/**
 * Asks every healthy endpoint for its status (its own member ID and the
 * leader it follows) and returns the endpoint whose member leads, or
 * undefined: a single endpoint, no answer, or a leader that is not among the
 * endpoints or does not answer.
 */
export async function locateLeader(cluster: ClusterTransport, timeoutMs = 1000): Promise<EndpointSlot | undefined> {
  const slots = cluster.pool.slots;
  if (slots.length < 2) return undefined;
  const now = Date.now();
  const candidates = slots.filter((s) => s.retryAt <= now);
  const answers = await Promise.allSettled(candidates.map((s) => cluster.unaryOn(s, Maintenance.method.status, {}, timeoutMs)));
  const votes = new Map<bigint, number>();
  const byMember = new Map<bigint, EndpointSlot>();
  answers.forEach((a, i) => {
    if (a.status !== "fulfilled") return;
    const member = a.value.header?.memberId;
    if (member !== undefined) byMember.set(member, candidates[i]!);
    if (a.value.leader !== 0n) votes.set(a.value.leader, (votes.get(a.value.leader) ?? 0) + 1);
  });
  // The leader most members name (during an election, answers may disagree).
  let leader: bigint | undefined;
  let most = 0;
  for (const [id, n] of votes) {
    if (n > most) {
      leader = id;
      most = n;
    }
  }
  return leader === undefined ? undefined : byMember.get(leader);
}
