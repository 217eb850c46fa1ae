// Runs every example in examples/ (demo.ts aside: `npm run demo` has its own
// cluster) against one etcd member this script starts on a free loopback port
// (ETCD_BIN picks the binary), each with ETCD_ENDPOINTS set and a time bound.
// Fails if any example fails, hangs, or leaves its process running.
import { spawn, execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const TIME_BOUND_MS = 60_000;
const only = process.argv.slice(2); // optional example names, e.g. kv txn

execFileSync(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.examples.json"], { cwd: root, stdio: "inherit" });
const { startEtcd } = await import(join(root, "build/test/harness/index.js"));

const names = readdirSync(join(root, "examples"))
  .filter((f) => f.endsWith(".ts") && f !== "demo.ts")
  .map((f) => f.slice(0, -3))
  .filter((n) => only.length === 0 || only.includes(n))
  .sort();

/** Runs one compiled example; resolves with its exit code (or a reason it did not end by itself) and duration. */
function runExample(name, endpoint) {
  return new Promise((done) => {
    const started = Date.now();
    const child = spawn(process.execPath, [join(root, "build/examples", `${name}.js`)], {
      cwd: root,
      env: { ...process.env, ETCD_ENDPOINTS: endpoint },
      stdio: ["ignore", "inherit", "inherit"],
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), TIME_BOUND_MS);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      done({ ok: code === 0, why: signal ? `killed after ${TIME_BOUND_MS} ms (it did not exit by itself)` : `exit code ${code}`, ms: Date.now() - started });
    });
  });
}

const member = await startEtcd();
console.log(`etcd ${member.version} at ${member.endpoint}`);
const failed = [];
let passed = 0;
try {
  for (const name of names) {
    console.log(`\n=== examples/${name}.ts ===`);
    const r = await runExample(name, member.endpoint);
    console.log(`--- ${name}: ${r.ok ? "ok" : `FAILED (${r.why})`} in ${r.ms} ms`);
    if (r.ok) passed++;
    else failed.push(name);
  }
} finally {
  await member.stop();
}
console.log(`\nexamples: ${passed} passed, ${failed.length} failed${failed.length > 0 ? ` (${failed.join(", ")})` : ""}`);
process.exit(failed.length === 0 && passed > 0 ? 0 : 1);
