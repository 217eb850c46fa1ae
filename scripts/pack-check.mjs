// Checks the package as users get it: builds it, packs it, lints the tarball
// with publint and @arethetypeswrong/cli, then installs the tarball into a
// scratch ESM project and a scratch CommonJS project (from npm's cache: after
// `npm ci` every dependency is there) and, in each, type-checks a TypeScript
// file against the shipped typings and runs a put/get against a real etcd
// member this script starts on a loopback port. Exits non-zero on any failure.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const bin = (pkg, file) => join(root, "node_modules", pkg, file);
const run = (cmd, args, cwd = root) => execFileSync(cmd, args, { cwd, stdio: "inherit" });
const node = (args, cwd) => run(process.execPath, args, cwd);
const step = (s) => console.log(`\n--- ${s}`);

const work = mkdtempSync(join(tmpdir(), "etcd-connect-pack-"));
let member;
try {
  step("build and pack");
  node(["scripts/build.mjs"]);
  run("npm", ["pack", "--silent", "--pack-destination", work]);
  const tarball = join(work, readdirSync(work).find((f) => f.endsWith(".tgz")));
  const listing = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).trim().split("\n");
  // Only built code, typings, README, LICENSE and package.json belong in it.
  const stray = listing.filter((f) => !/^package\/(README\.md|LICENSE|package\.json|dist\/.*\.(js|d\.ts|json))$/.test(f));
  if (stray.length > 0) throw new Error(`unexpected files in the tarball:\n  ${stray.join("\n  ")}`);
  console.log(`${tarball}: ${listing.length} files`);

  step("publint");
  node([bin("publint", "src/cli.js"), "--strict", root]);
  step("are the types wrong");
  node([bin("@arethetypeswrong/cli", "dist/index.js"), tarball]);

  step("starting etcd");
  // The harness is TypeScript: compile it (tsconfig.examples.json includes it, without the tests).
  node([bin("typescript", "bin/tsc"), "-p", "tsconfig.examples.json"]);
  const { startEtcd } = await import(join(root, "build/test/harness/index.js"));
  member = await startEtcd();
  console.log(`etcd ${member.version} at ${member.endpoint}`);

  const usage = (load) => `${load}
const etcd = new Etcd({ endpoints: [process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379"] });
const key = "pack-check/" + process.pid;
await etcd.put(key, "it works");
const res = await etcd.get(key);
if (res.text !== "it works") throw new Error("read back " + String(res.text));
await etcd.delete(key);
await etcd.close();
console.log("put/get through the installed package: " + res.text);
`;
  const projects = [
    {
      name: "esm",
      type: "module",
      js: ["index.mjs", usage(`import { Etcd } from "etcd-connect";\nimport { RangeRequestSchema } from "etcd-connect/gen/etcd/api/etcdserverpb/rpc_pb";\nif (!RangeRequestSchema) throw new Error("no gen export");`)],
      ts: usage(`import { Etcd, type GetResult } from "etcd-connect";\nimport type { RangeRequest } from "etcd-connect/gen/etcd/api/etcdserverpb/rpc_pb";\nexport type Check = [GetResult, RangeRequest];`),
    },
    {
      name: "cjs",
      type: "commonjs",
      // CommonJS has no top-level await: wrap the same code.
      js: ["index.cjs", `const { Etcd } = require("etcd-connect");\nrequire("etcd-connect/gen/etcd/api/etcdserverpb/rpc_pb");\n(async () => {${usage("")}})().catch((e) => { console.error(e); process.exit(1); });\n`],
      ts: `import { Etcd, GetResult } from "etcd-connect";\nexport async function check(): Promise<GetResult> {\n  const etcd = new Etcd({ endpoints: ["127.0.0.1:2379"] });\n  try { return await etcd.get("k"); } finally { await etcd.close(); }\n}\n`,
    },
  ];
  for (const p of projects) {
    step(`scratch ${p.name} project`);
    const dir = join(work, p.name);
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `scratch-${p.name}`, private: true, type: p.type }, null, 2));
    // --prefer-offline: after `npm ci` the dependencies come from npm's cache.
    run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--no-package-lock", tarball], dir);
    writeFileSync(join(dir, p.js[0]), p.js[1]);
    writeFileSync(join(dir, "check.ts"), p.ts);
    // The shipped typings, resolved as Node resolves them (module nodenext follows the project's "type").
    node([bin("typescript", "bin/tsc"), "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022",
      "--typeRoots", join(root, "node_modules/@types"), "--types", "node", "check.ts"], dir);
    execFileSync(process.execPath, [p.js[0]], { cwd: dir, stdio: "inherit", env: { ...process.env, ETCD_ENDPOINTS: member.endpoint }, timeout: 30_000 });
  }
  console.log("\npack check passed");
} finally {
  await member?.stop();
  rmSync(work, { recursive: true, force: true });
}
