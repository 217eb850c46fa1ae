// Compiles the project and runs one benchmark: bench/bench.ts by default, or
// the one named by a flag (--failover, --decode, --h2, --watch, --lease);
// other arguments pass through (e.g. --json out.json).
import { execFileSync, spawnSync } from "node:child_process";

const benches = { "--failover": "failover", "--decode": "decode", "--h2": "h2", "--watch": "watch", "--lease": "lease" };
const args = process.argv.slice(2);
const flag = args.find((a) => a in benches);
const script = `build/bench/${flag ? benches[flag] : "bench"}.js`;
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
const r = spawnSync(process.execPath, [script, ...args.filter((a) => !(a in benches))], { stdio: "inherit" });
process.exit(r.status ?? 1);
