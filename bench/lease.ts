/**
 * Keeping many leases alive, side by side with the `etcd3` package: each
 * client runs in its own child process (so CPU and RSS are its own), against
 * one local etcd member this script starts, in interleaved rounds; medians
 * are reported with ratios.
 *
 * Per child: grant N leases (TTL 5 s) with keep-alive, 100 grants in flight
 * at a time (wall time and client CPU), let the first refreshes settle (2 s),
 * then keep them alive for 10 s (client CPU: this first window still holds
 * the JIT's and the GC's catching up after the grants), and 10 s more (client
 * CPU in the steady state); then RSS, peak RSS, leases lost.
 *
 *   npm run bench:lease
 *   npm run bench:lease -- --leases 5000 --hold 10 --rounds 3 --with-connect-node --json out.json
 * @module
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
// Clients are imported inside the child that runs them, so neither child's RSS includes the other's code.

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const LEASES = Number(arg("--leases") ?? 5000);
const TTL = Number(arg("--ttl") ?? 5);
const HOLD_S = Number(arg("--hold") ?? 10);
const ROUNDS = Number(arg("--rounds") ?? 3);
/** Grants in flight at once (each client gets the same window). */
const CONCURRENCY = Number(arg("--concurrency") ?? 100);

/** What one child measured. */
interface Sample {
  grantWallS: number;
  grantCpuS: number;
  holdCpuS: number;
  /** CPU of the next window of the same length: the steady state. */
  steadyCpuS: number;
  rssMb: number;
  peakRssMb: number;
  /** Grants that failed (the client gave up on them). */
  failed: number;
  lost: number;
}

const cpuSeconds = (c: NodeJS.CpuUsage): number => (c.user + c.system) / 1e6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A client under test, as the child sees it. */
interface Subject {
  /** Grants one lease kept alive. */
  grant(ttl: number): Promise<void>;
  /** Leases reported lost so far. */
  lost(): number;
  close(): void;
}

async function ours(endpoint: string, transport: "http2" | "connect-node"): Promise<Subject> {
  const { Etcd } = await import("../src/index.js");
  const etcd = new Etcd({ endpoints: endpoint, transport });
  let lost = 0;
  return {
    async grant(ttl) {
      const lease = await etcd.lease.create(ttl);
      void lease.lost.then(() => lost++);
    },
    lost: () => lost,
    close: () => etcd.close(),
  };
}

async function etcd3(endpoint: string): Promise<Subject> {
  const { Etcd3 } = await import("etcd3");
  const client = new Etcd3({ hosts: `http://${endpoint}` });
  // etcd3 may emit "lost" more than once per lease.
  const lost = new Set<object>();
  return {
    async grant(ttl) {
      const lease = client.lease(ttl);
      lease.on("lost", () => lost.add(lease));
      await lease.grant();
    },
    lost: () => lost.size,
    close: () => client.close(),
  };
}

async function child(name: string, endpoint: string): Promise<void> {
  const subject = await (name === "etcd3" ? etcd3(endpoint) : ours(endpoint, name === "connect-node" ? "connect-node" : "http2"));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (next < LEASES) {
      next++;
      try {
        await subject.grant(TTL);
      } catch (e) {
        failed++;
        firstError ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, LEASES) }, worker));
  const grantWallS = (performance.now() - t0) / 1000;
  const grantCpuS = cpuSeconds(process.cpuUsage(c0));
  // Let the refreshes that follow the grants settle into their rhythm.
  await sleep(2000);
  const c1 = process.cpuUsage();
  await sleep(HOLD_S * 1000);
  const holdCpuS = cpuSeconds(process.cpuUsage(c1));
  const c2 = process.cpuUsage();
  await sleep(HOLD_S * 1000);
  const steadyCpuS = cpuSeconds(process.cpuUsage(c2));
  const sample: Sample = {
    grantWallS,
    grantCpuS,
    holdCpuS,
    steadyCpuS,
    rssMb: process.memoryUsage().rss / 1e6,
    peakRssMb: process.resourceUsage().maxRSS / 1e3,
    failed,
    lost: subject.lost(),
  };
  if (firstError !== undefined) console.error(`${name}: ${failed} grants failed; the first: ${String(firstError)}`);
  process.stdout.write(JSON.stringify(sample) + "\n");
  subject.close();
  process.exit(0);
}

function runChild(name: string, endpoint: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), "--child", name, "--endpoint", endpoint, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
    p.on("exit", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line) as Sample);
      } catch {
        reject(new Error(`${name} child exited with ${code}: ${out}`));
      }
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const { startEtcd } = await import("../test/harness/index.js");
  const { Etcd } = await import("../src/index.js");
  const member = await startEtcd();
  const names = ["this client", "etcd3", ...(args.includes("--with-connect-node") ? ["connect-node"] : [])];
  const samples = new Map<string, Sample[]>(names.map((n) => [n, []]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of names) {
        const s = await runChild(name === "this client" ? "ours" : name, member.endpoint);
        samples.get(name)!.push(s);
        console.error(`round ${r + 1} ${name}: ${JSON.stringify(s)}`);
        // The child's leases lapse on the server before the next child starts.
        await sleep((TTL + 1) * 1000);
        const probe = new Etcd({ endpoints: member.endpoint });
        for (let i = 0; i < 50 && (await probe.lease.leases()).length > 0; i++) await sleep(200);
        probe.close();
      }
    }
  } finally {
    await member.stop();
  }
  const med = (name: string, k: keyof Sample): number => median(samples.get(name)!.map((s) => s[k]));
  const rows: Array<[string, keyof Sample, number]> = [
    [`grant ${LEASES} leases with keep-alive: wall s`, "grantWallS", 2],
    ["grant: client CPU s", "grantCpuS", 2],
    [`keep ${LEASES} alive (TTL ${TTL} s) for ${HOLD_S} s after the grants: client CPU s`, "holdCpuS", 3],
    [`keep them alive ${HOLD_S} s more (steady state): client CPU s`, "steadyCpuS", 3],
    ["RSS after keeping them alive: MB", "rssMb", 0],
    ["peak RSS: MB", "peakRssMb", 0],
    ["grants failed", "failed", 0],
    ["leases lost", "lost", 0],
  ];
  const extra = names.includes("connect-node") ? " this client (connect-node) |" : "";
  console.log(`\netcd ${member.version}, ${LEASES} leases, TTL ${TTL} s, ${CONCURRENCY} grants in flight, medians of ${ROUNDS} interleaved rounds, one child process per run\n`);
  console.log(`| workload | this client | etcd3 | this client / etcd3 |${extra}`);
  console.log(`|---|---|---|---|${extra ? "---|" : ""}`);
  for (const [label, k, digits] of rows) {
    const us = med("this client", k);
    const them = med("etcd3", k);
    const ratio = them === 0 ? (us === 0 ? "-" : "inf") : `${(us / them).toFixed(2)}x`;
    const cn = names.includes("connect-node") ? ` ${med("connect-node", k).toFixed(digits)} |` : "";
    console.log(`| ${label} | ${us.toFixed(digits)} | ${them.toFixed(digits)} | ${ratio} |${cn}`);
  }
  const jsonOut = arg("--json");
  if (jsonOut !== undefined) {
    writeFileSync(jsonOut, JSON.stringify({ server: member.version, leases: LEASES, ttl: TTL, holdS: HOLD_S, rounds: ROUNDS, samples: Object.fromEntries(samples) }, null, 2) + "\n");
    console.log(`wrote ${jsonOut}`);
  }
}

if (args.includes("--child")) {
  child(arg("--child")!, arg("--endpoint")!).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
