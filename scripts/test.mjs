// Compiles the project and runs the node:test suite once per configuration:
// etcd 3.4 and 3.5, each with the built-in transport and with connect-node's
// stock transport, so each transport checks the other. ETCD_BIN (and
// ETCD_TRANSPORT) pin a single configuration; TEST_CONFIGS picks some of the four
// by key (comma-separated: 3.4-http2, 3.5-http2, 3.4-connect-node, 3.5-connect-node) and TEST_SKIP
// leaves out test files by name (comma-separated, e.g. robustness.test.js): CI's
// second Node version runs a reduced set this way. Each configuration's output is
// shown as it runs; the last lines are "N passed, N failed, N skipped" and the
// name of every skipped test with its reason.
import { execFileSync, spawn } from "node:child_process";
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
    { key: "3.4-http2", name: "etcd 3.4, http2 transport", bin: bins["3.4"], transport: "http2" },
    { key: "3.5-http2", name: "etcd 3.5, http2 transport", bin: bins["3.5"], transport: "http2" },
    { key: "3.4-connect-node", name: "etcd 3.4, connect-node transport", bin: bins["3.4"], transport: "connect-node" },
    { key: "3.5-connect-node", name: "etcd 3.5, connect-node transport", bin: bins["3.5"], transport: "connect-node" },
  ];
  if (process.env.TEST_CONFIGS) {
    const keys = process.env.TEST_CONFIGS.split(",").map((k) => k.trim());
    const unknown = keys.filter((k) => !configs.some((c) => c.key === k));
    if (unknown.length > 0) {
      console.error(`unknown TEST_CONFIGS ${unknown.join(", ")}; known: ${configs.map((c) => c.key).join(", ")}`);
      process.exit(2);
    }
    configs = configs.filter((c) => keys.includes(c.key));
  }
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

// The spec reporter marks a skipped test "﹣ name (time) # SKIP reason" (or "# reason").
const SKIPPED_LINE = /^\s*﹣ (.*?) \([\d.]+m?s\)(?: # (?:SKIP )?(.*))?$/;
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Runs one configuration, echoing its output as it comes; resolves with its counts. */
function run(config, targets) {
  return new Promise((resolve) => {
    // A test that hangs fails after 10 minutes (with its name) instead of stalling the whole run.
    const child = spawn(process.execPath, ["--test", "--test-reporter=spec", "--test-timeout=600000", ...targets], {
      env: { ...process.env, ETCD_BIN: config.bin, ETCD_TRANSPORT: config.transport },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const counts = { pass: undefined, fail: undefined, skip: 0, skipped: [] };
    let partial = "";
    const onLine = (raw) => {
      const line = stripAnsi(raw);
      const summary = /^ℹ (pass|fail|cancelled|skipped) (\d+)$/.exec(line);
      if (summary) {
        const n = Number(summary[2]);
        if (summary[1] === "skipped") counts.skip = n;
        else if (summary[1] === "pass") counts.pass = n;
        // "cancelled" is a test that timed out (or whose file died): a failure too.
        else counts.fail = (counts.fail ?? 0) + n;
      }
      const skip = SKIPPED_LINE.exec(line);
      if (skip) counts.skipped.push(`${skip[1]}${skip[2] ? ` (${skip[2]})` : ""}`);
    };
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      const lines = (partial + chunk.toString("utf8")).split("\n");
      partial = lines.pop();
      for (const l of lines) onLine(l);
    });
    child.on("close", (code) => {
      if (partial) onLine(partial);
      resolve({ ...counts, code });
    });
  });
}

const skipFiles = (process.env.TEST_SKIP ?? "").split(",").map((f) => f.trim()).filter(Boolean);
const targets = (only.length > 0 ? only : testFiles("build/test").sort()).filter((f) => !skipFiles.some((s) => f === s || f.endsWith(`/${s}`)));
console.log(`node ${process.version}${skipFiles.length > 0 ? `, leaving out ${skipFiles.join(", ")}` : ""}`);
let passed = 0;
let failed = 0;
let skips = 0;
const skipped = [];
for (const c of configs) {
  console.log(`\n=== ${c.name} ===`);
  const r = await run(c, targets);
  passed += r.pass ?? 0;
  failed += r.fail ?? 0;
  // A run that crashed, or failed without saying which test, counts as a failure.
  if ((r.pass === undefined || r.code !== 0) && !(r.fail > 0)) failed += 1;
  skips += r.skip;
  for (const s of r.skipped) skipped.push(`[${c.name}] ${s}`);
}
console.log(`\n${passed} passed, ${failed} failed, ${skips} skipped`);
for (const s of skipped) console.log(`  skipped: ${s}`);
process.exit(failed === 0 ? 0 : 1);
