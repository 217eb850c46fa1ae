// Compiles the project and runs bench/bench.ts, or bench/failover.ts with --failover;
// other arguments pass through (e.g. --json out.json).
import { execFileSync, spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const script = args.includes("--failover") ? "build/bench/failover.js" : "build/bench/bench.js";
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
const r = spawnSync(process.execPath, [script, ...args.filter((a) => a !== "--failover")], { stdio: "inherit" });
process.exit(r.status ?? 1);
