// TLS and mTLS against real members with certificates made by openssl at test
// time, and each kind of mismatch: every one must give a clear typed error
// within the dial timeout, never a hang.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeCerts, startEtcd, type EtcdMember, type TestCerts } from "./harness/index.js";
import { client, transportUnderTest, uniquePrefix } from "./support.js";
import { EndpointUnavailableError, EtcdError, NoEndpointAvailableError } from "../src/index.js";

let certs: TestCerts;
let tlsMember: EtcdMember;
let mtlsMember: EtcdMember;
let plainMember: EtcdMember;

before(async () => {
  certs = makeCerts();
  [tlsMember, mtlsMember, plainMember] = await Promise.all([
    startEtcd({ tls: certs }),
    startEtcd({ tls: certs, clientCertAuth: true }),
    startEtcd(),
  ]);
});
after(async () => {
  await Promise.all([tlsMember?.stop(), mtlsMember?.stop(), plainMember?.stop()]);
});

const DIAL_MS = 1500;

/** The endpoint failure behind a call's error (the error itself, or the last of several). */
function endpointFailure(e: unknown): EndpointUnavailableError {
  assert.ok(e instanceof EtcdError, String(e));
  const inner = e instanceof NoEndpointAvailableError ? e.errors[e.errors.length - 1] : e;
  assert.ok(inner instanceof EndpointUnavailableError, `expected an endpoint failure, got ${String(e)}`);
  return inner;
}

/** Runs a read that must fail fast with a typed endpoint error; returns it. */
async function failingRead(endpoint: string, options: Parameters<typeof client>[1]): Promise<EndpointUnavailableError> {
  const etcd = client(endpoint, { dialTimeoutMs: DIAL_MS, requestTimeoutMs: 10_000, ...options });
  const t0 = Date.now();
  try {
    const e = await etcd.get("k").then(
      () => assert.fail("the read should have failed"),
      (err: unknown) => err,
    );
    const took = Date.now() - t0;
    assert.ok(took < DIAL_MS + 1000, `failed after ${took} ms, dial timeout ${DIAL_MS} ms`);
    return endpointFailure(e);
  } finally {
    etcd.close();
  }
}

describe("TLS", () => {
  test("https endpoint with the right CA: reads and writes work", async () => {
    const etcd = client(tlsMember.clientUrl, { tls: { ca: certs.ca } });
    try {
      const k = uniquePrefix("tls") + "k";
      await etcd.put(k, "secure");
      assert.equal((await etcd.get(k)).text, "secure");
    } finally {
      etcd.close();
    }
  });

  test("a bare host:port uses TLS when tls options are given; servername overrides the host", async () => {
    const etcd = client(tlsMember.endpoint, { tls: { ca: certs.ca, servername: "localhost" } });
    try {
      assert.equal((await etcd.get("absent")).kvs.length, 0);
    } finally {
      etcd.close();
    }
  });

  test("a servername the certificate does not cover: a TLS error naming the mismatch", async () => {
    // The certificate covers 127.0.0.1 and localhost; asking for another name must fail, not pass silently.
    const err = await failingRead(tlsMember.clientUrl, { tls: { ca: certs.ca, servername: "not-this-server.test" } });
    assert.equal(err.reason, "tls");
    assert.equal(err.endpoint, tlsMember.endpoint);
    assert.match(err.message, /not-this-server\.test/);
  });

  test("mTLS: the client certificate is presented and accepted", async () => {
    const etcd = client(mtlsMember.clientUrl, { tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
    try {
      const k = uniquePrefix("mtls") + "k";
      await etcd.put(k, "v");
      assert.equal((await etcd.get(k)).text, "v");
    } finally {
      etcd.close();
    }
  });

  test("mTLS without a client certificate: a typed error, fast", async () => {
    const err = await failingRead(mtlsMember.clientUrl, { tls: { ca: certs.ca } });
    assert.equal(err.endpoint, mtlsMember.endpoint);
    assert.equal(err.reason, "tls", err.message);
  });

  test("a wrong CA: a TLS error naming the endpoint and the certificate problem", async () => {
    const err = await failingRead(tlsMember.clientUrl, { tls: { ca: certs.otherCa } });
    assert.equal(err.reason, "tls");
    assert.equal(err.endpoint, tlsMember.endpoint);
    assert.match(err.message, new RegExp(tlsMember.endpoint.replace(/\./g, "\\.")));
    assert.match(err.message, /certificate|self.signed|issuer/i);
  });

  // Through connect-node this looks exactly like a member killed mid-call (a stream CANCEL with no
  // cause), so it is retried until the deadline; only the built-in transport can tell the two apart.
  test("plaintext to a TLS port: a typed error within the dial timeout", { skip: transportUnderTest === "connect-node" ? "connect-node reports it as a bare stream CANCEL" : false }, async () => {
    const err = await failingRead(`http://${tlsMember.endpoint}`, {});
    assert.equal(err.endpoint, tlsMember.endpoint);
  });

  test("TLS to a plaintext port: a typed TLS error within the dial timeout", async () => {
    const err = await failingRead(`https://${plainMember.endpoint}`, { tls: { ca: certs.ca } });
    assert.equal(err.endpoint, plainMember.endpoint);
    assert.equal(err.reason, "tls");
  });
});
