// Where the etcd server binary is: ETCD_BIN, else the Debian package, else the unpacked 3.5.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** The nearest folder above this file that holds package.json (works from test/ and from build/test/). */
function findProjectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "scripts"))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}
const projectRoot = findProjectRoot();

/** Candidate locations, in order of preference. */
export function etcdCandidates(): string[] {
  return ["/usr/bin/etcd", join(projectRoot, ".etcd/3.5/usr/bin/etcd")];
}

/** The etcd binary the tests run: `ETCD_BIN` if set, else the first candidate that exists. */
export function etcdBinary(): string {
  const fromEnv = process.env.ETCD_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`ETCD_BIN=${fromEnv} does not exist`);
    return fromEnv;
  }
  const found = etcdCandidates().find((p) => existsSync(p));
  if (found === undefined) throw new Error("no etcd binary: run `bash scripts/install-etcd.sh` or set ETCD_BIN");
  return found;
}

const versions = new Map<string, string>();

/** The server version a binary reports (`3.4.23`). */
export function etcdVersion(bin = etcdBinary()): string {
  let v = versions.get(bin);
  if (v === undefined) {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8" });
    v = /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? "unknown";
    versions.set(bin, v);
  }
  return v;
}
