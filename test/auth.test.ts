// Auth against a real member with simple tokens that expire after one second:
// tokens are fetched on first use, shared, renewed when rejected, and never
// leak into errors or the status view.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import type { Interceptor } from "@connectrpc/connect";
import { startEtcd, type EtcdMember, freePort } from "./harness/index.js";
import { client, uniquePrefix } from "./support.js";
import { AuthFailedError, type Etcd, PermissionDeniedError, UserNameEmptyError, formatEndpointTable } from "../src/index.js";

const ROOT_PASSWORD = "s3cret-root-pw";
const READER_PASSWORD = "s3cret-reader-pw";
let member: EtcdMember;

before(async () => {
  member = await startEtcd({ authTokenTtl: 1 });
  const admin = client(member.endpoint);
  try {
    const auth = admin.raw.auth;
    await auth.userAdd({ name: "root", password: ROOT_PASSWORD });
    await auth.userGrantRole({ user: "root", role: "root" });
    await auth.roleAdd({ name: "reader" });
    await auth.roleGrantPermission({
      name: "reader",
      perm: { permType: 0 /* READ */, key: new TextEncoder().encode("pub/"), rangeEnd: new TextEncoder().encode("pub0") },
    });
    await auth.userAdd({ name: "reader", password: READER_PASSWORD });
    await auth.userGrantRole({ user: "reader", role: "reader" });
    await auth.authEnable({});
  } finally {
    admin.close();
  }
});
after(async () => {
  await member?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("auth", () => {
  test("a long-running load survives token expiry: no call fails because a token expired", async () => {
    const etcd = client(member.endpoint, { auth: { username: "root", password: ROOT_PASSWORD } });
    const p = uniquePrefix("auth-load");
    const errors: unknown[] = [];
    let ok = 0;
    try {
      // Bursts separated by idle gaps longer than the 1 s token TTL, so each burst starts with an expired token.
      for (let burst = 0; burst < 3; burst++) {
        const calls = Array.from({ length: 25 }, (_, i) =>
          (i % 2 === 0 ? etcd.put(`${p}${burst}/${i}`, "v") : etcd.get(`${p}${burst}/${i - 1}`)).then(
            () => ok++,
            (e: unknown) => errors.push(e),
          ),
        );
        await Promise.all(calls);
        await sleep(2500);
      }
      assert.deepEqual(errors.map(String), []);
      assert.equal(ok, 75);
      assert.equal((await etcd.get(p, { prefix: true, countOnly: true })).count, 39n);
    } finally {
      etcd.close();
    }
  });

  test("a stream opened after the token expired is re-authenticated first", async () => {
    const etcd = client(member.endpoint, { auth: { username: "root", password: ROOT_PASSWORD } });
    const k = uniquePrefix("auth-stream") + "k";
    const ac = new AbortController();
    try {
      await etcd.put(k, "0"); // fetches and caches a token
      await sleep(2500); // the 1 s token has expired now (etcd sweeps expired tokens once a second)
      const enc = new TextEncoder();
      async function* requests() {
        yield { requestUnion: { case: "createRequest" as const, value: { key: enc.encode(k) } } };
        // Keep the request side open until the test ends.
        await new Promise((r) => ac.signal.addEventListener("abort", r));
      }
      const responses = etcd.raw.watch.watch(requests(), { signal: ac.signal });
      const events: string[] = [];
      const reader = (async () => {
        for await (const res of responses) {
          if (res.created) {
            await etcd.put(k, "1");
            continue;
          }
          for (const ev of res.events) events.push(new TextDecoder().decode(ev.kv?.value));
          if (events.length > 0) return;
        }
      })();
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no watch event within 5 s")), 5000));
      await Promise.race([reader, timeout]);
      assert.deepEqual(events, ["1"]);
    } finally {
      ac.abort();
      etcd.close();
    }
  });

  test("wrong password: AuthFailedError, and the password appears nowhere", async () => {
    const etcd = client(member.endpoint, { auth: { username: "root", password: "not-the-password" } });
    try {
      const e = await etcd.get("k").then(
        () => assert.fail("should fail"),
        (err: unknown) => err,
      );
      assert.ok(e instanceof AuthFailedError, String(e));
      assert.equal(e.endpoint, member.endpoint);
      assert.doesNotMatch(JSON.stringify({ m: e.message, s: e.stack }), /not-the-password/);
      assert.doesNotMatch(JSON.stringify(etcd.info()), /not-the-password/);
    } finally {
      etcd.close();
    }
  });

  test("permissions apply per user: a reader may read its prefix and gets PermissionDeniedError elsewhere", async () => {
    const root = client(member.endpoint, { auth: { username: "root", password: ROOT_PASSWORD } });
    const reader: Etcd = client(member.endpoint, { auth: { username: "reader", password: READER_PASSWORD } });
    try {
      await root.put("pub/x", "hello");
      assert.equal((await reader.get("pub/x")).text, "hello");
      await assert.rejects(reader.put("pub/x", "nope"), PermissionDeniedError);
      await assert.rejects(reader.get("private/x"), PermissionDeniedError);
      const info = JSON.stringify(reader.info());
      assert.doesNotMatch(info, new RegExp(READER_PASSWORD));
    } finally {
      root.close();
      reader.close();
    }
  });

  test("a client without credentials is refused with a typed error", async () => {
    const anon = client(member.endpoint);
    try {
      await assert.rejects(anon.put("pub/y", "v"), UserNameEmptyError);
    } finally {
      await anon.close();
    }
  });

  test("streams opened together share one fresh token instead of authenticating each", async () => {
    let authenticates = 0;
    const count: Interceptor = (next) => (req) => {
      if (req.method.name === "Authenticate") authenticates++;
      return next(req);
    };
    const etcd = client(member.endpoint, { auth: { username: "root", password: ROOT_PASSWORD }, interceptors: [count] });
    const ac = new AbortController();
    try {
      await etcd.get("x");
      const k = uniquePrefix("shared-token");
      for (let i = 0; i < 5; i++) {
        async function* requests() {
          yield { requestUnion: { case: "createRequest" as const, value: { key: new TextEncoder().encode(k + i) } } };
          await new Promise((r) => ac.signal.addEventListener("abort", r));
        }
        const it = etcd.raw.watch.watch(requests(), { signal: ac.signal })[Symbol.asyncIterator]();
        assert.equal((await it.next()).value?.created, true);
      }
      assert.ok(authenticates <= 2, `${authenticates} Authenticate calls for one call and five streams`);
    } finally {
      ac.abort();
      await etcd.close();
    }
  });

  test("auth enabled after the client found it off: the client authenticates then, and the call goes through", async () => {
    const fresh = await startEtcd();
    const etcd = client(fresh.endpoint, { auth: { username: "root", password: ROOT_PASSWORD } });
    try {
      const k = uniquePrefix("late-auth") + "k";
      await etcd.put(k, "1"); // "authentication is not enabled": calls go without a token
      const admin = client(fresh.endpoint);
      try {
        await admin.raw.auth.userAdd({ name: "root", password: ROOT_PASSWORD });
        await admin.raw.auth.userGrantRole({ user: "root", role: "root" });
        await admin.raw.auth.authEnable({});
      } finally {
        await admin.close();
      }
      await etcd.put(k, "2");
      assert.equal((await etcd.get(k)).text, "2");
    } finally {
      await etcd.close();
      await fresh.stop();
    }
  });

  test("no password and no token in any error, event, info() or status() output", async () => {
    const tokens = new Set<string>();
    const capture: Interceptor = (next) => (req) => {
      const t = req.header.get("token");
      if (t) tokens.add(t);
      return next(req);
    };
    const seen: unknown[] = [];
    const down = `127.0.0.1:${await freePort()}`;
    const root = client([member.endpoint, down], { auth: { username: "root", password: ROOT_PASSWORD }, interceptors: [capture], dialTimeoutMs: 500 });
    const reader = client(member.endpoint, { auth: { username: "reader", password: READER_PASSWORD }, interceptors: [capture] });
    const wrong = client(member.endpoint, { auth: { username: "root", password: ROOT_PASSWORD + "-wrong" } });
    for (const c of [root, reader, wrong]) {
      for (const name of ["connection", "pinned", "endpointFailed", "endpointRecovered", "endpointsChanged", "error"] as const) {
        c.events.on(name, (...args: unknown[]) => seen.push({ event: name, args }));
      }
    }
    try {
      await root.put("pub/secret-test", "v");
      await sleep(2500); // the 1 s token expires: the next call is refused once, then authenticated again
      await root.get("pub/secret-test");
      seen.push(await reader.put("pub/x", "nope").catch((e: unknown) => e));
      seen.push(await reader.get("private/x").catch((e: unknown) => e));
      seen.push(await wrong.get("k").catch((e: unknown) => e));
      seen.push(await root.get("k", { timeoutMs: 1 }).catch((e: unknown) => e));
      for (const c of [root, reader, wrong]) {
        seen.push(c.info(), await c.status({ timeoutMs: 1000 }));
        seen.push(formatEndpointTable(c.info()));
      }
      assert.ok(tokens.size >= 2, `tokens seen on the wire: ${tokens.size}`);
      assert.ok(seen.some((x) => x instanceof PermissionDeniedError) && seen.some((x) => x instanceof AuthFailedError));
      const text = seen.map((x) => inspect(x, { depth: 12, showHidden: true, maxStringLength: Infinity, maxArrayLength: Infinity })).join("\n");
      for (const secret of [ROOT_PASSWORD, READER_PASSWORD, ...tokens]) {
        assert.equal(text.includes(secret), false, `a secret (${secret.slice(0, 6)}...) appears in errors, events or status`);
      }
    } finally {
      await Promise.all([root.close(), reader.close(), wrong.close()]);
    }
  });
});
