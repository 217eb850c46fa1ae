/**
 * Decoding alone, no network: the same serialized 1000-key RangeResponse
 * (keys p0..p999, 256-byte values, as in bench.ts) decoded by this client's
 * decoder, by protobuf-es's reflective `fromBinary`, and by the deserializer
 * the `etcd3` package runs on every Range response (protobufjs via
 * @grpc/proto-loader with etcd3's own options). Rounds are interleaved;
 * medians are reported.
 *
 *   npm run bench:decode
 *   npm run bench:decode -- --json out.json
 */
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RangeResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { decodeRangeResponse } from "../src/kv/range-decoder.js";

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const jsonOut = args.includes("--json") ? args[args.indexOf("--json") + 1] : undefined;

// etcd3 loads its protos this way (lib/connection-pool.js); we take the Range deserializer from the same definition.
const protoLoader = require("@grpc/proto-loader") as typeof import("@grpc/proto-loader");
const etcd3Proto = require.resolve("etcd3/proto/rpc.proto");
const definition = protoLoader.loadSync(etcd3Proto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const kvService = definition["etcdserverpb.KV"] as Record<string, { responseDeserialize(b: Buffer): unknown }>;
const etcd3Deserialize = kvService["Range"]!.responseDeserialize;

const enc = new TextEncoder();
const bytes = Buffer.from(
  toBinary(
    RangeResponseSchema,
    create(RangeResponseSchema, {
      header: { clusterId: 14841639068965178418n, memberId: 10276657743932975437n, revision: 12345n, raftTerm: 2n },
      kvs: Array.from({ length: 1000 }, (_, i) => ({
        key: enc.encode(`p${i}`),
        value: enc.encode("x".repeat(256)),
        createRevision: 2n + BigInt(i),
        modRevision: 9000n + BigInt(i),
        version: 5n,
        lease: 0n,
      })),
      count: 1000n,
    }),
  ),
);

const subjects: Array<[string, () => unknown]> = [
  ["this client", () => decodeRangeResponse(bytes)],
  ["protobuf-es fromBinary", () => fromBinary(RangeResponseSchema, bytes)],
  ["etcd3 (protobufjs)", () => etcd3Deserialize(bytes)],
];

const ROUNDS = 7;
const N = 300;
const samples = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, fn] of subjects) {
    for (let i = 0; i < 30; i++) fn(); // warm
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) fn();
    const t = process.cpuUsage(t0);
    const list = samples.get(name) ?? [];
    list.push((t.user + t.system) / N);
    samples.set(name, list);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results = subjects.map(([name]) => ({ name, cpuMicrosPerDecode: median(samples.get(name)!) }));
const etcd3 = results.find((r) => r.name.startsWith("etcd3"))!.cpuMicrosPerDecode;
console.log(`decoding one 1000-key RangeResponse (${bytes.length} bytes), CPU µs per decode, median of ${ROUNDS} rounds`);
console.log("| decoder | µs/decode | vs etcd3 |");
console.log("|---|---|---|");
for (const r of results) console.log(`| ${r.name} | ${r.cpuMicrosPerDecode.toFixed(0)} | ${(r.cpuMicrosPerDecode / etcd3).toFixed(2)}x |`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ bytes: bytes.length, rounds: ROUNDS, results }, null, 2) + "\n");
