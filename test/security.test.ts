// With TLS on, nothing goes in the clear: plaintext endpoints are refused
// (given or learned from the member list) unless explicitly allowed; and the
// test certificates' private keys do not outlive the process that made them.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MemberListResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { Etcd, InvalidOptionError } from "../src/index.js";
import { makeCerts, type TestCerts } from "./harness/index.js";
import { startFakeServer, type FakeServer } from "./fake-server.js";
import { transportUnderTest } from "./support.js";

let certs: TestCerts;
const servers: FakeServer[] = [];
before(() => {
  certs = makeCerts();
});
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A TLS member whose member list advertises `urls`. */
async function tlsMemberListing(urls: string[][]): Promise<FakeServer> {
  const s = await startFakeServer({
    tls: { key: readFileSync(certs.serverKeyFile), cert: readFileSync(certs.serverCertFile) },
    onCall: (c) => {
      if (c.path === "/etcdserverpb.Cluster/MemberList") {
        c.reply(MemberListResponseSchema, { members: urls.map((clientURLs, i) => ({ ID: BigInt(i + 1), name: `m${i + 1}`, clientURLs })) });
      } else c.fail(12, "unimplemented");
    },
  });
  servers.push(s);
  return s;
}

describe("plaintext with TLS on", () => {
  test("an http:// endpoint is refused when tls is set, unless allowPlaintext", async () => {
    assert.throws(() => new Etcd({ endpoints: ["https://127.0.0.1:2379", "http://127.0.0.1:2380"], tls: { ca: certs.ca } }), (e: unknown) => e instanceof InvalidOptionError && /http:\/\/127\.0\.0\.1:2380.*plaintext/.test(e.message));
    await new Etcd({ endpoints: ["http://127.0.0.1:2380"], tls: { ca: certs.ca }, allowPlaintext: true }).close();
    // Without tls, plaintext is what was asked for.
    await new Etcd({ endpoints: ["http://127.0.0.1:2380"] }).close();
  });

  test("member URLs learned by sync: plaintext ones are skipped; only plaintext ones is an error and changes nothing", async () => {
    const https = `https://127.0.0.1:1`;
    const mixed = await tlsMemberListing([["http://127.0.0.1:2"], ["http://127.0.0.1:3", https]]);
    const etcd = new Etcd({ endpoints: `https://${mixed.endpoint}`, tls: { ca: certs.ca }, transport: transportUnderTest });
    try {
      assert.deepEqual(await etcd.sync(), [https]);
    } finally {
      await etcd.close();
    }
    const plain = await tlsMemberListing([["http://127.0.0.1:2"], ["http://127.0.0.1:3"]]);
    const etcd2 = new Etcd({ endpoints: `https://${plain.endpoint}`, tls: { ca: certs.ca }, transport: transportUnderTest });
    try {
      await assert.rejects(etcd2.sync(), (e: unknown) => e instanceof InvalidOptionError && /plaintext/.test(e.message));
      assert.deepEqual(etcd2.info().map((i) => i.url), [`https://${plain.endpoint}`]);
    } finally {
      await etcd2.close();
    }
  });
});

test("the certificates' folder (private keys included) is removed when the process that made it exits", () => {
  const harness = fileURLToPath(new URL("./harness/index.js", import.meta.url));
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", `const { makeCerts } = await import(${JSON.stringify(harness)}); console.log(makeCerts().dir);`], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const dir = r.stdout.trim();
  assert.match(dir, /etcd-certs-/);
  assert.equal(existsSync(dir), false, `${dir} was left behind`);
});
