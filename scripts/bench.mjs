// Compiles the project and runs bench/bench.ts, bench/failover.ts with --failover,
// bench/decode.ts with --decode, or bench/watch.ts with --watch;
// other arguments pass through (e.g. --json out.json).
import { execFileSync, spawnSync } from "node:child_process";

const args = process.argv.slice(2);
const script = args.includes("--failover")
  ? "build/bench/failover.js"
  : args.includes("--decode")
    ? "build/bench/decode.js"
    : args.includes("--watch")
      ? "build/bench/watch.js"
      : "build/bench/bench.js";
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
const r = spawnSync(process.execPath, [script, ...args.filter((a) => a !== "--failover" && a !== "--decode" && a !== "--watch")], { stdio: "inherit" });
process.exit(r.status ?? 1);
