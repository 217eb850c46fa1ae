/**
 * Failover latency: how long reads stall when the member a client talks to
 * dies (SIGKILL) or hangs (SIGSTOP), for this client and the `etcd3` npm
 * package, against one 3-member cluster this script starts. Trials are
 * interleaved (ours, etcd3, ours, etcd3, ...) and each uses a fresh client.
 * This is a benchmark: it reports numbers and never fails on them.
 *
 * A trial: the client reads one key in a loop, one read at a time, each with a
 * deadline. After a warm-up, right after a read that the victim member served
 * (the response header names the member), the victim gets the fault. Recovery
 * is the time from the fault to the first successful read served by another
 * member, capped. The loop then goes on for a short tail, and the longest
 * stall (time without a successful read) since the fault is reported too:
 * etcd3 picks a random member for every call, so its first read after a fault
 * usually goes elsewhere while later reads still land on the hung member.
 *
 *   npm run bench:failover                           # table
 *   npm run bench:failover -- --trials 5 --json out.json
 *   npm run bench:failover -- --only stop --read-timeout 2000 --victim leader
 *
 * Options: --trials N (7), --read-timeout MS (10000), --cap MS (30000),
 * --tail MS (3000), --keepalive-interval MS (5000), --keepalive-timeout MS (1000),
 * --victim follower|leader (follower), --only kill|stop, --json FILE.
 */
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { MIN_PING_INTERVAL_MS } from "../src/transport/keep-alive.js";
import { Etcd3 } from "etcd3";
import { Etcd } from "../src/index.js";
import { startCluster, type EtcdCluster, type EtcdMember } from "../test/harness/index.js";

type Fault = "kill" | "stop";

/** A client under test, opened fresh for every trial. */
interface Subject {
  name: string;
  open(endpoints: string[]): Reader;
}

interface Reader {
  /** One read of {@link KEY} with the read deadline; resolves with the ID of the member that served it. */
  read(): Promise<string>;
  /** The endpoint the client is pinned to, when it has such a notion. */
  pinned(): string | undefined;
  close(): void;
}

interface Trial {
  client: string;
  fault: Fault;
  trial: number;
  victim: string;
  victimWasLeader: boolean;
  /** Fault to first successful read served by another member; null when none came within the cap. */
  recoveryMs: number | null;
  /** Longest time without a successful read, from the fault to the end of the trial. */
  longestStallMs: number;
  readsAfterFault: number;
  failedReadsAfterFault: number;
  /** For this client: the pinned endpoint was the victim when the fault hit. */
  pinnedToVictim: boolean | null;
  /** A few distinct errors seen after the fault. */
  errors: string[];
}

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string, dflt: number): number => {
  const v = Number(arg(name) ?? dflt);
  if (!Number.isFinite(v) || v < 0) throw new TypeError(`${name}: expected a number, got ${arg(name)}`);
  return v;
};
const trials = Math.max(1, Math.floor(num("--trials", 7)));
const readTimeoutMs = num("--read-timeout", 10_000);
const capMs = num("--cap", 30_000);
const tailMs = num("--tail", 3000);
const keepAliveIntervalMs = num("--keepalive-interval", 10000);
const keepAliveTimeoutMs = num("--keepalive-timeout", 1000);
const victimRole = arg("--victim") ?? "follower";
const only = arg("--only");
const jsonOut = arg("--json");
if (victimRole !== "follower" && victimRole !== "leader") throw new TypeError("--victim: follower or leader");
if (only !== undefined && only !== "kill" && only !== "stop") throw new TypeError("--only: kill or stop");
const faults: Fault[] = only === undefined ? ["kill", "stop"] : [only];

const KEY = "bench/failover/key";
/** Reads before a fault may hit, so connections are open and code is warm. */
const WARM_READS = 50;
/** Bounds of the warm-up: etcd3 must land on the victim by chance within these. */
const WARM_MAX_READS = 5000;
const WARM_MAX_MS = 10_000;
/** Bound on reads per trial, whatever the timings. */
const MAX_READS = 2_000_000;
/** A read still pending this long after its own deadline counts as failed, so a client bug cannot hang the run. */
const GUARD_MS = 2000;

const ours: Subject = {
  name: "this client",
  open(endpoints) {
    const etcd = new Etcd({ endpoints, keepAliveIntervalMs, keepAliveTimeoutMs });
    return {
      read: async () => String((await etcd.get(KEY, { timeoutMs: readTimeoutMs })).header?.memberId),
      pinned: () => etcd.info().find((i) => i.pinned)?.url.replace(/^https?:\/\//, ""),
      close: () => void etcd.close(),
    };
  },
};

const etcd3: Subject = {
  name: "etcd3",
  open(endpoints) {
    // Defaults otherwise: etcd3 has no keep-alive and no call deadline of its own.
    const c = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
    return {
      // exec() instead of string(): the same single Range call, but the header names the member that served it.
      // The gRPC deadline is absolute, so etcd3's internal retries share it, like ours share timeoutMs.
      read: async () => (await c.get(KEY).options({ deadline: Date.now() + readTimeoutMs }).exec()).header.member_id,
      pinned: () => undefined,
      close: () => c.close(),
    };
  },
};

const subjects = [ours, etcd3];

interface MemberInfo {
  member: EtcdMember;
  id: string;
  leader: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Member IDs and the leader, once every member answers and exactly one calls itself leader. */
async function memberInfo(admin: Etcd, cluster: EtcdCluster): Promise<MemberInfo[]> {
  for (let i = 0; i < 60; i++) {
    const st = await admin.status({ timeoutMs: 1000 });
    if (st.every((s) => s.memberId !== undefined) && st.filter((s) => s.isLeader).length === 1) {
      return cluster.members.map((m) => {
        const s = st.find((x) => new URL(x.url).host === m.endpoint)!;
        return { member: m, id: String(s.memberId), leader: s.isLeader === true };
      });
    }
    await sleep(250);
  }
  throw new Error("the cluster did not report three members and one leader within 15 s");
}

function guarded<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`read still pending ${ms} ms after it started (bench guard)`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

async function runTrial(subject: Subject, fault: Fault, trial: number, cluster: EtcdCluster, admin: Etcd): Promise<Trial> {
  const members = await memberInfo(admin, cluster);
  const candidates = members.filter((m) => m.leader === (victimRole === "leader"));
  // Rotate through the candidates so no single member decides the result.
  const victim = candidates[trial % candidates.length]!;
  // Victim first: our client pins the first endpoint; etcd3 shuffles per call, so the order does not matter to it.
  const endpoints = [victim.member.endpoint, ...members.filter((m) => m !== victim).map((m) => m.member.endpoint)];
  const reader = subject.open(endpoints);
  const result: Trial = {
    client: subject.name,
    fault,
    trial,
    victim: victim.member.name,
    victimWasLeader: victim.leader,
    recoveryMs: null,
    longestStallMs: 0,
    readsAfterFault: 0,
    failedReadsAfterFault: 0,
    pinnedToVictim: null,
    errors: [],
  };
  let faulted: Promise<void> = Promise.resolve();
  try {
    const warmStart = performance.now();
    let t0: number | undefined;
    let firstOk: number | undefined;
    let lastOk = 0;
    let lastEnd = 0;
    for (let n = 0; n < MAX_READS; n++) {
      const now = performance.now();
      if (t0 === undefined && (n >= WARM_MAX_READS || now - warmStart > WARM_MAX_MS)) {
        throw new Error(`${subject.name}: no read served by ${victim.member.name} during warm-up`);
      }
      if (t0 !== undefined && now - t0 >= (firstOk === undefined ? capMs : Math.min(capMs, firstOk - t0 + tailMs))) break;
      let served: string | undefined;
      let error: unknown;
      try {
        served = await guarded(reader.read(), readTimeoutMs + GUARD_MS);
      } catch (e) {
        error = e;
      }
      const end = performance.now();
      if (t0 === undefined) {
        if (served === victim.id && n + 1 >= WARM_READS) {
          const pinned = reader.pinned();
          result.pinnedToVictim = pinned === undefined ? null : pinned === victim.member.endpoint;
          t0 = performance.now();
          lastOk = t0;
          if (fault === "kill") faulted = victim.member.kill();
          else faulted = victim.member.pause();
        }
        continue;
      }
      result.readsAfterFault++;
      lastEnd = end;
      if (error !== undefined) {
        result.failedReadsAfterFault++;
        const msg = `${(error as Error).name}: ${(error as Error).message}`.slice(0, 160);
        if (result.errors.length < 3 && !result.errors.includes(msg)) result.errors.push(msg);
      } else if (served !== victim.id) {
        // A read the victim answered after the signal was sent raced the fault; it is no recovery.
        result.longestStallMs = Math.max(result.longestStallMs, end - lastOk);
        lastOk = end;
        firstOk ??= end;
      }
    }
    if (t0 === undefined) throw new Error(`${subject.name}: read limit reached before the fault`);
    // A stall still open at the end of the trial (a failing read, or no success at all) counts too.
    result.longestStallMs = Math.max(result.longestStallMs, lastEnd - lastOk);
    result.recoveryMs = firstOk === undefined ? null : firstOk - t0;
  } finally {
    reader.close();
    await faulted;
    await cluster.heal();
  }
  return result;
}

/** Nearest-rank percentile; with fewer than 100 samples p99 is the maximum. */
function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)]!;
}

interface Summary {
  trials: number;
  recovered: number;
  /** null: above the cap. */
  recoveryP50Ms: number | null;
  recoveryP99Ms: number | null;
  longestStallP50Ms: number;
  longestStallP99Ms: number;
  failedReadsMedian: number;
}

function summarize(ts: Trial[]): Summary {
  const rec = ts.map((t) => t.recoveryMs ?? Infinity);
  const fin = (x: number): number | null => (Number.isFinite(x) ? x : null);
  return {
    trials: ts.length,
    recovered: ts.filter((t) => t.recoveryMs !== null).length,
    recoveryP50Ms: fin(percentile(rec, 0.5)),
    recoveryP99Ms: fin(percentile(rec, 0.99)),
    longestStallP50Ms: percentile(ts.map((t) => t.longestStallMs), 0.5),
    longestStallP99Ms: percentile(ts.map((t) => t.longestStallMs), 0.99),
    failedReadsMedian: percentile(ts.map((t) => t.failedReadsAfterFault), 0.5),
  };
}

const ms = (x: number | null): string => (x === null ? `> ${capMs} ms` : x < 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(0)} ms`);

/** etcd3 / ours; a side above the cap makes it a bound or meaningless. */
function ratio(them: number | null, us: number | null): string {
  if (us === null) return "n/a";
  if (them === null) return `> ${(capMs / Math.max(us, 0.1)).toFixed(1)}x`;
  return `${(them / Math.max(us, 0.1)).toFixed(2)}x`;
}

const FAULT_NAME: Record<Fault, string> = { kill: "SIGKILL", stop: "SIGSTOP" };

function printTable(summaries: Record<Fault, Record<string, Summary>>): void {
  console.log("\n| fault | client | recovered | recovery p50 | recovery p99 | longest stall p50 | longest stall p99 | failed reads (median) |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const f of faults) {
    const us = summaries[f][ours.name]!;
    const them = summaries[f][etcd3.name]!;
    for (const [name, s] of [[ours.name, us], [etcd3.name, them]] as const) {
      console.log(
        `| ${FAULT_NAME[f]} | ${name} | ${s.recovered}/${s.trials} | ${ms(s.recoveryP50Ms)} | ${ms(s.recoveryP99Ms)} | ${ms(s.longestStallP50Ms)} | ${ms(s.longestStallP99Ms)} | ${s.failedReadsMedian} |`,
      );
    }
    console.log(
      `| ${FAULT_NAME[f]} | etcd3 / ours | | ${ratio(them.recoveryP50Ms, us.recoveryP50Ms)} | ${ratio(them.recoveryP99Ms, us.recoveryP99Ms)} | ${ratio(them.longestStallP50Ms, us.longestStallP50Ms)} | ${ratio(them.longestStallP99Ms, us.longestStallP99Ms)} | |`,
    );
  }
}

async function main(): Promise<void> {
  const cluster = await startCluster(3);
  const admin = new Etcd({ endpoints: cluster.endpoints });
  // A run interrupted with Ctrl-C still stops the members it started.
  const onSigint = (): void => void cluster.stop().finally(() => process.exit(130));
  process.once("SIGINT", onSigint);
  try {
    await admin.put(KEY, "v");
    const server = cluster.members[0]!.version;
    const target = Math.max(MIN_PING_INTERVAL_MS, keepAliveIntervalMs) + keepAliveTimeoutMs + 1000;
    console.log(
      `etcd ${server}, 3 members; ${trials} trial(s) per fault per client; victim: a ${victimRole}; ` +
        `read deadline ${readTimeoutMs} ms; cap ${capMs} ms; tail ${tailMs} ms\n` +
        `this client: keepAliveIntervalMs ${keepAliveIntervalMs}, keepAliveTimeoutMs ${keepAliveTimeoutMs}, other options default; ` +
        `etcd3: defaults (no keep-alive), per-read gRPC deadline`,
    );
    const all: Trial[] = [];
    for (let i = 0; i < trials; i++) {
      for (const f of faults) {
        for (const s of subjects) {
          const t = await runTrial(s, f, i, cluster, admin);
          all.push(t);
          const pin = t.pinnedToVictim === false ? " (NOT pinned to the victim)" : "";
          console.log(
            `  trial ${i + 1} ${FAULT_NAME[f]} ${t.victim}${t.victimWasLeader ? " (leader)" : ""} ${s.name}: recovery ${ms(t.recoveryMs)}, ` +
              `longest stall ${ms(t.longestStallMs)}, ${t.failedReadsAfterFault}/${t.readsAfterFault} reads failed${pin}`,
          );
        }
      }
    }
    const summaries = Object.fromEntries(
      faults.map((f) => [f, Object.fromEntries(subjects.map((s) => [s.name, summarize(all.filter((t) => t.fault === f && t.client === s.name))]))]),
    ) as Record<Fault, Record<string, Summary>>;
    printTable(summaries);
    console.log(
      `\nPercentiles are nearest-rank over ${trials} trial(s): ${trials < 100 ? "p99 is the maximum. " : ""}` +
        `Recovery: fault to the first successful read served by another member. ` +
        `Longest stall: longest time without a successful read, from the fault to ${tailMs} ms after recovery.`,
    );
    if (faults.includes("stop")) {
      const p99 = summaries.stop[ours.name]!.recoveryP99Ms;
      console.log(
        `this client, SIGSTOP recovery p99 ${ms(p99)} vs target ${target} ms (ping interval + ping timeout + 1 s): ` +
          (p99 !== null && p99 <= target ? "within target" : "above target"),
      );
    }
    if (jsonOut !== undefined) {
      const settings = { trials, readTimeoutMs, capMs, tailMs, victim: victimRole, ours: { keepAliveIntervalMs, keepAliveTimeoutMs }, etcd3: "defaults" };
      writeFileSync(jsonOut, JSON.stringify({ server, settings, targetMs: target, summaries, trials: all }, null, 2) + "\n");
      console.log(`wrote ${jsonOut}`);
    }
  } finally {
    process.removeListener("SIGINT", onSigint);
    admin.close();
    await cluster.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
