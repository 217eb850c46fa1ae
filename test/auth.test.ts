// Auth against a real member with simple tokens that expire after one second:
// tokens are fetched on first use, shared, renewed when rejected, and never
// leak into errors or the status view.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startEtcd, type EtcdMember } from "./harness/index.js";
import { client, uniquePrefix } from "./support.js";
import { AuthFailedError, type Etcd, PermissionDeniedError, EtcdError } from "../src/index.js";

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
      await assert.rejects(anon.put("pub/y", "v"), (e: unknown) => e instanceof EtcdError && e.code !== undefined && /user name is empty|permission denied|invalid auth token/.test(e.rawMessage));
    } finally {
      anon.close();
    }
  });
});
