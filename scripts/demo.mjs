// Compiles the examples (and what they import) and runs examples/demo.ts, which starts its own etcd cluster.
import { execFileSync, spawnSync } from "node:child_process";

execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.examples.json"], { stdio: "inherit" });
const r = spawnSync(process.execPath, ["build/examples/demo.js", ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(r.status ?? 1);
