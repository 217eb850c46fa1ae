// Real etcd members on loopback ports: start, kill -9, SIGSTOP/SIGCONT, restart, stop.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { etcdBinary, etcdVersion } from "./etcd-binary.js";
import { freePorts } from "./ports.js";
import type { TestCerts } from "./tls.js";

export interface MemberOptions {
  /** More server flags, e.g. `["--max-request-bytes", "1024"]`. */
  extraArgs?: string[];
  /** Serve clients over TLS with these certificates. */
  tls?: TestCerts;
  /** With `tls`: require client certificates (mTLS). */
  clientCertAuth?: boolean;
  /** Use simple auth tokens that expire after this many seconds. */
  authTokenTtl?: number;
  /** Milliseconds to wait for the member to become healthy. Default 30000. */
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
const dataRoots = new Set<string>();
// A test process must not leave servers or data behind, however it ends.
process.once("exit", () => {
  for (const p of live) p.kill("SIGKILL");
  for (const d of dataRoots) rmSync(d, { recursive: true, force: true });
});

/** One etcd server process and its data folder. */
export class EtcdMember {
  /** `host:port` for clients. */
  readonly endpoint: string;
  /** `http(s)://host:port` for clients. */
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly version: string;
  private proc: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    private readonly clusterArgs: string[],
    readonly options: MemberOptions,
    readonly bin = etcdBinary(),
  ) {
    this.endpoint = `127.0.0.1:${clientPort}`;
    this.clientUrl = `${options.tls ? "https" : "http"}://${this.endpoint}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
    this.version = etcdVersion(bin);
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  private args(): string[] {
    const o = this.options;
    const a = [
      "--name", this.name,
      "--data-dir", this.dataDir,
      "--listen-client-urls", this.clientUrl,
      "--advertise-client-urls", this.clientUrl,
      "--listen-peer-urls", this.peerUrl,
      "--initial-advertise-peer-urls", this.peerUrl,
      "--logger", "zap",
      "--log-level", "warn",
      ...this.clusterArgs,
    ];
    if (o.tls) {
      a.push("--cert-file", o.tls.serverCertFile, "--key-file", o.tls.serverKeyFile);
      if (o.clientCertAuth) a.push("--client-cert-auth", "--trusted-ca-file", o.tls.caFile);
    }
    if (o.authTokenTtl !== undefined) a.push("--auth-token", "simple", "--auth-token-ttl", String(o.authTokenTtl));
    a.push(...(o.extraArgs ?? []));
    return a;
  }

  /** Starts the process (not waiting for health). */
  start(): void {
    if (this.proc) throw new Error(`${this.name} is already running`);
    const log = openSync(join(this.dataDir, "..", `${this.name}.log`), "a");
    const proc = spawn(this.bin, this.args(), { stdio: ["ignore", log, log] });
    closeSync(log);
    this.proc = proc;
    live.add(proc);
    this.exited = new Promise((resolve) => {
      proc.once("exit", () => {
        live.delete(proc);
        if (this.proc === proc) this.proc = undefined;
        resolve();
      });
    });
  }

  /** Resolves once the member answers /health with true (it has a leader). */
  async waitReady(timeoutMs = this.options.readyTimeoutMs ?? 30000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.proc) throw new Error(`${this.name} exited; see ${join(this.dataDir, "..", `${this.name}.log`)}`);
      if (await this.healthy()) return;
      if (Date.now() > deadline) throw new Error(`${this.name} not healthy after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** One /health probe over HTTP/1.1; false on any failure. */
  healthy(): Promise<boolean> {
    const tls = this.options.tls;
    return new Promise((resolve) => {
      const opts = {
        host: "127.0.0.1",
        port: this.clientPort,
        path: "/health",
        timeout: 1000,
        ...(tls ? { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey } : {}),
      };
      const req = (tls ? httpsRequest : httpRequest)(opts, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
        res.on("error", () => resolve(false));
      });
      req.on("timeout", () => req.destroy());
      req.on("error", () => resolve(false));
      req.end();
    });
  }

  /** kill -9, and wait for the process to be gone. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill("SIGCONT");
    p.kill("SIGKILL");
    await this.exited;
  }

  /**
   * SIGSTOP: the process keeps its sockets but answers nothing. Resolves once
   * the kernel reports the process stopped, so a test never races the signal.
   */
  async pause(): Promise<void> {
    const p = this.proc;
    if (!p?.pid) throw new Error(`${this.name} is not running`);
    p.kill("SIGSTOP");
    for (let i = 0; i < 200; i++) {
      if (allThreadsStopped(p.pid)) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`${this.name} (pid ${p.pid}) did not stop: state ${processState(p.pid)}`);
  }

  /** SIGCONT after {@link pause}. */
  resume(): void {
    this.proc?.kill("SIGCONT");
  }

  /** Starts a killed or stopped member again on the same data and ports. */
  async restart(waitReady = true): Promise<void> {
    await this.kill();
    this.start();
    if (waitReady) await this.waitReady();
  }

  /** Graceful stop (SIGTERM, then SIGKILL after 5 s). Keeps the data folder. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill("SIGCONT");
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

/** The state letter of a process or thread from its stat file (R, S, T, Z, ...), or "?" when unknown. */
function processState(pid: number, statPath = `/proc/${pid}/stat`): string {
  try {
    const stat = readFileSync(statPath, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return "?";
  }
}

/** True once every thread of the process is stopped: a Go server serves from many threads. */
function allThreadsStopped(pid: number): boolean {
  try {
    const tasks = readdirSync(`/proc/${pid}/task`);
    return tasks.length > 0 && tasks.every((t) => processState(pid, `/proc/${pid}/task/${t}/stat`) === "T");
  } catch {
    return false;
  }
}

/** A data folder root for one member or cluster. */
export function makeDataRoot(): string {
  const d = mkdtempSync(join(tmpdir(), "etcd-test-"));
  dataRoots.add(d);
  return d;
}

/** A single-member etcd on free loopback ports, started and healthy. Its data is deleted when the process exits. */
export async function startEtcd(options: MemberOptions = {}): Promise<EtcdMember> {
  // A member that exits at start (its port taken by another process meanwhile) is tried again on new ports, twice at most.
  for (let attempt = 1; ; attempt++) {
    const root = makeDataRoot();
    const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const m = new EtcdMember("n1", clientPort, peerPort, join(root, "n1"), ["--initial-cluster", `n1=${peerUrl}`, "--initial-cluster-state", "new"], options);
    m.start();
    try {
      await m.waitReady();
      return m;
    } catch (e) {
      await m.kill();
      if (attempt >= 3) throw e;
    }
  }
}
