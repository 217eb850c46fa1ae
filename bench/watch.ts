/**
 * Watch benchmark: this client and the `etcd3` npm package side by side,
 * against an etcd member this script starts (etcd 3.4 unless `--bin` says
 * otherwise). Each measurement runs in a fresh child process, so heap and
 * CPU figures belong to one client alone; rounds are interleaved (ours,
 * etcd3, ours, etcd3, ...) and medians reported, with ratios ours / etcd3.
 *
 * - create: N watchers on distinct keys until the server confirmed every one
 *   (time, client CPU, heap per watcher after GC).
 * - fan-out: N watchers on one key; time from one put to its delivery to all N.
 * - throughput: one watcher on a prefix while 100 writers put in a loop; events/s.
 * - resume (this client, 3-member cluster): N watchers on one key; the member
 *   carrying their stream is killed; time until all are created again on
 *   another member, and until a put made after the kill reached all N.
 * - fan-out over 4 streams (this client, 4 client objects): the same fan-out
 *   with the watchers spread over 4 Watch streams, which shows how much of
 *   the one-stream time is the server pacing a stream (etcd queues 128
 *   responses per stream and retries the watchers that did not fit every 10 ms).
 *
 * For create and fan-out, the member's own CPU time over the measured window
 * is reported as well (from /proc), to tell client-bound from server-bound.
 *
 *   npm run bench:watch
 *   npm run bench:watch -- --rounds 5 --watchers 10000 --duration 5000 --json out.json
 *   npm run bench:watch -- --bin .etcd/3.5/usr/bin/etcd --only create,fanout
 *
 * This is a benchmark: it reports numbers and never fails on them.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Etcd3 } from "etcd3";
import { Etcd } from "../src/index.js";
import { etcdVersion, startCluster, startEtcd } from "../test/harness/index.js";

type ClientName = "ours" | "etcd3";
type Workload = "create" | "fanout" | "fanout4" | "throughput";

/** What a child reports for one measurement. */
interface Result {
  ms?: number;
  cpuMs?: number;
  /** The etcd member's CPU over the same window. */
  serverCpuMs?: number;
  heapPerWatcher?: number;
  eventsPerSec?: number;
  cpuUsPerEvent?: number;
}

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const num = (name: string, dflt: number): number => {
  const v = Number(arg(name) ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new TypeError(`${name}: expected a positive number, got ${arg(name)}`);
  return v;
};
const WATCHERS = Math.floor(num("--watchers", 10_000));
const ROUNDS = Math.floor(num("--rounds", 3));
const DURATION_MS = num("--duration", 5000);
const WRITERS = 100;
const FANOUT_PUTS = 3;

// ---------------------------------------------------------------------------
// Children: one client, one workload, a JSON line on stdout.

function cpuMs(since: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(since);
  return (c.user + c.system) / 1000;
}

/** CPU time of a process (user + system) in ms, from /proc (10 ms resolution). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
  (globalThis as { gc?: () => void }).gc?.();
}

interface WatchClient {
  /** Creates `n` watchers on `key(i)`, resolved once the server confirmed all; `onPut` runs for each put event. */
  watchMany(n: number, key: (i: number) => string, onPut: () => void): Promise<unknown[]>;
  /** One watcher on every key under `prefix`. */
  watchPrefix(prefix: string, onPut: () => void): Promise<unknown>;
  put(key: string, value: string): Promise<unknown>;
  close(): void;
}

/** This client; with `streams` > 1, that many client objects (one Watch stream each), watchers dealt round-robin. */
function ourClient(endpoint: string, streams = 1): WatchClient {
  const clients = Array.from({ length: streams }, () => new Etcd({ endpoints: endpoint }));
  const etcd = clients[0]!;
  return {
    async watchMany(n, key, onPut) {
      const ws = [];
      for (let i = 0; i < n; i++) ws.push(clients[i % streams]!.watch(key(i)).on("put", onPut));
      await Promise.all(ws.map((w) => w.ready()));
      return ws;
    },
    async watchPrefix(prefix, onPut) {
      const w = etcd.watch(prefix, { prefix: true }).on("put", onPut);
      await w.ready();
      return w;
    },
    put: (k, v) => etcd.put(k, v),
    close: () => {
      for (const c of clients) void c.close();
    },
  };
}

function etcd3Client(endpoint: string): WatchClient {
  const c = new Etcd3({ hosts: `http://${endpoint}` });
  return {
    async watchMany(n, key, onPut) {
      const ws = [];
      for (let i = 0; i < n; i++) ws.push(c.watch().key(key(i)).create().then((w) => w.on("put", onPut)));
      return Promise.all(ws);
    },
    watchPrefix: (prefix, onPut) => c.watch().prefix(prefix).create().then((w) => w.on("put", onPut)),
    put: (k, v) => c.put(k).value(v).exec(),
    close: () => c.close(),
  };
}

/** A put that is tried again a few times: on a loaded machine a fresh member's first write can time out. */
async function putRetried(put: () => Promise<unknown>): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      await put();
      return;
    } catch (e) {
      if (i >= 5) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

async function child(client: ClientName, workload: Workload, endpoint: string, tag: string, serverPid: number): Promise<Result> {
  const c = client === "ours" ? ourClient(endpoint, workload === "fanout4" ? 4 : 1) : etcd3Client(endpoint);
  await putRetried(() => c.put(`bench/watch/${tag}/warm`, "1"));
  switch (workload) {
    case "create": {
      // One watcher first, so the stream is open and the code warm: the figures are per watcher.
      await c.watchMany(1, () => `bench/watch/${tag}/first`, () => undefined);
      gc();
      const heap0 = process.memoryUsage().heapUsed;
      const cpu0 = process.cpuUsage();
      const server0 = processCpuMs(serverPid);
      const t0 = performance.now();
      const ws = await c.watchMany(WATCHERS, (i) => `bench/watch/${tag}/c/${i}`, () => undefined);
      const ms = performance.now() - t0;
      const cpu = cpuMs(cpu0);
      const serverCpuMs = processCpuMs(serverPid) - server0;
      gc();
      const heap = process.memoryUsage().heapUsed - heap0;
      if (ws.length !== WATCHERS) throw new Error("not every watcher was created");
      c.close();
      return { ms, cpuMs: cpu, serverCpuMs, heapPerWatcher: heap / WATCHERS };
    }
    case "fanout":
    case "fanout4": {
      let got = 0;
      let done: (() => void) | undefined;
      await c.watchMany(WATCHERS, () => `bench/watch/${tag}/fan`, () => {
        if (++got === WATCHERS) done?.();
      });
      const times: number[] = [];
      const cpus: number[] = [];
      const serverCpus: number[] = [];
      for (let r = 0; r < FANOUT_PUTS; r++) {
        got = 0;
        const all = new Promise<void>((resolve) => (done = resolve));
        const cpu0 = process.cpuUsage();
        const server0 = processCpuMs(serverPid);
        const t0 = performance.now();
        await c.put(`bench/watch/${tag}/fan`, String(r));
        await all;
        times.push(performance.now() - t0);
        cpus.push(cpuMs(cpu0));
        serverCpus.push(processCpuMs(serverPid) - server0);
      }
      c.close();
      return { ms: median(times), cpuMs: median(cpus), serverCpuMs: median(serverCpus) };
    }
    case "throughput": {
      let events = 0;
      const prefix = `bench/watch/${tag}/t/`;
      await c.watchPrefix(prefix, () => events++);
      const value = "x".repeat(256);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const end = t0 + DURATION_MS;
      let counted = 0;
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; performance.now() < end && i < 1_000_000; i++) await c.put(`${prefix}${w}/${i % 10}`, value);
      };
      const stopCounting = new Promise<void>((r) => setTimeout(() => {
        counted = events;
        r();
      }, DURATION_MS));
      await Promise.all([...Array.from({ length: WRITERS }, (_, w) => writer(w)), stopCounting]);
      const cpu = cpuMs(cpu0);
      c.close();
      return { eventsPerSec: counted / (DURATION_MS / 1000), cpuUsPerEvent: (cpu * 1000) / Math.max(1, events) };
    }
  }
}

// ---------------------------------------------------------------------------
// The parent: servers, interleaved rounds, the table.

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function runChild(client: ClientName, workload: Workload, endpoint: string, tag: string, serverPid: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["--expose-gc", fileURLToPath(import.meta.url), "--child", client, workload, endpoint, tag, String(serverPid), ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 120_000);
    p.once("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`${client} ${workload}: child exited with ${code}`));
      else resolve(JSON.parse(out.trim().split("\n").at(-1)!) as Result);
    });
  });
}

/**
 * This client only, on a 3-member cluster: time from the SIGKILL of the
 * member carrying N watchers until all are created again on another member;
 * then the time from the acknowledgement of a put made after the kill until
 * all N have it (the put itself may wait for a leader election).
 */
async function resume(): Promise<{ recreatedMs: number; deliveredMs: number }> {
  const cluster = await startCluster(3);
  try {
    const etcd = new Etcd({ endpoints: cluster.endpoints, dialTimeoutMs: 1000 });
    const key = "bench/watch/resume";
    let got = 0;
    let done: (() => void) | undefined;
    const ws = Array.from({ length: WATCHERS }, () =>
      etcd.watch(key).on("put", () => {
        if (++got === WATCHERS) done?.();
      }),
    );
    await Promise.all(ws.map((w) => w.ready()));
    const id = etcd.watches.info().streams[0]!.memberId;
    const infos = await etcd.status({ timeoutMs: 2000 });
    const url = infos.find((i) => i.memberId === id)?.url;
    const victim = cluster.members.find((m) => url?.endsWith(m.endpoint));
    if (victim === undefined) throw new Error(`no member with ID ${id}`);
    // The writer talks to the survivors only, so its put is not caught by the kill.
    const writer = new Etcd({ endpoints: cluster.endpoints.filter((e) => e !== victim.endpoint), retryWrites: true });
    await putRetried(() => writer.put(key + "/warm", "1"));
    const all = new Promise<void>((resolve) => (done = resolve));
    const t0 = performance.now();
    await victim.kill();
    const put = writer.put(key, "after the kill");
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = etcd.watches.info().streams[0]!;
      if (st.memberId !== id && st.states.watching === WATCHERS) break;
      if (Date.now() > deadline) throw new Error("watchers not re-created within 60 s");
      await new Promise((r) => setTimeout(r, 5));
    }
    const recreatedMs = performance.now() - t0;
    await put;
    const acked = performance.now();
    await all;
    const deliveredMs = performance.now() - acked;
    etcd.close();
    writer.close();
    return { recreatedMs, deliveredMs };
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  const only = (arg("--only") ?? "create,fanout,fanout4,throughput,resume").split(",");
  const bin = arg("--bin");
  if (bin !== undefined) process.env.ETCD_BIN = resolve(bin);
  const member = await startEtcd();
  const version = etcdVersion();
  const serverPid = member.pid;
  if (serverPid === undefined) throw new Error("the member has no process ID");
  console.log(`etcd ${version}, ${WATCHERS} watchers, ${ROUNDS} rounds (medians), node ${process.version}`);
  const results: Record<string, Record<ClientName, Result[]>> = {};
  try {
    for (const workload of ["create", "fanout", "fanout4", "throughput"] as const) {
      if (!only.includes(workload)) continue;
      results[workload] = { ours: [], etcd3: [] };
      for (let r = 0; r < ROUNDS; r++) {
        // The 4-stream fan-out is this client's alone: it shows the server's pacing, not a comparison.
        for (const client of workload === "fanout4" ? (["ours"] as const) : (["ours", "etcd3"] as const)) {
          const res = await runChild(client, workload, member.endpoint, `${workload}-${client}-${r}-${process.pid}`, serverPid);
          results[workload]![client].push(res);
          process.stderr.write(`  ${workload} ${client} round ${r + 1}: ${JSON.stringify(res)}\n`);
        }
      }
    }
  } finally {
    await member.stop();
  }
  const resumed: { recreatedMs: number; deliveredMs: number }[] = [];
  if (only.includes("resume")) {
    for (let r = 0; r < ROUNDS; r++) {
      const res = await resume();
      resumed.push(res);
      process.stderr.write(`  resume round ${r + 1}: ${JSON.stringify(res)}\n`);
    }
  }
  const med = (w: string, c: ClientName, f: keyof Result) => median((results[w]?.[c] ?? []).map((x) => x[f] ?? NaN));
  const rows: string[][] = [];
  const row = (name: string, unit: string, w: string, f: keyof Result, digits = 0) => {
    const o = med(w, "ours", f);
    const e = med(w, "etcd3", f);
    if (Number.isNaN(o)) return;
    if (Number.isNaN(e)) rows.push([name, `${o.toFixed(digits)} ${unit}`, "", ""]);
    else rows.push([name, `${o.toFixed(digits)} ${unit}`, `${e.toFixed(digits)} ${unit}`, `${(o / e).toFixed(2)}x`]);
  };
  row(`create ${WATCHERS} watchers: time`, "ms", "create", "ms");
  row(`create ${WATCHERS} watchers: client CPU`, "ms", "create", "cpuMs");
  row(`create ${WATCHERS} watchers: server CPU`, "ms", "create", "serverCpuMs");
  row(`create ${WATCHERS} watchers: heap per watcher`, "B", "create", "heapPerWatcher");
  row(`one put to ${WATCHERS} watchers: time`, "ms", "fanout", "ms");
  row(`one put to ${WATCHERS} watchers: client CPU`, "ms", "fanout", "cpuMs");
  row(`one put to ${WATCHERS} watchers: server CPU`, "ms", "fanout", "serverCpuMs");
  row(`one put to ${WATCHERS} watchers over 4 streams: time`, "ms", "fanout4", "ms");
  row(`one watcher, ${WRITERS} writers: events/s`, "", "throughput", "eventsPerSec");
  row(`one watcher, ${WRITERS} writers: client CPU per event`, "µs", "throughput", "cpuUsPerEvent", 1);
  if (resumed.length > 0) {
    rows.push([`resume ${WATCHERS} watchers after SIGKILL: all re-created`, `${median(resumed.map((x) => x.recreatedMs)).toFixed(0)} ms`, "", ""]);
    rows.push([`resume ${WATCHERS} watchers after SIGKILL: put acknowledged → delivered to all`, `${median(resumed.map((x) => x.deliveredMs)).toFixed(0)} ms`, "", ""]);
  }
  console.log(`\n| workload (etcd ${version}) | this client | etcd3 | this client / etcd3 |\n|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  const jsonOut = arg("--json");
  if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify({ version, watchers: WATCHERS, results, resumed }, null, 2));
}

if (args[0] === "--child") {
  const [, client, workload, endpoint, tag, serverPid] = args as [string, ClientName, Workload, string, string, string];
  child(client, workload, endpoint, tag, Number(serverPid)).then(
    (r) => {
      console.log(JSON.stringify(r));
      process.exit(0);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
