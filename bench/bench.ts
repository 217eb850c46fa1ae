/**
 * Side-by-side benchmark: this client, the `etcd3` npm package and a bare
 * node:http2 gRPC floor, against one etcd member this script starts. Rounds
 * are interleaved (A, B, C, A, B, C, ...) so machine noise hits all three;
 * medians of the rounds are reported, with ratios to etcd3 and to the floor.
 *
 *   npm run bench                      # table
 *   npm run bench -- --json out.json   # also write JSON
 *   npm run bench -- --rounds 5 --quick
 *   npm run bench -- --baseline /path/to/old/build/src/index.js
 *       # also an earlier build of this client (e.g. the node:http2 transport), as a fourth subject
 */
import { writeFileSync } from "node:fs";
import { Etcd3 } from "etcd3";
import {
  PutRequestSchema,
  PutResponseSchema,
  RangeRequestSchema,
  RangeResponseSchema,
  TxnRequestSchema,
  TxnResponseSchema,
  Compare_CompareResult,
  Compare_CompareTarget,
} from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { Compare, Etcd, Op } from "../src/index.js";
import { startEtcd } from "../test/harness/index.js";
import { BareClient } from "./bare-floor.js";

interface Subject {
  name: string;
  put(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<unknown>;
  range(prefix: string): Promise<number>;
  /** The same range, turned into a key → value map of strings (what most callers do next). */
  rangeStrings(prefix: string): Promise<number>;
  txn(key: string, value: string): Promise<unknown>;
  /** Walks every key under `prefix` in pages of `pageSize` (key order, one request per page); resolves with the count. */
  page(prefix: string, pageSize: number): Promise<number>;
  close(): void;
}

interface Workload {
  name: string;
  /** Operations per round. */
  ops: number;
  /** Operations in flight at once. */
  concurrency: number;
  run(s: Subject, i: number): Promise<unknown>;
}

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const rounds = Number(arg("--rounds") ?? 3);
const quick = args.includes("--quick");
const jsonOut = arg("--json");
const only = arg("--only");

const VALUE = "x".repeat(256);
const KEYS = 1000;
/** Keys of the paging workload, under "g/", with short values. */
const PAGED_KEYS = 100_000;
const PAGE = 1000;
const enc = new TextEncoder();
const dec = new TextDecoder();

function ours(endpoint: string, transport: "http2" | "connect-node", Client: typeof Etcd = Etcd, name?: string): Subject {
  const etcd = new Client({ endpoints: endpoint, transport });
  return {
    name: name ?? (transport === "http2" ? "this client" : "this client (connect-node)"),
    put: (k, v) => etcd.put(k, v),
    get: (k) => etcd.get(k).then((r) => r.text),
    range: (p) => etcd.get(p, { prefix: true }).then((r) => r.raw.kvs.length),
    rangeStrings: (p) =>
      etcd.get(p, { prefix: true }).then((r) => {
        const out: Record<string, string> = {};
        for (const kv of r.kvs) out[kv.keyText] = kv.text;
        return Object.keys(out).length;
      }),
    txn: (k, v) => etcd.txn().if(Compare.version(k, ">", 0)).then(Op.put(k, v)).else(Op.get(k)).commit(),
    page: async (p, size) => {
      let n = 0;
      for await (const kv of etcd.paginate(p, { prefix: true, pageSize: size })) if (kv.key.length > 0) n++;
      return n;
    },
    close: () => void etcd.close(),
  };
}

function etcd3(endpoint: string): Subject {
  const c = new Etcd3({ hosts: `http://${endpoint}` });
  return {
    name: "etcd3",
    put: (k, v) => c.put(k).value(v).exec(),
    get: (k) => c.get(k).string(),
    range: (p) => c.getAll().prefix(p).exec().then((r) => r.kvs.length),
    rangeStrings: (p) => c.getAll().prefix(p).strings().then((r) => Object.keys(r).length),
    txn: (k, v) => c.if(k, "Version", ">", 0).then(c.put(k).value(v)).else(c.get(k)).commit(),
    // etcd3 has no paging helper: the same walk by hand, from just after the last key, at the first page's revision.
    page: async (p, size) => {
      const end = Buffer.from(p);
      end[end.length - 1]!++;
      let start = Buffer.from(p);
      let n = 0;
      let revision: string | undefined;
      for (;;) {
        let q = c.getAll().inRange({ start, end }).limit(size);
        if (revision !== undefined) q = q.revision(revision);
        const r = await q.exec();
        revision ??= r.header.revision;
        n += r.kvs.length;
        if (!r.more || r.kvs.length === 0) return n;
        start = Buffer.concat([r.kvs[r.kvs.length - 1]!.key, Buffer.from([0])]);
      }
    },
    close: () => c.close(),
  };
}

function bare(endpoint: string): Subject {
  const c = new BareClient(`http://${endpoint}`);
  return {
    name: "bare http2",
    put: (k, v) => c.call("/etcdserverpb.KV/Put", PutRequestSchema, PutResponseSchema, { key: enc.encode(k), value: enc.encode(v) }),
    get: (k) => c.call("/etcdserverpb.KV/Range", RangeRequestSchema, RangeResponseSchema, { key: enc.encode(k) }),
    range: (p) => {
      const key = enc.encode(p);
      const end = key.slice();
      end[end.length - 1]!++;
      return c.call("/etcdserverpb.KV/Range", RangeRequestSchema, RangeResponseSchema, { key, rangeEnd: end }).then((r) => r.kvs.length);
    },
    rangeStrings: (p) => {
      const key = enc.encode(p);
      const end = key.slice();
      end[end.length - 1]!++;
      return c.call("/etcdserverpb.KV/Range", RangeRequestSchema, RangeResponseSchema, { key, rangeEnd: end }).then((r) => {
        const out: Record<string, string> = {};
        for (const kv of r.kvs) out[dec.decode(kv.key)] = dec.decode(kv.value);
        return Object.keys(out).length;
      });
    },
    txn: (k, v) =>
      c.call("/etcdserverpb.KV/Txn", TxnRequestSchema, TxnResponseSchema, {
        compare: [{ key: enc.encode(k), result: Compare_CompareResult.GREATER, target: Compare_CompareTarget.VERSION, targetUnion: { case: "version", value: 0n } }],
        success: [{ request: { case: "requestPut", value: { key: enc.encode(k), value: enc.encode(v) } } }],
        failure: [{ request: { case: "requestRange", value: { key: enc.encode(k) } } }],
      }),
    page: async (p, size) => {
      const end = enc.encode(p);
      end[end.length - 1]!++;
      let key = enc.encode(p);
      let revision = 0n;
      let n = 0;
      for (;;) {
        const r = await c.call("/etcdserverpb.KV/Range", RangeRequestSchema, RangeResponseSchema, { key, rangeEnd: end, limit: BigInt(size), revision });
        if (revision === 0n) revision = r.header?.revision ?? 0n;
        n += r.kvs.length;
        const last = r.kvs[r.kvs.length - 1];
        if (!r.more || last === undefined) return n;
        key = new Uint8Array(last.key.length + 1);
        key.set(last.key);
      }
    },
    close: () => c.close(),
  };
}

const scale = quick ? 0.25 : 1;
const allWorkloads: Workload[] = [
  { name: "put x1 (sequential)", ops: Math.round(400 * scale), concurrency: 1, run: (s, i) => s.put(`p${i % KEYS}`, VALUE) },
  { name: "put x10", ops: Math.round(3000 * scale), concurrency: 10, run: (s, i) => s.put(`p${i % KEYS}`, VALUE) },
  { name: "put x100", ops: Math.round(10000 * scale), concurrency: 100, run: (s, i) => s.put(`p${i % KEYS}`, VALUE) },
  { name: "get x1", ops: Math.round(2000 * scale), concurrency: 1, run: (s, i) => s.get(`p${i % KEYS}`) },
  { name: "get x10", ops: Math.round(6000 * scale), concurrency: 10, run: (s, i) => s.get(`p${i % KEYS}`) },
  { name: "get x100", ops: Math.round(10000 * scale), concurrency: 100, run: (s, i) => s.get(`p${i % KEYS}`) },
  { name: "range 1000 keys", ops: Math.round(150 * scale), concurrency: 1, run: (s) => s.range("p") },
  { name: "range 1000 keys to strings", ops: Math.round(150 * scale), concurrency: 1, run: (s) => s.rangeStrings("p") },
  { name: "txn x10", ops: Math.round(3000 * scale), concurrency: 10, run: (s, i) => s.txn(`p${i % KEYS}`, VALUE) },
  {
    name: "paginate 100,000 keys (pages of 1000)",
    ops: quick ? 1 : 2,
    concurrency: 1,
    run: async (s) => {
      const n = await s.page("g/", PAGE);
      if (n !== PAGED_KEYS) throw new Error(`${s.name} paged ${n} keys, want ${PAGED_KEYS}`);
    },
  },
];
// --only takes one name fragment, or several separated by commas.
const workloads = allWorkloads.filter((w) => only === undefined || only.split(",").some((o) => w.name.includes(o)));

interface Sample {
  opsPerSec: number;
  cpuUsPerOp: number;
}

async function measure(s: Subject, w: Workload): Promise<Sample> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < w.ops) await w.run(s, next++);
  };
  // Warm up connections and JIT outside the measurement.
  for (let i = 0; i < Math.min(50, w.ops); i++) await w.run(s, i);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: w.concurrency }, worker));
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  return { opsPerSec: (w.ops * 1e9) / wallNs, cpuUsPerOp: (cpu.user + cpu.system) / w.ops };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const member = await startEtcd({ extraArgs: ["--quota-backend-bytes", String(4 * 1024 * 1024 * 1024)] });
  const subjects = [ours(member.endpoint, "http2"), etcd3(member.endpoint), bare(member.endpoint)];
  if (args.includes("--with-connect-node")) subjects.push(ours(member.endpoint, "connect-node"));
  const baseline = arg("--baseline");
  if (baseline !== undefined) {
    const old = (await import(baseline)) as { Etcd: typeof Etcd };
    subjects.push(ours(member.endpoint, "http2", old.Etcd, "baseline"));
  }
  try {
    const seed = new Etcd({ endpoints: member.endpoint });
    for (let i = 0; i < KEYS; i += 100) {
      await seed.txn().then(...Array.from({ length: 100 }, (_, j) => Op.put(`p${i + j}`, VALUE))).commit();
    }
    if (workloads.some((w) => w.name.startsWith("paginate"))) {
      // 100,000 keys with 32-byte values, written 100 per transaction, 10 transactions at a time.
      const value = "v".repeat(32);
      const batches = Array.from({ length: PAGED_KEYS / 100 }, (_, b) => b);
      for (let i = 0; i < batches.length; i += 10) {
        await Promise.all(
          batches.slice(i, i + 10).map((b) => seed.txn().then(...Array.from({ length: 100 }, (_, j) => Op.put(`g/${String(b * 100 + j).padStart(6, "0")}`, value))).commit()),
        );
      }
    }
    await seed.close();
    const results: Record<string, Record<string, { opsPerSec: number; cpuUsPerOp: number }>> = {};
    for (const w of workloads) {
      const samples = new Map<string, Sample[]>(subjects.map((s) => [s.name, []]));
      for (let r = 0; r < rounds; r++) {
        for (const s of subjects) samples.get(s.name)!.push(await measure(s, w));
      }
      results[w.name] = {};
      for (const s of subjects) {
        const xs = samples.get(s.name)!;
        results[w.name]![s.name] = { opsPerSec: median(xs.map((x) => x.opsPerSec)), cpuUsPerOp: median(xs.map((x) => x.cpuUsPerOp)) };
      }
      printRow(w.name, results[w.name]!);
    }
    if (jsonOut !== undefined) {
      writeFileSync(jsonOut, JSON.stringify({ rounds, server: member.version ?? "unknown", results }, null, 2) + "\n");
      console.log(`wrote ${jsonOut}`);
    }
  } finally {
    for (const s of subjects) s.close();
    await member.stop();
  }
}

let headerPrinted = false;
function printRow(name: string, r: Record<string, { opsPerSec: number; cpuUsPerOp: number }>): void {
  const us = r["this client"]!;
  const them = r["etcd3"]!;
  const floor = r["bare http2"]!;
  if (!headerPrinted) {
    headerPrinted = true;
    console.log(
      "| workload | this client ops/s | etcd3 ops/s | bare ops/s | this client CPU µs/op | etcd3 CPU µs/op | bare CPU µs/op | ops/s vs etcd3 | CPU vs etcd3 | CPU vs bare |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|---|");
  }
  const f = (x: number): string => (x < 10 ? x.toFixed(2) : x.toFixed(0));
  console.log(
    `| ${name} | ${f(us.opsPerSec)} | ${f(them.opsPerSec)} | ${f(floor.opsPerSec)} | ${f(us.cpuUsPerOp)} | ${f(them.cpuUsPerOp)} | ${f(floor.cpuUsPerOp)} | ${(us.opsPerSec / them.opsPerSec).toFixed(2)}x | ${(us.cpuUsPerOp / them.cpuUsPerOp).toFixed(2)}x | ${(us.cpuUsPerOp / floor.cpuUsPerOp).toFixed(2)}x |`,
  );
  const cn = r["this client (connect-node)"];
  if (cn !== undefined) console.log(`|   connect-node transport | ${f(cn.opsPerSec)} ops/s, ${f(cn.cpuUsPerOp)} µs/op |`);
  const base = r["baseline"];
  if (base !== undefined) {
    console.log(
      `|   baseline build | ${f(base.opsPerSec)} ops/s, ${f(base.cpuUsPerOp)} µs/op | this client vs baseline: ${(us.opsPerSec / base.opsPerSec).toFixed(2)}x ops/s, ${(us.cpuUsPerOp / base.cpuUsPerOp).toFixed(2)}x CPU |`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
