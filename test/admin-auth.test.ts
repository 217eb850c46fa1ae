// The Auth API against real members: users, roles and prefix permissions are
// set up, auth is enabled, each user reads and writes only where granted,
// passwords change, permissions and roles are taken back, auth is disabled.
// Clients with credentials keep working across enable; clients without get
// typed errors. Certificate-only users authenticate by their TLS CN.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { makeCerts, startEtcd, type EtcdMember, type TestCerts } from "./harness/index.js";
import { client, uniquePrefix } from "./support.js";
import {
  AuthFailedError,
  EtcdError,
  InvalidOptionError,
  NotSupportedError,
  PermissionDeniedError,
  PermissionNotGrantedError,
  RoleExistsError,
  RoleNotGrantedError,
  UserNameEmptyError,
  UserNotFoundError,
  compareVersions,
  type Etcd,
} from "../src/index.js";

const ROOT_PW = "root-pw-7f3a";
const APP_PW = "app-pw-91c2";
const APP_PW2 = "app-pw-changed-55e0";
// bcrypt (cost 4) of "pre-hashed-password", made once with libxcrypt's crypt(3).
const HASHED_PW = "pre-hashed-password";
const BCRYPT_HASH = "$2b$04$3SkrVBoo1y98x1lnMTNDR.LQnfhoBajCeNPnlsSXeAIzz3fuxLOPm";

let member: EtcdMember;
let is35: boolean;

before(async () => {
  member = await startEtcd();
  is35 = compareVersions(member.version, "3.5") >= 0;
});
after(async () => {
  await member?.stop();
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => e,
  );
}

describe("auth administration", () => {
  test("users, roles and prefix permissions; enable; per-user access; password change; revoke; disable", async () => {
    const p = uniquePrefix("authflow");
    const root = client(member.endpoint, { auth: { username: "root", password: ROOT_PW } });
    // Made and used while auth is still off: it must keep working once auth is on.
    const app: Etcd = client(member.endpoint, { auth: { username: "app", password: APP_PW } });
    const anon = client(member.endpoint);
    const extra: Etcd[] = [];
    const withCreds = (username: string, password: string) => {
      const c = client(member.endpoint, { auth: { username, password } });
      extra.push(c);
      return c;
    };
    try {
      await app.put(`${p}app/before`, "1");
      await root.auth.addUser("root", ROOT_PW);
      await root.auth.grantRole("root", "root");
      await root.auth.addRole("app");
      await root.auth.grantPermission("app", { type: "readwrite", key: `${p}app/`, prefix: true });
      await root.auth.grantPermission("app", { type: "read", key: `${p}shared/config` });
      await root.auth.addUser("app", APP_PW);
      await root.auth.grantRole("app", "app");

      const role = await root.auth.getRole("app");
      assert.equal(role.name, "app");
      const perms = role.permissions.map((x) => ({ type: x.type, key: Buffer.from(x.key).toString(), end: Buffer.from(x.rangeEnd).toString() }));
      assert.deepEqual(
        perms.sort((a, b) => a.key.localeCompare(b.key)),
        [
          { type: "readwrite", key: `${p}app/`, end: `${p}app0` },
          { type: "read", key: `${p}shared/config`, end: "" },
        ].sort((a, b) => a.key.localeCompare(b.key)),
      );
      assert.deepEqual(await root.auth.getUser("app"), { name: "app", roles: ["app"] });
      assert.ok((await root.auth.listUsers()).includes("app"));
      assert.ok((await root.auth.listRoles()).includes("app"));
      await assert.rejects(root.auth.addRole("app"), RoleExistsError);
      await assert.rejects(root.auth.getUser("nobody"), UserNotFoundError);

      if (is35) {
        assert.equal((await root.auth.status()).enabled, false);
      }
      await root.auth.enable();

      if (is35) {
        const st = await root.auth.status();
        assert.equal(st.enabled, true);
        assert.ok(st.authRevision > 0n);
      } else {
        const e = await rejection(root.auth.status());
        assert.ok(e instanceof NotSupportedError, String(e));
        assert.equal(e.rawMessage, `AuthStatus needs etcd 3.5 or later; this server is ${member.version}`);
      }

      // Root, and the app client made before enable, keep working.
      await root.put(`${p}shared/config`, "blue");
      await app.put(`${p}app/x`, "1");
      assert.equal((await app.get(`${p}app/x`)).text, "1");
      assert.equal((await app.get(`${p}app/`, { prefix: true })).count, 2n);
      assert.equal((await app.get(`${p}shared/config`)).text, "blue");
      // Outside the grant: typed refusals, nothing written.
      await assert.rejects(app.put(`${p}shared/config`, "red"), PermissionDeniedError);
      await assert.rejects(app.get(`${p}other/x`), PermissionDeniedError);
      await assert.rejects(app.get(`${p}app0`), PermissionDeniedError, "the prefix ends before app0");
      assert.equal((await root.get(`${p}shared/config`)).text, "blue");
      // Without credentials: a typed error, not a generic one.
      await assert.rejects(anon.get(`${p}app/x`), UserNameEmptyError);
      await assert.rejects(anon.put(`${p}app/x`, "2"), UserNameEmptyError);

      // A changed password: the old one is refused, the new one works.
      await root.auth.changePassword("app", APP_PW2);
      await assert.rejects(withCreds("app", APP_PW).get(`${p}app/x`), AuthFailedError);
      assert.equal((await withCreds("app", APP_PW2).get(`${p}app/x`)).text, "1");

      // Pre-hashed passwords: 3.5 stores the hash; 3.4 would drop it, so it is refused before sending.
      if (is35) {
        await root.auth.addUser("hashed", { hashedPassword: BCRYPT_HASH });
        await root.auth.grantRole("hashed", "app");
        assert.equal((await withCreds("hashed", HASHED_PW).get(`${p}app/x`)).text, "1");
        // etcd 3.5 turns a UserAdd carrying only a hash into an empty password; ours must not allow that.
        await assert.rejects(anon.raw.auth.authenticate({ name: "hashed", password: "" }), AuthFailedError);
        await root.auth.changePassword("app", { hashedPassword: BCRYPT_HASH });
        assert.equal((await withCreds("app", HASHED_PW).get(`${p}app/x`)).text, "1");
        await root.auth.changePassword("app", APP_PW2);
      } else {
        const e = await rejection(root.auth.addUser("hashed", { hashedPassword: BCRYPT_HASH }));
        assert.ok(e instanceof NotSupportedError, String(e));
        assert.equal(e.rawMessage, `hashedPassword needs etcd 3.5 or later; this server is ${member.version}`);
        await assert.rejects(root.auth.getUser("hashed"), UserNotFoundError, "nothing was sent");
        await assert.rejects(root.auth.changePassword("app", { hashedPassword: BCRYPT_HASH }), NotSupportedError);
        assert.equal((await withCreds("app", APP_PW2).get(`${p}app/x`)).text, "1", "the password is unchanged");
      }

      // Taking the prefix back: the same client is refused at once (its token's auth revision is stale, it re-authenticates).
      const app2 = withCreds("app", APP_PW2);
      await app2.put(`${p}app/y`, "1");
      await root.auth.revokePermission("app", { key: `${p}app/`, prefix: true });
      await assert.rejects(app2.put(`${p}app/y`, "2"), PermissionDeniedError);
      assert.equal((await app2.get(`${p}shared/config`)).text, "blue", "the other grant stays");
      await assert.rejects(root.auth.revokePermission("app", { key: `${p}app/`, prefix: true }), PermissionNotGrantedError);
      await root.auth.revokeRole("app", "app");
      await assert.rejects(app2.get(`${p}shared/config`), PermissionDeniedError);
      await assert.rejects(root.auth.revokeRole("app", "app"), RoleNotGrantedError);
      await root.auth.deleteUser("app");
      await root.auth.deleteRole("app");
      assert.ok(!(await root.auth.listUsers()).includes("app"));

      await root.auth.disable();
      if (is35) assert.equal((await root.auth.status()).enabled, false);
      // With auth off, the anonymous client works again.
      await anon.put(`${p}after`, "ok");
      assert.equal((await anon.get(`${p}after`)).text, "ok");
    } finally {
      // Leave the member without auth for the other tests, whatever happened.
      await root.auth.disable().catch(() => undefined);
      for (const c of [root, app, anon, ...extra]) c.close();
    }
  });

  test("bad input is refused before sending, and secrets stay out of messages", async () => {
    const etcd = client(member.endpoint);
    try {
      const cases: Array<[string, Promise<unknown>]> = [
        ["empty user", etcd.auth.addUser("", "pw")],
        ["empty password", etcd.auth.addUser("u1", "")],
        ["noPassword false", etcd.auth.addUser("u1", { noPassword: false as true })],
        ["empty hash", etcd.auth.addUser("u1", { hashedPassword: "" })],
        ["not a bcrypt hash", etcd.auth.addUser("u1", { hashedPassword: "secret-in-clear" })],
        ["not a bcrypt hash (change)", etcd.auth.changePassword("u1", { hashedPassword: "md5:abc" })],
        ["no credentials", etcd.auth.addUser("u1", {} as { password: string })],
        ["bad type", etcd.auth.grantPermission("r1", { type: "all" as "read", key: "k" })],
        ["two selectors", etcd.auth.grantPermission("r1", { type: "read", key: "k", prefix: true, fromKey: true })],
        ["empty key", etcd.auth.grantPermission("r1", { type: "read", key: "" })],
        ["empty role", etcd.auth.addRole("")],
        ["empty new password", etcd.auth.changePassword("u1", "")],
      ];
      for (const [what, call] of cases) {
        const e = await rejection(call);
        assert.ok(e instanceof EtcdError && (e instanceof InvalidOptionError || e.name === "InvalidKeyError"), `${what}: ${String(e)}`);
      }
      await assert.rejects(etcd.auth.getUser("u1"), UserNotFoundError, "none of them created anything");
      const e = await rejection(etcd.auth.addUser("u2", "")); // the empty secret is not echoed; a real one never is either
      assert.doesNotMatch((e as Error).message, /pw/);
    } finally {
      etcd.close();
    }
  });
});

describe("certificate-only users", () => {
  let certs: TestCerts;
  let mtls: EtcdMember;
  before(async () => {
    certs = makeCerts();
    mtls = await startEtcd({ tls: certs, clientCertAuth: true });
  });
  after(async () => {
    await mtls?.stop();
  });

  test("a user without a password is authenticated by its certificate's CN, and cannot log in with a password", async () => {
    const tls = { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
    const p = uniquePrefix("cert");
    // Root needs a password to enable auth; the client certificate's CN is "client".
    const root = client(mtls.clientUrl, { tls, auth: { username: "root", password: ROOT_PW } });
    const byCert = client(mtls.clientUrl, { tls });
    const byPassword = client(mtls.clientUrl, { tls, auth: { username: "client", password: "any-password" } });
    try {
      await root.auth.addUser("root", ROOT_PW);
      await root.auth.grantRole("root", "root");
      await root.auth.addRole("certs");
      await root.auth.grantPermission("certs", { type: "readwrite", key: `${p}`, prefix: true });
      await root.auth.addUser("client", { noPassword: true });
      await root.auth.grantRole("client", "certs");
      await root.auth.enable();
      await byCert.put(`${p}k`, "by-cert");
      assert.equal((await byCert.get(`${p}k`)).text, "by-cert");
      await assert.rejects(byCert.put("elsewhere", "x"), PermissionDeniedError);
      await assert.rejects(byPassword.get(`${p}k`), AuthFailedError);
    } finally {
      await root.auth.disable().catch(() => undefined);
      root.close();
      byCert.close();
      byPassword.close();
    }
  });
});
