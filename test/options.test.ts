// Every option of the client is checked when it is created: anything wrong
// throws InvalidOptionError naming the option, never a plain TypeError and
// never silent acceptance. No server is needed: nothing connects until a call.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Etcd, InvalidOptionError, Op, type EtcdOptions } from "../src/index.js";

const ok = (o: Partial<EtcdOptions>): Promise<void> => new Etcd({ endpoints: "127.0.0.1:2379", ...o }).close();

function refused(options: unknown, mentions: RegExp): void {
  assert.throws(
    () => new Etcd(options as EtcdOptions),
    (e: unknown) => {
      assert.ok(e instanceof InvalidOptionError, `${JSON.stringify(options)}: ${String(e)}`);
      assert.match(e.message, mentions);
      return true;
    },
  );
}

test("endpoints: missing, empty, not strings, or not an address", () => {
  refused({}, /endpoints/);
  refused({ endpoints: [] }, /endpoints/);
  refused({ endpoints: [42] }, /endpoint/);
  for (const bad of ["foo:bar:baz", "", "ftp://x:1", "host:0", "host:99999", "host:abc", "http://host:1/path", "[::1", "[nothost]:1", "::1:2379", "h:"]) {
    refused({ endpoints: [bad] }, /endpoint/);
  }
  refused(undefined, /options/);
});

test("durations: negative, NaN, zero where a positive one is needed, or not a number", () => {
  for (const name of ["dialTimeoutMs", "requestTimeoutMs", "keepAliveTimeoutMs", "lookupTimeoutMs", "connectTimeoutMs", "tlsTimeoutMs"]) {
    for (const bad of [-1, NaN, 0, "1000"]) refused({ endpoints: "h:1", [name]: bad }, new RegExp(name));
  }
  for (const name of ["keepAliveIntervalMs", "autoSyncIntervalMs"]) {
    for (const bad of [-1, NaN, "1000"]) refused({ endpoints: "h:1", [name]: bad }, new RegExp(name));
  }
  refused({ endpoints: "h:1", keepAliveTimeoutMs: Infinity }, /keepAliveTimeoutMs/);
  refused({ endpoints: "h:1", autoSyncIntervalMs: Infinity }, /autoSyncIntervalMs/);
});

test("sizes, flags, enums and objects of the wrong kind", () => {
  for (const name of ["maxRequestBytes", "maxResponseBytes", "maxTxnOps"]) {
    for (const bad of [0, -5, 1.5, 2 ** 31, "128"]) refused({ endpoints: "h:1", [name]: bad }, new RegExp(name));
  }
  for (const name of ["requireLeader", "retryWrites", "waitForReady", "allowPlaintext"]) refused({ endpoints: "h:1", [name]: "yes" }, new RegExp(name));
  refused({ endpoints: "h:1", transport: "grpc-js" }, /transport/);
  refused({ endpoints: "h:1", interceptors: ["log"] }, /interceptors/);
  refused({ endpoints: "h:1", interceptors: () => undefined }, /interceptors/);
  refused({ endpoints: "h:1", backoff: { initialMs: -1 } }, /backoff\.initialMs/);
  refused({ endpoints: "h:1", backoff: { initialMs: 500, maxMs: 100 } }, /backoff\.maxMs/);
  refused({ endpoints: "h:1", backoff: 100 }, /backoff/);
  refused({ endpoints: "h:1", auth: { username: "", password: "p" } }, /auth\.username/);
  refused({ endpoints: "h:1", auth: { username: "u" } }, /auth\.password/);
  refused({ endpoints: "h:1", tls: "yes" }, /tls/);
  refused({ endpoints: "h:1", tls: { cert: "PEM" } }, /tls\.cert and tls\.key/);
  refused({ endpoints: "h:1", tls: { ca: 42 } }, /tls\.ca/);
  refused({ endpoints: "h:1", tls: { servername: "" } }, /tls\.servername/);
});

test("good options are accepted, Infinity where it means no limit", async () => {
  await ok({});
  await ok({ endpoints: ["https://[::1]:2379", "localhost"], tls: true });
  await ok({ requestTimeoutMs: Infinity, dialTimeoutMs: Infinity, keepAliveIntervalMs: 0, autoSyncIntervalMs: 0 });
  await ok({ backoff: { initialMs: 10 }, maxTxnOps: 1000, maxResponseBytes: 1024, waitForReady: true, transport: "connect-node" });
});

test("an invalid sort names the valid values", () => {
  assert.throws(() => Op.get("k", { sort: { target: "size" as never } }), (e: unknown) => e instanceof InvalidOptionError && /key, version, createRevision, modRevision, value/.test(e.message));
  assert.throws(() => Op.get("k", { sort: { order: "up" as never } }), (e: unknown) => e instanceof InvalidOptionError && /none, ascend, descend/.test(e.message));
  assert.throws(() => Op.get("k", { sort: { target: "constructor" as never } }), InvalidOptionError);
});
