// Compiles the project and runs the node:test suite once per configuration:
// etcd 3.4 and 3.5 with the built-in transport, and etcd 3.4 with connect-node's
// stock transport, so each transport checks the other. ETCD_BIN (and
// ETCD_TRANSPORT) pin a single configuration. Prints "N passed, N failed" last.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const only = process.argv.slice(2); // optional test files or dirs (under build/test)
rmSync("build", { recursive: true, force: true });
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });

const bins = { "3.4": "/usr/bin/etcd", "3.5": ".etcd/3.5/usr/bin/etcd" };
let configs;
if (process.env.ETCD_BIN) {
  configs = [{ name: `ETCD_BIN=${process.env.ETCD_BIN}`, bin: process.env.ETCD_BIN, transport: process.env.ETCD_TRANSPORT ?? "http2" }];
} else {
  configs = [
    { name: "etcd 3.4, http2 transport", bin: bins["3.4"], transport: "http2" },
    { name: "etcd 3.5, http2 transport", bin: bins["3.5"], transport: "http2" },
    { name: "etcd 3.4, connect-node transport", bin: bins["3.4"], transport: "connect-node" },
  ];
}
const missing = configs.filter((c) => !existsSync(c.bin));
if (missing.length > 0) {
  console.error(`etcd binary missing: ${missing.map((c) => c.bin).join(", ")}; run: bash scripts/install-etcd.sh`);
  process.exit(2);
}

// Only *.test.js files are tests; the harness and helpers beside them are not.
function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? testFiles(join(dir, d.name)) : d.name.endsWith(".test.js") ? [join(dir, d.name)] : [],
  );
}
const targets = only.length > 0 ? only : testFiles("build/test").sort();
let passed = 0;
let failed = 0;
for (const c of configs) {
  console.log(`\n=== ${c.name} ===`);
  const r = spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...targets], {
    env: { ...process.env, ETCD_BIN: c.bin, ETCD_TRANSPORT: c.transport },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 256 * 1024 * 1024,
  });
  process.stdout.write(r.stdout);
  const p = /^ℹ pass (\d+)/m.exec(r.stdout);
  const f = /^ℹ fail (\d+)/m.exec(r.stdout);
  passed += p ? Number(p[1]) : 0;
  failed += f ? Number(f[1]) : 0;
  if (!p || r.status !== 0) {
    if (!f || Number(f[1]) === 0) failed += 1; // a crashed run counts as a failure
  }
}
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
