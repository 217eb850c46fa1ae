// Test certificates made with openssl at test time: a CA, a server cert for
// 127.0.0.1/localhost, a client cert, and a second unrelated CA (for "wrong CA" tests).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCerts {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** PEM contents, for client options. */
  ca: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  /** A CA that signed nothing here. */
  otherCa: Buffer;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

function makeCa(dir: string, name: string): void {
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.crt`], dir);
}

function issue(dir: string, ca: string, name: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`], dir);
}

// The folders hold private keys: none may outlive the process that made it.
const dirs = new Set<string>();
process.once("exit", () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Creates a fresh set of certificates in a temporary folder, removed when the process exits. */
export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "etcd-certs-"));
  dirs.add(dir);
  makeCa(dir, "ca");
  makeCa(dir, "other-ca");
  issue(dir, "ca", "server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  issue(dir, "ca", "client", "extendedKeyUsage=clientAuth\n");
  const f = (n: string) => join(dir, n);
  return {
    dir,
    caFile: f("ca.crt"),
    serverCertFile: f("server.crt"),
    serverKeyFile: f("server.key"),
    clientCertFile: f("client.crt"),
    clientKeyFile: f("client.key"),
    ca: readFileSync(f("ca.crt")),
    clientCert: readFileSync(f("client.crt")),
    clientKey: readFileSync(f("client.key")),
    otherCa: readFileSync(f("other-ca.crt")),
  };
}
