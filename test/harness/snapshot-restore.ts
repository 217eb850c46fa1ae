// Restores an etcd snapshot file into a new data folder with etcd's own tool
// (`etcdctl snapshot restore` for 3.4, `etcdutl snapshot restore` for 3.5+)
// and starts a single member on it.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { etcdBinary, etcdVersion } from "./etcd-binary.js";
import { EtcdMember, makeDataRoot, type MemberOptions } from "./etcd.js";
import { freePorts } from "./ports.js";

const run = promisify(execFile);

/** The restore command that matches the server under test: etcdutl beside a 3.5+ binary, else etcdctl 3.4. */
export function restoreTool(bin = etcdBinary()): { file: string; env: NodeJS.ProcessEnv } {
  if (etcdVersion(bin).startsWith("3.4")) {
    const file = "/usr/bin/etcdctl";
    if (!existsSync(file)) throw new Error("no /usr/bin/etcdctl: run `bash scripts/install-etcd.sh` (it installs Debian's etcd-client)");
    return { file, env: { ...process.env, ETCDCTL_API: "3" } };
  }
  const file = join(dirname(bin), "etcdutl");
  if (!existsSync(file)) throw new Error(`no etcdutl beside ${bin}`);
  return { file, env: process.env };
}

/**
 * Restores `snapshotFile` (checking its SHA-256, as the tool does by default)
 * into a fresh data folder and starts one member on it. Rejects with the
 * tool's output when the restore fails.
 */
export async function startFromSnapshot(snapshotFile: string, options: MemberOptions = {}): Promise<EtcdMember> {
  const root = makeDataRoot();
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const dataDir = join(root, "r1");
  const tool = restoreTool();
  const initial = `r1=${peerUrl}`;
  await run(
    tool.file,
    ["snapshot", "restore", snapshotFile, "--name", "r1", "--data-dir", dataDir, "--initial-cluster", initial, "--initial-advertise-peer-urls", peerUrl],
    { env: tool.env, timeout: 60_000 },
  );
  const m = new EtcdMember("r1", clientPort, peerPort, dataDir, ["--initial-cluster", initial, "--initial-cluster-state", "new"], options);
  m.start();
  try {
    await m.waitReady();
  } catch (e) {
    await m.kill();
    throw e;
  }
  return m;
}
