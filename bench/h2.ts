/**
 * The HTTP/2 engine (src/transport/h2) against a bare `node:http2` client,
 * both doing raw gRPC unary calls to one etcd member this script starts, each
 * with protobuf-es and with the hand-written codecs of the hot messages. Rounds
 * are interleaved (every subject once per round) so machine noise hits all;
 * medians are reported, with ratios engine / node:http2.
 *
 *   npm run bench:h2
 *   npm run bench:h2 -- --rounds 5 --quick --json out.json --only put
 */
import { writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PutRequestSchema, PutResponseSchema, RangeRequestSchema, RangeResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { encodePutRequest } from "../src/kv/put-request-encoder.js";
import { decodePutResponse } from "../src/kv/put-response-decoder.js";
import { decodeRangeResponse } from "../src/kv/range-decoder.js";
import { encodeRangeRequest } from "../src/kv/range-request-encoder.js";
import { H2Session } from "../src/transport/h2/session.js";
import { startEtcd } from "../test/harness/index.js";
import { framePrefix, grpcFrame, grpcHeaders, grpcUnaryFramed } from "../test/h2/grpc-unary.js";

const args = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const rounds = Number(arg("--rounds") ?? 3);
const quick = args.includes("--quick");
const jsonOut = arg("--json");
const only = arg("--only");

const VALUE = new TextEncoder().encode("x".repeat(256));
const KEYS = Array.from({ length: 1000 }, (_, i) => new TextEncoder().encode(`p${i}`));

/** Moves raw gRPC frames: one unary call, response message bytes back. */
interface Wire {
  name: string;
  call(path: "put" | "range", frame: Uint8Array): Promise<Uint8Array>;
  writes?(): number;
  close(): void;
}

/** A bare node:http2 client: the floor this engine is measured against. */
async function nodeHttp2(endpoint: string): Promise<Wire> {
  const session = http2.connect(`http://${endpoint}`, { settings: { initialWindowSize: 1 << 20 } });
  session.on("error", () => {});
  await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
  const paths = { put: "/etcdserverpb.KV/Put", range: "/etcdserverpb.KV/Range" };
  return {
    name: "node:http2",
    call: (path, frame) =>
      new Promise((resolve, reject) => {
        const s = session.request({ ":method": "POST", ":path": paths[path], "content-type": "application/grpc", te: "trailers" });
        const chunks: Buffer[] = [];
        let status: string | undefined;
        s.on("response", (h) => (status = h["grpc-status"] as string | undefined));
        s.on("trailers", (t) => (status = t["grpc-status"] as string | undefined));
        s.on("data", (c: Buffer) => chunks.push(c));
        s.on("error", reject);
        s.on("close", () => {
          if (status !== "0") return reject(new Error(`grpc-status ${status}`));
          const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          resolve(body.subarray(5, 5 + body.readUInt32BE(1)));
        });
        s.end(frame);
      }),
    close: () => session.close(),
  };
}

/** This project's engine. */
async function engine(endpoint: string): Promise<Wire> {
  const [host, port] = endpoint.split(":") as [string, string];
  const socket = net.connect({ host, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const session = new H2Session(socket, { address: endpoint });
  await session.ready;
  const headers = { put: grpcHeaders(endpoint, "/etcdserverpb.KV/Put"), range: grpcHeaders(endpoint, "/etcdserverpb.KV/Range") };
  return {
    name: "engine",
    call: (path, frame) => grpcUnaryFramed(session, headers[path], frame),
    writes: () => session.stats.writes,
    close: () => void session.close(),
  };
}

interface Subject {
  name: string;
  wire: Wire;
  put(i: number): Promise<unknown>;
  get(i: number): Promise<unknown>;
}

function withProtobufEs(wire: Wire): Subject {
  return {
    name: `${wire.name} + protobuf-es`,
    wire,
    put: (i) =>
      wire.call("put", grpcFrame(toBinary(PutRequestSchema, create(PutRequestSchema, { key: KEYS[i % 1000]!, value: VALUE })))).then((b) => fromBinary(PutResponseSchema, b)),
    get: (i) => wire.call("range", grpcFrame(toBinary(RangeRequestSchema, create(RangeRequestSchema, { key: KEYS[i % 1000]! })))).then((b) => fromBinary(RangeResponseSchema, b)),
  };
}

function withHandCodecs(wire: Wire): Subject {
  return {
    name: `${wire.name} + hand codecs`,
    wire,
    put: (i) => wire.call("put", framePrefix(encodePutRequest({ key: KEYS[i % 1000]!, value: VALUE }, 5)!)).then((b) => decodePutResponse(b) ?? fromBinary(PutResponseSchema, b)),
    get: (i) => wire.call("range", framePrefix(encodeRangeRequest({ key: KEYS[i % 1000]! }, 5)!)).then((b) => decodeRangeResponse(b) ?? fromBinary(RangeResponseSchema, b)),
  };
}

interface Workload {
  name: string;
  ops: number;
  concurrency: number;
  run(s: Subject, i: number): Promise<unknown>;
}

const scale = quick ? 0.25 : 1;
const allWorkloads: Workload[] = [
  { name: "put x100", ops: Math.round(10000 * scale), concurrency: 100, run: (s, i) => s.put(i) },
  { name: "get x100", ops: Math.round(10000 * scale), concurrency: 100, run: (s, i) => s.get(i) },
  { name: "put x10", ops: Math.round(3000 * scale), concurrency: 10, run: (s, i) => s.put(i) },
  { name: "put x1 (sequential)", ops: Math.round(400 * scale), concurrency: 1, run: (s, i) => s.put(i) },
];
const workloads = allWorkloads.filter((w) => only === undefined || w.name.includes(only));

interface Sample {
  opsPerSec: number;
  cpuUsPerOp: number;
  /** Requests per socket write (engine only). */
  perWrite?: number;
}

async function measure(s: Subject, w: Workload): Promise<Sample> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < w.ops) await w.run(s, next++);
  };
  for (let i = 0; i < Math.min(50, w.ops); i++) await w.run(s, i);
  const writes0 = s.wire.writes?.();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: w.concurrency }, worker));
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  const sample: Sample = { opsPerSec: (w.ops * 1e9) / wallNs, cpuUsPerOp: (cpu.user + cpu.system) / w.ops };
  if (writes0 !== undefined) sample.perWrite = w.ops / (s.wire.writes!() - writes0);
  return sample;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const member = await startEtcd({ extraArgs: ["--quota-backend-bytes", String(4 * 1024 * 1024 * 1024)] });
  const wires = [await nodeHttp2(member.endpoint), await engine(member.endpoint)];
  const subjects = [withProtobufEs(wires[0]!), withHandCodecs(wires[0]!), withProtobufEs(wires[1]!), withHandCodecs(wires[1]!)];
  const results: Record<string, Record<string, Sample>> = {};
  try {
    for (const s of subjects) for (let i = 0; i < 1000; i++) await s.put(i); // seed the keys, warm up
    console.log(`etcd ${member.version}, Node ${process.version}, ${rounds} interleaved rounds, medians; CPU = client user+system per op`);
    console.log("");
    console.log("| workload | codecs | node:http2 ops/s | engine ops/s | node:http2 CPU µs/op | engine CPU µs/op | engine / node:http2 CPU | engine / node:http2 ops/s | requests per write |");
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const w of workloads) {
      const samples = new Map<string, Sample[]>(subjects.map((s) => [s.name, []]));
      for (let r = 0; r < rounds; r++) for (const s of subjects) samples.get(s.name)!.push(await measure(s, w));
      const row: Record<string, Sample> = {};
      for (const s of subjects) {
        const xs = samples.get(s.name)!;
        row[s.name] = { opsPerSec: median(xs.map((x) => x.opsPerSec)), cpuUsPerOp: median(xs.map((x) => x.cpuUsPerOp)) };
        if (xs[0]!.perWrite !== undefined) row[s.name]!.perWrite = median(xs.map((x) => x.perWrite!));
      }
      results[w.name] = row;
      for (const codecs of ["protobuf-es", "hand codecs"]) {
        const a = row[`node:http2 + ${codecs}`]!;
        const b = row[`engine + ${codecs}`]!;
        const f = (x: number): string => x.toFixed(0);
        console.log(
          `| ${w.name} | ${codecs} | ${f(a.opsPerSec)} | ${f(b.opsPerSec)} | ${a.cpuUsPerOp.toFixed(1)} | ${b.cpuUsPerOp.toFixed(1)} | ${(b.cpuUsPerOp / a.cpuUsPerOp).toFixed(2)}x | ${(b.opsPerSec / a.opsPerSec).toFixed(2)}x | ${b.perWrite?.toFixed(1)} |`,
        );
      }
    }
    console.log("");
    console.log("engine + hand codecs against the bare floor as bench/bench.ts defines it (node:http2 + protobuf-es):");
    for (const w of workloads) {
      const floor = results[w.name]!["node:http2 + protobuf-es"]!;
      const best = results[w.name]!["engine + hand codecs"]!;
      console.log(`  ${w.name}: CPU ${(best.cpuUsPerOp / floor.cpuUsPerOp).toFixed(2)}x, ops/s ${(best.opsPerSec / floor.opsPerSec).toFixed(2)}x`);
    }
    if (jsonOut !== undefined) {
      writeFileSync(jsonOut, JSON.stringify({ rounds, server: member.version, node: process.version, results }, null, 2) + "\n");
      console.log(`wrote ${jsonOut}`);
    }
  } finally {
    for (const w of wires) w.close();
    await member.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
