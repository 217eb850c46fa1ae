// Compiles the project and runs bench/bench.ts; arguments pass through (e.g. --json out.json).
import { execFileSync, spawnSync } from "node:child_process";

execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
const r = spawnSync(process.execPath, ["build/bench/bench.js", ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(r.status ?? 1);
