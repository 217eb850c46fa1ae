// Compiles the project and runs bench/bench.ts, bench/failover.ts with --failover,
// bench/decode.ts with --decode, or bench/lease.ts with --lease;
// other arguments pass through (e.g. --json out.json).
import { execFileSync, spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const scripts = { "--failover": "build/bench/failover.js", "--decode": "build/bench/decode.js", "--lease": "build/bench/lease.js" };
const flag = Object.keys(scripts).find((f) => args.includes(f));
const script = flag !== undefined ? scripts[flag] : "build/bench/bench.js";
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
const r = spawnSync(process.execPath, [script, ...args.filter((a) => !(a in scripts))], { stdio: "inherit" });
process.exit(r.status ?? 1);
