// What users hook into: connect interceptors around every call, and events
// for connection state and endpoint failures.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Interceptor } from "@connectrpc/connect";
import { startEtcd, type EtcdMember } from "./harness/index.js";
import { client, transportUnderTest, uniquePrefix } from "./support.js";
import { EndpointUnavailableError, EtcdError, InvalidKeyError, NoEndpointAvailableError } from "../src/index.js";

let member: EtcdMember;
before(async () => {
  member = await startEtcd();
});
after(async () => {
  await member?.stop();
});

describe("observability", () => {
  test("interceptors see every call, in order, and can add metadata", async () => {
    const seen: string[] = [];
    const outer: Interceptor = (next) => async (req) => {
      seen.push(`outer>${req.method.name}`);
      req.header.set("x-trace-id", "abc123");
      const res = await next(req);
      seen.push(`outer<${req.method.name}`);
      return res;
    };
    const inner: Interceptor = (next) => async (req) => {
      seen.push(`inner>${req.method.name}:${req.header.get("x-trace-id")}`);
      return next(req);
    };
    const etcd = client(member.endpoint, { interceptors: [outer, inner] });
    try {
      const k = uniquePrefix("icpt") + "k";
      await etcd.put(k, "v");
      assert.equal((await etcd.get(k)).text, "v");
      assert.deepEqual(seen, ["outer>Put", "inner>Put:abc123", "outer<Put", "outer>Range", "inner>Range:abc123", "outer<Range"]);
    } finally {
      etcd.close();
    }
  });

  test("an interceptor sees failures too", async () => {
    const failures: string[] = [];
    const watchErrors: Interceptor = (next) => async (req) => {
      try {
        return await next(req);
      } catch (e) {
        failures.push(`${req.method.name}: ${(e as Error).message}`);
        throw e;
      }
    };
    const etcd = client(member.endpoint, { interceptors: [watchErrors] });
    try {
      await assert.rejects(etcd.raw.kv.range({ key: new Uint8Array(0) }), InvalidKeyError);
      assert.equal(failures.length, 1);
      assert.match(failures[0]!, /^Range: .*key is not provided/);
    } finally {
      etcd.close();
    }
  });

  test("connection and endpoint events follow a member going down and coming back", { skip: transportUnderTest === "connect-node" ? "connection events come from the built-in transport" : false }, async () => {
    const etcd = client(member.endpoint, { dialTimeoutMs: 500, requestTimeoutMs: 1500, backoff: { initialMs: 50, maxMs: 200 } });
    const states: string[] = [];
    const failed: EtcdError[] = [];
    let recovered = 0;
    etcd.events.on("connection", (_, state) => states.push(state));
    etcd.events.on("endpointFailed", (_, e) => failed.push(e));
    etcd.events.on("endpointRecovered", () => recovered++);
    try {
      await etcd.get("k");
      assert.deepEqual(states, ["connecting", "ready"]);
      await member.kill();
      // Caught on the dying connection, or refused on the next dial: either way it names the member.
      await assert.rejects(etcd.get("k"), (e: unknown) =>
        e instanceof NoEndpointAvailableError ? e.errors.every((x) => x.endpoint === member.endpoint) : e instanceof EtcdError && e.endpoint === member.endpoint,
      );
      assert.ok(failed.length >= 1, "endpointFailed fired");
      // A call caught on the dying connection fails as "stream closed"; later dials are refused. All name the endpoint.
      assert.ok(failed.every((e) => e.endpoint === member.endpoint), failed.map(String).join("; "));
      assert.ok(failed.some((e) => e instanceof EndpointUnavailableError), failed.map(String).join("; "));
      assert.ok(states.includes("idle"), `states: ${states.join(",")}`);
      await member.restart();
      // Bounded: the backoff is at most 200 ms and each attempt at most 1.5 s.
      let ok = false;
      for (let i = 0; i < 20 && !ok; i++) {
        ok = await etcd.get("k").then(
          () => true,
          () => false,
        );
      }
      assert.ok(ok, "the client reconnected by itself");
      assert.ok(recovered >= 1, "endpointRecovered fired");
      assert.equal(states[states.length - 1], "ready");
    } finally {
      etcd.close();
    }
  });
});
