// Compiles the project and runs examples/demo.ts against an etcd it starts itself.
import { execFileSync, spawnSync } from "node:child_process";

execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
const r = spawnSync(process.execPath, ["build/examples/demo.js", ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(r.status ?? 1);
