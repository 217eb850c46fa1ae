// The robustness run: a 3-member cluster, several clients (each with every
// member as an endpoint, some through fault-injecting proxies) doing
// concurrent put/get/delete/compare-and-swap on a few keys while faults are
// injected at random from a seed; then the cluster's own history is read and
// every checker runs. Bounded by an operation count and by seconds; stops by
// itself, heals the cluster, prints a summary, and keeps the history file
// when a check fails.
//
//   npm run robustness                        # ROBUSTNESS_SECONDS (default 300)
//   ROBUSTNESS_SEED=1234 npm run robustness   # replay a run's schedule and choices
//   node build/test/robustness/run.js --check .robustness/<file>.json   # re-check a saved history
import { mkdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Etcd, type EtcdOptions } from "../../src/index.js";
import { etcdVersion, startCluster, startProxy, type EtcdCluster, type TcpProxy } from "../harness/index.js";
import { HistoryArchiver, ClusterHistory, type Snapshot } from "./cluster-history.js";
import { FaultInjector, planFaults, type FaultRecord } from "./faults.js";
import { checkAgainstHistory, putValue, resolveUnknownWrites } from "./history-checks.js";
import { describeError, History, loadJson, saveJson, type KvRecord, type Operation } from "./history.js";
import { kvModel, toCheckOperations } from "./kv-model.js";
import { checkPartitioned, type Budget, type CheckResult } from "./linearizability.js";
import { freshSeed, Random } from "./random.js";
import { checkRevisionOrder, checkUniqueWriteRevisions, revisionOf } from "./revisions.js";
import { Violations, type Violation } from "./violation.js";
import { worker, execute } from "./workload.js";
import { checkWatcher, type WatcherLog } from "./watch-checker.js";
import { WatchObserver } from "./watch-observer.js";
import { checkLeases, type LeaseRecord } from "./lease-checker.js";
import { LeaseObserver } from "./lease-observer.js";
import { checkLockHolds } from "./lock-checker.js";
import { lockHolder, type LockRunState } from "./lock-holder.js";

/** What a run does. */
export interface RunOptions {
  /** Seed of the fault schedule and the workload's choices. Default: fresh (printed). */
  seed?: number;
  /** Stop issuing operations after this many seconds. */
  seconds: number;
  /** Stop issuing operations after this many, across all workers. */
  maxOps: number;
  /** Client instances. Default 4. */
  clients?: number;
  /** Sequential workers per client. Default 2. */
  workersPerClient?: number;
  /** Number of keys. Default 4. */
  keys?: number;
  /** Watchers of the run's keys, running across the faults. Default 3. */
  watchers?: number;
  /** Leases kept alive across the faults. Default 3. */
  leases?: number;
  /** Holders taking turns on one lock. Default 3. */
  lockHolders?: number;
  /** TTL of the kept leases and of the lock holders' leases, in seconds. Default 10. */
  leaseTtlSeconds?: number;
  /** Deadline of each operation. Default 3000 ms. */
  opTimeoutMs?: number;
  /** Inject faults. Default true. */
  faults?: boolean;
  /** `http2` or `connect-node`. Default: ETCD_TRANSPORT, else http2. */
  transport?: "http2" | "connect-node";
  /** Folder for history files. Default `.robustness`. */
  outDir?: string;
  /** Keep the history file even when every check passes. */
  keepHistory?: boolean;
  /** More options for the working clients (e.g. `retryWrites: true` to see the checks catch duplicated writes). */
  clientOptions?: Partial<EtcdOptions>;
  /** Budget of the linearizability search, per key. */
  budget?: Budget;
  /** Progress lines. Default: console.log. */
  log?: (line: string) => void;
}

/** The verdicts of the checkers on one run's data. */
export interface CheckReport {
  linearizability: { verdict: string; perKey: Array<{ key: string; verdict: string; ops: number; steps: number; detail?: string }> };
  /** The same search without resolving unknown writes from the cluster's history (a cross-check; undecided is fine). */
  linearizabilityUnresolved: { verdict: string; undecidedKeys: number };
  violations: Violation[];
  violationCounts: Record<string, number>;
  unknown: { total: number; resolvedApplied: number; resolvedNotApplied: number; unresolved: number };
  /** What the watchers, leases and lock holders did (violations are in `violations`). */
  watch: { watchers: number; logs: number; batches: number; events: number; progress: number; resumes: number; compacted: number };
  lease: { leases: number; lost: number; goneAtEnd: number };
  lock: { holds: number; failedLocks: number; uncertainReleases: number; unverified: number };
}

/** What the watchers, leases and lock holders of a run recorded. */
export interface Observations {
  /** Each watch log, with the revision it must have reached (the last log of each watcher). */
  watchers: Array<{ log: WatcherLog; reach?: bigint }>;
  leases: LeaseRecord[];
  locks: LockRunState;
}

const NO_OBSERVATIONS: Observations = { watchers: [], leases: [], locks: { holds: [], failedLocks: 0, uncertainReleases: 0, unverified: 0 } };

/** Everything a run produced. */
export interface RunReport extends CheckReport {
  seed: number;
  etcdVersion: string;
  transport: string;
  durationMs: number;
  opsByKind: Record<string, { ok: number; failed: number; unknown: number }>;
  faults: FaultRecord[];
  errorsByClass: Record<string, number>;
  historyFile: string | undefined;
  passed: boolean;
}

/** The data a history file holds. */
interface HistoryFile {
  seed: number;
  etcdVersion: string;
  transport: string;
  options: Omit<RunOptions, "log" | "clientOptions"> & { clientOptions?: string };
  operations: Operation[];
  faults: FaultRecord[];
  clusterHistory: ReturnType<ClusterHistory["toJSON"]>;
  /** Absent in files from before watchers, leases and locks were recorded. */
  observations?: Observations;
  report?: CheckReport;
  /** Set when the run itself broke (the history is what was recorded until then). */
  error?: string;
}

function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

const PROXY_PATTERNS: number[][] = [[], [0, 1, 2], [0], [1, 2], [2], [0, 1]];

/** Runs the checkers on recorded operations and the cluster's history. */
export function checkRun(ops: readonly Operation[], history: ClusterHistory, budget: Budget = {}, seen: Observations = NO_OBSERVATIONS): CheckReport {
  const v = new Violations();
  const resolved = resolveUnknownWrites(ops, history);
  checkAgainstHistory(resolved, history, v);
  checkUniqueWriteRevisions(resolved, v);
  checkRevisionOrder(ops, v);
  for (const op of ops) {
    if (op.untypedError) v.add("untyped-error", `${op.input.kind} #${op.id} (${op.client}) failed with a non-EtcdError: ${op.error}`, [op.id]);
  }

  const lin = checkPartitioned(kvModel, toCheckOperations(resolved), (o) => o.key, budget);
  const perKey = [...lin.partitions].map(([key, r]) => ({
    key,
    verdict: r.verdict,
    ops: resolved.filter((o) => o.input.key === key).length,
    steps: r.steps,
    ...(r.verdict !== "linearizable" ? { detail: describeResult(r, ops) } : {}),
  }));
  for (const k of perKey) if (k.verdict === "not-linearizable") v.add("linearizability", `${k.key}: ${k.detail}`);

  // Cross-check: the same search with unknown writes left pending. Leaving them open only allows more,
  // so it can never fail where the resolved check passed; if it does, a checker is wrong.
  const unresolved = checkPartitioned(kvModel, toCheckOperations(ops), (o) => o.key, { maxSteps: 200_000, maxMs: 5_000, ...budget });
  for (const [k, r] of unresolved.partitions) {
    if (r.verdict === "not-linearizable" && lin.partitions.get(k)?.verdict === "linearizable") {
      v.add("linearizability-cross-check", `${k}: linearizable with unknown writes resolved, but not with them pending: ${describeResult(r, ops)}`);
    }
  }

  // Watchers must deliver every acknowledged write in their range (unknown ones resolved as applied too).
  const acknowledged = resolved.flatMap((op) => {
    const r = revisionOf(op);
    if ((op.outcome !== "ok" && op.resolved !== "applied") || r === undefined || !r.wrote) return [];
    const value = putValue(op);
    return [value !== undefined ? { key: op.input.key, type: "put" as const, revision: r.revision, value } : { key: op.input.key, type: "delete" as const, revision: r.revision }];
  });
  for (const w of seen.watchers) checkWatcher(w.log, history, { acknowledged, ...(w.reach !== undefined ? { reach: w.reach } : {}) }, v);
  // Every client could reach a quorum throughout: at most one member is ever down or cut off, and each client has all three.
  checkLeases(seen.leases, [], {}, v);
  checkLockHolds(seen.locks.holds, v);

  const unknown = ops.filter((o) => o.outcome === "unknown").length;
  const applied = resolved.filter((o) => o.resolved === "applied").length;
  const notApplied = resolved.filter((o) => o.resolved === "not-applied").length;
  return {
    linearizability: { verdict: lin.verdict, perKey },
    linearizabilityUnresolved: { verdict: unresolved.verdict, undecidedKeys: [...unresolved.partitions.values()].filter((r) => r.verdict === "undecided").length },
    violations: v.list,
    violationCounts: Object.fromEntries(v.counts),
    unknown: { total: unknown, resolvedApplied: applied, resolvedNotApplied: notApplied, unresolved: unknown - applied - notApplied },
    watch: summarizeWatch(seen.watchers.map((w) => w.log)),
    lease: {
      leases: seen.leases.length,
      lost: seen.leases.filter((l) => l.lostAt !== undefined && l.lostAt <= l.keptAliveUntil).length,
      goneAtEnd: seen.leases.filter((l) => l.existsAtEnd === false).length,
    },
    lock: { holds: seen.locks.holds.length, failedLocks: seen.locks.failedLocks, uncertainReleases: seen.locks.uncertainReleases, unverified: seen.locks.unverified },
  };
}

function summarizeWatch(logs: readonly WatcherLog[]): CheckReport["watch"] {
  const out = { watchers: new Set(logs.map((l) => l.id.split(".")[0])).size, logs: logs.length, batches: 0, events: 0, progress: 0, resumes: 0, compacted: 0 };
  for (const l of logs) {
    for (const e of l.entries) {
      if (e.kind === "batch") {
        out.batches++;
        out.events += e.events.length;
      } else if (e.kind === "progress") out.progress++;
      else if (e.kind === "resume") out.resumes++;
      else if (e.kind === "compacted") out.compacted++;
    }
  }
  return out;
}

/** JSON with bigints as numbers, for reports. */
function text(x: unknown): string {
  return JSON.stringify(x, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v));
}

function describeResult(r: CheckResult, ops: readonly Operation[]): string {
  const show = (id: number): string => {
    const o = ops[id];
    if (o === undefined) return `#${id}`;
    const out = o.output === undefined ? o.outcome : text(o.output);
    return `#${id} ${o.client} ${text(o.input)} -> ${out} [${o.call.toFixed(1)}, ${o.ret === Infinity ? "∞" : o.ret.toFixed(1)}]`;
  };
  if (r.verdict === "undecided") return `could not decide within ${r.steps} steps (${r.reason} budget); longest prefix ${r.longest.length} ops`;
  if (r.verdict === "not-linearizable") {
    return `no linearization; the longest prefix has ${r.longest.length} ops ending with ${r.longest.slice(-3).map(show).join(" | ")}; state then: ${r.stateAfterLongest}; none of these fit next: ${r.stuckAt.slice(0, 6).map(show).join(" | ")}`;
  }
  return "linearizable";
}

/** Runs the suite once. */
export async function runRobustness(options: RunOptions): Promise<RunReport> {
  const log = options.log ?? ((l: string) => console.log(l));
  const seed = options.seed ?? freshSeed();
  const transport = options.transport ?? (process.env.ETCD_TRANSPORT === "connect-node" ? "connect-node" : "http2");
  const nClients = options.clients ?? 4;
  const nWorkers = options.workersPerClient ?? 2;
  const timeoutMs = options.opTimeoutMs ?? 3000;
  const outDir = options.outDir ?? ".robustness";
  const version = etcdVersion();
  log(`robustness: seed ${seed} (replay with ROBUSTNESS_SEED=${seed}), etcd ${version}, ${transport} transport, up to ${options.seconds} s / ${options.maxOps} ops`);

  const rnd = new Random(seed);
  const prefix = `rob/${seed}/`;
  const keys = Array.from({ length: options.keys ?? 4 }, (_, i) => `${prefix}k${i}`);
  let history = new History();
  let cluster: EtcdCluster | undefined;
  const proxies: TcpProxy[] = [];
  const clients: Etcd[] = [];
  const started = performance.now();
  let faults: FaultRecord[] = [];
  let archiver: HistoryArchiver | undefined;
  const watchObservers: WatchObserver[] = [];
  const leaseObservers: LeaseObserver[] = [];
  const locks: LockRunState = { holds: [], failedLocks: 0, uncertainReleases: 0, unverified: 0 };
  /** Per watcher, the revision its last log must reach (set once the run is over). */
  let watchReach: bigint | undefined;
  const observations = (): Observations => ({
    watchers: watchObservers.flatMap((o) => o.logs.map((log, i) => (i === o.logs.length - 1 && watchReach !== undefined ? { log, reach: watchReach } : { log }))),
    leases: leaseObservers.flatMap((o) => o.records),
    locks,
  });
  const { log: _omit, clientOptions, ...savedOptions } = options;
  const fileFor = (): HistoryFile => ({
    seed,
    etcdVersion: version,
    transport,
    options: { ...savedOptions, ...(clientOptions ? { clientOptions: JSON.stringify(clientOptions) } : {}) },
    operations: history.operations,
    faults,
    clusterHistory: (archiver?.history ?? new ClusterHistory(0n, new Map())).toJSON(),
    observations: observations(),
  });
  mkdirSync(outDir, { recursive: true });
  if (!existsSync(join(outDir, ".gitignore"))) writeFileSync(join(outDir, ".gitignore"), "*\n");
  const path = join(outDir, `${new Date().toISOString().replace(/[:.]/g, "-")}-seed${seed}.json`);
  try {
    // Periodic progress notifications every 2 s, so watchers get them within a short run.
    cluster = await startCluster(3, { extraArgs: ["--experimental-watch-progress-notify-interval", "2s"] });
    for (const m of cluster.members) proxies.push(await startProxy("127.0.0.1", m.clientPort));
    const direct = cluster.endpoints;
    const make = (endpoints: string[], more: Partial<EtcdOptions> = {}): Etcd => {
      const c = new Etcd({ transport, requestTimeoutMs: timeoutMs, dialTimeoutMs: 1000, ...more, endpoints });
      clients.push(c);
      return c;
    };
    const admin = make(direct);
    const memberClients = direct.map((e) => make([e]));
    const reader = make(direct);
    const readAt = async (revision: bigint): Promise<Snapshot> => {
      // Retried: the archiver reads while faults are injected.
      for (let attempt = 1; ; attempt++) {
        try {
          // Serializable is exact here: a member's store at a past revision never changes, and a
          // member that has not applied it yet answers "future revision" (and we retry).
          const r = await reader.get(prefix, { prefix: true, revision, serializable: true, timeoutMs: 3000 });
          return new Map(r.kvs.map((kv): [string, KvRecord] => [kv.keyText, { value: kv.text, modRevision: kv.modRevision, createRevision: kv.createRevision, version: Number(kv.version) }]));
        } catch (e) {
          if (attempt >= 20) throw e;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    };
    archiver = new HistoryArchiver(readAt, 16);
    history = new History(); // the run's clock starts once the cluster is up
    const startRevision = (await admin.get(prefix, { prefix: true })).revision;
    await archiver.start(startRevision);

    const injector = new FaultInjector({
      cluster,
      proxies,
      memberClients,
      admin,
      probeKey: prefix,
      beforeCompact: (r) => archiver!.catchUp(r),
      now: () => history.now(),
      log: (l) => log(`  [${(history.now() / 1000).toFixed(1)} s] ${l}`),
    });
    const workClients = Array.from({ length: nClients }, (_, c) => {
      const viaProxy = PROXY_PATTERNS[c % PROXY_PATTERNS.length]!;
      const eps = direct.map((e, m) => (viaProxy.includes(m) ? proxies[m]!.endpoint : e));
      // Rotate, so the clients are pinned to different members at first.
      return make([...eps.slice(c % eps.length), ...eps.slice(0, c % eps.length)], options.clientOptions);
    });

    // Watchers and kept leases on the working clients (so through the proxies too), from the history's first revision.
    const nWatchers = options.watchers ?? 3;
    const ttl = options.leaseTtlSeconds ?? 10;
    const now = (): number => history.now();
    const note = (l: string): void => log(`  [${(history.now() / 1000).toFixed(1)} s] ${l}`);
    // Requested progress notifications too where the server orders them after pending events (3.5 on).
    const requestProgressMs = version.startsWith("3.4.") ? undefined : 1500;
    for (let i = 0; i < nWatchers; i++) watchObservers.push(new WatchObserver(workClients[i % workClients.length]!, `watch${i}`, prefix, now, requestProgressMs));
    await Promise.all(watchObservers.map((o) => o.start(startRevision + 1n)));
    for (let i = 0; i < (options.leases ?? 3); i++) leaseObservers.push(new LeaseObserver(workClients[(i + 1) % workClients.length]!, `lease${i}`, ttl, now, note));
    await Promise.all(leaseObservers.map((o) => o.start()));

    const bounds = { remaining: options.maxOps, until: history.now() + options.seconds * 1000 };
    // Read the cluster's history as the run goes, so a compaction only waits for the last few revisions.
    const stopArchiving = new AbortController();
    const archiving = (async () => {
      while (!stopArchiving.signal.aborted) {
        await sleepFor(1000, stopArchiving.signal);
        try {
          await archiver!.catchUp((await reader.get(prefix, { prefix: true, serializable: true, timeoutMs: 3000 })).revision);
        } catch {
          // Faults make reads fail now and then; the next round catches up.
        }
      }
    })();
    const stopFaults = new AbortController();
    const faulting = options.faults === false ? Promise.resolve() : injector.run(planFaults(seed, 10_000), stopFaults.signal);
    const workers = workClients.flatMap((etcd, c) =>
      Array.from({ length: nWorkers }, (_, w) => worker(`c${c}/w${w}`, etcd, history, rnd.derive(c * 100 + w), keys, bounds, { timeoutMs })),
    );
    // The lock's keys live outside the run's prefix, so the KV checks do not see them.
    const lockName = `robl/${seed}/lock`;
    const holders = Array.from({ length: options.lockHolders ?? 3 }, (_, i) =>
      lockHolder(`lock${i}`, workClients[(i + 2) % workClients.length]!, lockName, locks, rnd.derive(10_000 + i), {
        until: bounds.until,
        maxHolds: 10_000,
        ttlSeconds: ttl,
        timeoutMs,
        now,
        log: note,
      }),
    );
    await Promise.all([...workers, ...holders]);
    stopFaults.abort();
    stopArchiving.abort();
    await Promise.all([faulting, archiving]);
    faults = injector.records;
    log(`  workload done: ${history.operations.length} operations in ${(history.now() / 1000).toFixed(1)} s; healing the cluster`);
    await injector.heal();

    // Final reads of every key, recorded like any other operation.
    const final = make(direct);
    for (const key of keys) await history.record("final", { kind: "get", key }, () => execute(final, { kind: "get", key }, 10_000));
    const end = (await admin.get(prefix, { prefix: true, timeoutMs: 10_000 })).revision;
    await archiver.catchUp(end);
    for (const o of leaseObservers) await o.finish(admin);
    // Every watcher must get to the last change of the run's keys; then they stop.
    const events = archiver.history.events;
    watchReach = events.length > 0 ? events[events.length - 1]!.revision : undefined;
    const waitUntil = performance.now() + 20_000;
    while (watchReach !== undefined && watchObservers.some((o) => o.reached < watchReach!) && performance.now() < waitUntil) await new Promise((r) => setTimeout(r, 100));
    for (const o of watchObservers) o.close();
  } catch (e) {
    // Whatever was recorded is worth keeping when the run itself broke.
    if (history.operations.length > 0) {
      saveJson(path, { ...fileFor(), error: describeError(e) });
      log(`  the run failed (${describeError(e)}); history so far in ${path}`);
    }
    throw e;
  } finally {
    for (const o of watchObservers) o.close();
    for (const c of clients) c.close();
    for (const p of proxies) await p.close();
    await cluster?.stop();
  }

  const ops = history.operations;
  const clusterHistory = archiver!.history;
  // The history file is written before checking, so a checker that throws still leaves it behind.
  const file = fileFor();
  saveJson(path, file);
  log(`  cluster history: revisions ${clusterHistory.from}..${clusterHistory.to}, ${clusterHistory.events.length} events; checking (history in ${path})`);
  const report = checkRun(ops, clusterHistory, options.budget, observations());
  // "Could not decide" is no violation, but the history is kept for a closer look.
  const passed = report.violations.length === 0 && report.linearizability.verdict !== "not-linearizable";
  const keep = !passed || report.linearizability.verdict !== "linearizable" || options.keepHistory === true;
  if (keep) saveJson(path, { ...file, report });
  else rmSync(path);

  const full: RunReport = {
    ...report,
    seed,
    etcdVersion: version,
    transport,
    durationMs: performance.now() - started,
    opsByKind: countOps(ops),
    faults,
    errorsByClass: countErrors(ops),
    historyFile: keep ? path : undefined,
    passed,
  };
  log(formatSummary(full));
  return full;
}

function countOps(ops: readonly Operation[]): RunReport["opsByKind"] {
  const out: RunReport["opsByKind"] = {};
  for (const o of ops) {
    const kind = o.input.kind === "txn" ? `txn-cas-${o.input.cond.target === "value" ? "value" : "mod"}-${o.input.then.kind}` : o.input.kind;
    const c = (out[kind] ??= { ok: 0, failed: 0, unknown: 0 });
    c[o.outcome]++;
  }
  return out;
}

function countErrors(ops: readonly Operation[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const o of ops) {
    if (o.error === undefined) continue;
    const cls = `${o.error.split(":")[0]} (${o.outcome})`;
    out[cls] = (out[cls] ?? 0) + 1;
  }
  return out;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => "  " + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
}

/** The summary a run prints. */
export function formatSummary(r: RunReport): string {
  const lines: string[] = [];
  lines.push(`robustness ${r.passed ? "PASSED" : "FAILED"}: seed ${r.seed}, etcd ${r.etcdVersion}, ${r.transport}, ${(r.durationMs / 1000).toFixed(1)} s`);
  const kinds = Object.entries(r.opsByKind).sort(([a], [b]) => a.localeCompare(b));
  const total = kinds.reduce((t, [, c]) => ({ ok: t.ok + c.ok, failed: t.failed + c.failed, unknown: t.unknown + c.unknown }), { ok: 0, failed: 0, unknown: 0 });
  lines.push(table([["operation", "ok", "failed", "unknown"], ...kinds.map(([k, c]) => [k, `${c.ok}`, `${c.failed}`, `${c.unknown}`]), ["total", `${total.ok}`, `${total.failed}`, `${total.unknown}`]]));
  const faultKinds = new Map<string, { ok: number; failed: number }>();
  for (const f of r.faults) {
    const c = faultKinds.get(f.kind) ?? { ok: 0, failed: 0 };
    c[f.ok ? "ok" : "failed"]++;
    faultKinds.set(f.kind, c);
  }
  lines.push(table([["fault", "injected", "failed to inject"], ...[...faultKinds].sort(([a], [b]) => a.localeCompare(b)).map(([k, c]) => [k, `${c.ok}`, `${c.failed}`])]));
  const errs = Object.entries(r.errorsByClass).sort(([, a], [, b]) => b - a);
  if (errs.length > 0) lines.push(table([["error (outcome)", "count"], ...errs.map(([k, n]) => [k, `${n}`])]));
  lines.push(
    `  unknown outcomes: ${r.unknown.total} (resolved from the cluster's history: ${r.unknown.resolvedApplied} applied, ${r.unknown.resolvedNotApplied} not applied; ${r.unknown.unresolved} left unknown)`,
  );
  const lin = r.linearizability.perKey;
  lines.push(
    `  linearizability: ${r.linearizability.verdict} (${lin.filter((k) => k.verdict === "linearizable").length} keys linearizable, ${lin.filter((k) => k.verdict === "not-linearizable").length} not, ${lin.filter((k) => k.verdict === "undecided").length} could not decide; steps ${lin.map((k) => k.steps).join("/")}); without resolving unknowns: ${r.linearizabilityUnresolved.verdict} (${r.linearizabilityUnresolved.undecidedKeys} keys could not decide)`,
  );
  const w = r.watch;
  lines.push(
    `  watch: ${w.watchers} watchers (${w.logs} logs), ${w.batches} batches, ${w.events} events, ${w.progress} progress notifications, ${w.resumes} resumes, ${w.compacted} ended by compaction`,
  );
  lines.push(`  leases: ${r.lease.leases} kept alive, ${r.lease.lost} reported lost, ${r.lease.goneAtEnd} gone at the end`);
  lines.push(
    `  locks: ${r.lock.holds} holds checked, ${r.lock.failedLocks} lock calls failed, ${r.lock.uncertainReleases} releases of uncertain revision, ${r.lock.unverified} holds not verified`,
  );
  const counts = Object.entries(r.violationCounts);
  lines.push(`  violations: ${counts.length === 0 ? "0" : counts.map(([k, n]) => `${k} ${n}`).join(", ")}`);
  for (const v of r.violations) lines.push(`    ${v.check}: ${v.message}`);
  for (const k of lin) if (k.verdict === "undecided") lines.push(`    ${k.key}: ${k.detail}`);
  if (r.historyFile !== undefined) lines.push(`  history kept in ${r.historyFile}`);
  return lines.join("\n");
}

/** Re-runs the checkers on a saved history file. */
export function recheck(path: string, budget?: Budget): CheckReport {
  const f = loadJson<HistoryFile>(path);
  return checkRun(f.operations, ClusterHistory.fromJSON(f.clusterHistory), budget, f.observations);
}

function envNumber(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v} is not a number`);
  return n;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf("--check");
  if (i >= 0) {
    const r = recheck(args[i + 1]!);
    console.log(JSON.stringify({ linearizability: r.linearizability.verdict, violations: r.violationCounts }, null, 1));
    for (const v of r.violations) console.log(`${v.check}: ${v.message}`);
    process.exit(r.violations.length === 0 && r.linearizability.verdict === "linearizable" ? 0 : 1);
  }
  const seedEnv = process.env.ROBUSTNESS_SEED;
  const report = await runRobustness({
    ...(seedEnv ? { seed: Number(seedEnv) } : {}),
    seconds: envNumber("ROBUSTNESS_SECONDS", 300),
    maxOps: envNumber("ROBUSTNESS_OPS", 1_000_000),
    clients: envNumber("ROBUSTNESS_CLIENTS", 4),
    keepHistory: process.env.ROBUSTNESS_KEEP === "1",
  });
  process.exit(report.passed ? 0 : 1);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(2);
  });
}
