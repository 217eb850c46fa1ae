// Fault injection over the harness's 3-member cluster: SIGKILL and restart of
// a member (the leader included), SIGSTOP/SIGCONT, a blackholed or reset TCP
// proxy between clients and a member, leader transfer, and compaction.
//
// The schedule is a pure function of a seed (planFaults), so a run can be
// replayed with the seed it printed; which member leads at the time is looked
// up when the fault runs. Faults run one at a time, and a fault that stops a
// member waits for the whole cluster to be healthy again before the next one
// starts: at most one member is ever down, so a quorum always stays.
import type { EtcdCluster, TcpProxy } from "../harness/index.js";
import type { Etcd } from "../../src/index.js";
import { Random } from "./random.js";
import { describeError } from "./history.js";

/** The kinds of fault. */
export type FaultKind = "kill" | "kill-leader" | "pause" | "pause-leader" | "blackhole" | "reset" | "move-leader" | "compact";

/** One fault of a schedule. */
export interface PlannedFault {
  kind: FaultKind;
  /** Wait before the fault starts. */
  gapMs: number;
  /** How long the member stays down, stopped or blackholed. */
  durationMs: number;
  /** A number to pick the member (or the new leader) from the candidates. */
  target: number;
}

/** Default relative frequency of each kind. */
export const DEFAULT_FAULT_WEIGHTS: Readonly<Record<FaultKind, number>> = {
  kill: 2,
  "kill-leader": 1,
  pause: 1,
  "pause-leader": 1,
  blackhole: 2,
  reset: 2,
  "move-leader": 2,
  compact: 1,
};

/** The first `count` faults of the schedule for `seed`. */
export function planFaults(seed: number, count: number, weights: Readonly<Record<FaultKind, number>> = DEFAULT_FAULT_WEIGHTS): PlannedFault[] {
  const rnd = new Random(seed).derive(0xfa017);
  return Array.from({ length: count }, () => {
    // Draw every field every time, so one fault's kind does not shift the next one's numbers.
    const kind = rnd.weighted(weights);
    const gapMs = rnd.int(300, 2000);
    const durationMs = rnd.int(500, 4000);
    const target = rnd.int(0, 1_000_000);
    return { kind, gapMs, durationMs, target };
  });
}

/** What happened when a fault ran. Times in ms on the run's clock. */
export interface FaultRecord {
  kind: FaultKind;
  /** Member (or proxy) name, e.g. `m2`, `proxy m1`, `m1 -> m3`, `rev 1234`. */
  target: string;
  start: number;
  end: number;
  ok: boolean;
  detail?: string;
}

/** What the injector works on. */
export interface FaultTargets {
  cluster: EtcdCluster;
  /** One proxy per member, in member order. */
  proxies: readonly TcpProxy[];
  /** One client per member, talking to that member only (status, move-leader). */
  memberClients: readonly Etcd[];
  /** A client for compaction and for reading the current revision. */
  admin: Etcd;
  /** A key to read for the current revision. */
  probeKey: string;
  /** Called with the revision before compacting it: read the history up to there first. */
  beforeCompact: (revision: bigint) => Promise<void>;
  /** The run's clock. */
  now: () => number;
  log?: (line: string) => void;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** Runs a schedule of faults against a cluster, and heals it. */
export class FaultInjector {
  readonly records: FaultRecord[] = [];

  constructor(private readonly t: FaultTargets) {}

  /** Runs the faults in order until the schedule ends or `signal` fires; a fault under way finishes (and heals) first. */
  async run(plan: readonly PlannedFault[], signal: AbortSignal): Promise<void> {
    for (const f of plan) {
      await sleep(f.gapMs, signal);
      if (signal.aborted) return;
      const rec = await this.inject(f, signal);
      if (!rec.ok && (f.kind.startsWith("kill") || f.kind.startsWith("pause"))) {
        // A member that did not come back must not be joined by a second one: heal, or stop injecting.
        try {
          await this.heal();
        } catch (e) {
          this.t.log?.(`the cluster did not heal (${describeError(e)}); no more faults`);
          return;
        }
      }
    }
  }

  /** Runs one fault and records it. */
  async inject(f: PlannedFault, signal?: AbortSignal): Promise<FaultRecord> {
    const rec: FaultRecord = { kind: f.kind, target: "?", start: this.t.now(), end: 0, ok: true };
    this.records.push(rec);
    try {
      await this.apply(f, rec, signal);
    } catch (e) {
      rec.ok = false;
      rec.detail = describeError(e);
    }
    rec.end = this.t.now();
    this.t.log?.(`fault ${rec.kind} ${rec.target} ${rec.ok ? "done" : `failed: ${rec.detail}`} (${(rec.end - rec.start).toFixed(0)} ms)`);
    return rec;
  }

  private async apply(f: PlannedFault, rec: FaultRecord, signal: AbortSignal | undefined): Promise<void> {
    const { cluster, proxies } = this.t;
    const n = cluster.members.length;
    switch (f.kind) {
      case "kill":
      case "kill-leader": {
        const i = f.kind === "kill" ? f.target % n : await this.leaderIndex();
        const m = cluster.members[i]!;
        rec.target = m.name + (f.kind === "kill-leader" ? " (leader)" : "");
        await m.kill();
        await sleep(f.durationMs, signal);
        m.start();
        await this.waitHealthy();
        return;
      }
      case "pause":
      case "pause-leader": {
        const i = f.kind === "pause" ? f.target % n : await this.leaderIndex();
        const m = cluster.members[i]!;
        rec.target = m.name + (f.kind === "pause-leader" ? " (leader)" : "");
        await m.pause();
        try {
          await sleep(f.durationMs, signal);
        } finally {
          m.resume();
        }
        await this.waitHealthy();
        return;
      }
      case "blackhole": {
        const i = f.target % n;
        rec.target = `proxy ${cluster.members[i]!.name}`;
        const p = proxies[i]!;
        p.blackhole();
        try {
          await sleep(f.durationMs, signal);
        } finally {
          // The proxy dropped what it received meanwhile, so the open connections are beyond repair:
          // reset them (as keep-alive pings would have ended them) before letting traffic through again.
          p.cutAll();
          p.pass();
        }
        return;
      }
      case "reset": {
        const i = f.target % n;
        rec.target = `proxy ${cluster.members[i]!.name}`;
        proxies[i]!.cutAll();
        return;
      }
      case "move-leader": {
        const { leader, ids } = await this.members();
        const followers = ids.map((_, i) => i).filter((i) => i !== leader && ids[i] !== undefined);
        if (followers.length === 0) throw new Error("no follower to move the leadership to");
        const to = followers[f.target % followers.length]!;
        rec.target = `${cluster.members[leader]!.name} -> ${cluster.members[to]!.name}`;
        // MoveLeader must go to the leader itself.
        await this.t.memberClients[leader]!.raw.maintenance.moveLeader({ targetID: ids[to]! }, { timeoutMs: 5000 });
        return;
      }
      case "compact": {
        const current = (await this.t.admin.get(this.t.probeKey, { timeoutMs: 3000 })).revision;
        // Keep a little recent history, so compaction lands while clients are working just past it.
        const revision = current - BigInt(f.target % 20);
        rec.target = `rev ${revision}`;
        if (revision <= 1n) return;
        await this.t.beforeCompact(revision);
        await this.t.admin.compact(revision, { timeoutMs: 5000 });
        return;
      }
    }
  }

  /** Asks every member for its status: the leader's index and each member's id (undefined if it did not answer). */
  private async members(): Promise<{ leader: number; ids: Array<bigint | undefined> }> {
    const answers = await Promise.allSettled(this.t.memberClients.map((c) => c.raw.maintenance.status({}, { timeoutMs: 2000 })));
    const ids = answers.map((a) => (a.status === "fulfilled" ? a.value.header?.memberId : undefined));
    for (const a of answers) {
      if (a.status !== "fulfilled") continue;
      const i = ids.indexOf(a.value.leader);
      if (a.value.leader !== 0n && i >= 0) return { leader: i, ids };
    }
    throw new Error(`no leader known: ${answers.map((a) => (a.status === "rejected" ? describeError(a.reason) : `leader ${a.value.leader}`)).join("; ")}`);
  }

  private async leaderIndex(): Promise<number> {
    return (await this.members()).leader;
  }

  /** Waits (up to 30 s) until every member is running and healthy. */
  private async waitHealthy(): Promise<void> {
    await Promise.all(this.t.cluster.members.map((m) => m.waitReady(30_000)));
  }

  /** Undoes every fault: proxies pass traffic, stopped members continue, killed ones restart; waits for health. */
  async heal(): Promise<void> {
    for (const p of this.t.proxies) p.pass();
    await this.t.cluster.heal();
  }
}
