/**
 * Authentication administration: turning auth on and off, users, roles and
 * the key permissions roles grant. Every call needs the root role once auth
 * is on (give the client `auth: { username: "root", ... }`).
 * @module
 */
import { randomBytes } from "node:crypto";
import { Permission_Type, type Permission } from "../../gen/etcd/api/authpb/auth_pb.js";
import { toConnectOptions, type CallOptions } from "../call-options.js";
import { InvalidOptionError } from "../errors.js";
import type { Bytes } from "../kv/bytes.js";
import { resolveRange, type RangeSelector } from "../kv/key-range.js";
import type { AdminContext } from "./endpoint-target.js";
import { ETCD_3_5, ServerVersions } from "./server-version.js";

/** Access a role grants on a key or range. */
export type PermissionType = "read" | "write" | "readwrite";

/** A permission held by a role: `[key, rangeEnd)`, or the single `key` when `rangeEnd` is empty. */
export interface RolePermission {
  /** What the role may do on those keys. */
  type: PermissionType;
  /** The first key covered (the only one when `rangeEnd` is empty). */
  key: Uint8Array;
  /** Empty for a single key; `"\0"` (one zero byte) for every key from `key` on. */
  rangeEnd: Uint8Array;
}

/** The keys a permission covers: a key, optionally widened like a read (`prefix`, `fromKey`, `rangeEnd`). */
export interface PermissionRange extends RangeSelector {
  /** The key, or the start of the range, that the permission covers. */
  key: Bytes;
}

/** A permission to grant: its type and the keys it covers. */
export interface PermissionGrant extends PermissionRange {
  /** What the role may do: `read`, `write` or `readwrite`. */
  type: PermissionType;
}

/**
 * How a new user proves who it is: a password (hashed by the server with
 * bcrypt), a bcrypt hash made by the caller (`$2a$`/`$2b$`, etcd 3.5+: the
 * password itself never travels), or none at all for a user that
 * authenticates with a TLS client certificate whose common name is the user name.
 */
export type UserCredentials =
  | {
      /** The password; the server stores its bcrypt hash. */
      password: string;
    }
  | {
      /** A bcrypt hash (`$2a$`/`$2b$`) of the password (etcd 3.5+). */
      hashedPassword: string;
    }
  | {
      /** No password: the user authenticates with a TLS client certificate. */
      noPassword: true;
    };

/** A user and the roles granted to it. */
export interface UserInfo {
  /** The user's name. */
  name: string;
  /** Roles granted to the user. */
  roles: string[];
}

/** A role and its permissions. */
export interface RoleInfo {
  /** The role's name. */
  name: string;
  /** The key ranges the role may read or write. */
  permissions: RolePermission[];
}

/** Whether auth is on, and the auth store's revision (which changes with every auth change). */
export interface AuthStatus {
  /** True while authentication is on. */
  enabled: boolean;
  /** Revision of the auth store: it grows with every user, role or permission change. */
  authRevision: bigint;
}

const TYPES: Record<PermissionType, Permission_Type> = {
  read: Permission_Type.READ,
  write: Permission_Type.WRITE,
  readwrite: Permission_Type.READWRITE,
};

/**
 * The Auth API, as `etcd.auth`.
 *
 * ```ts
 * await etcd.auth.addUser("root", "root-password");
 * await etcd.auth.grantRole("root", "root");
 * await etcd.auth.addRole("app");
 * await etcd.auth.grantPermission("app", { type: "readwrite", key: "app/", prefix: true });
 * await etcd.auth.addUser("app", "app-password");
 * await etcd.auth.grantRole("app", "app");
 * await etcd.auth.enable();
 * ```
 */
export class Auth {
  private readonly versions: ServerVersions;

  /** @internal */
  constructor(
    private readonly ctx: AdminContext,
    versions?: ServerVersions,
  ) {
    this.versions = versions ?? new ServerVersions(ctx);
  }

  /**
   * Turns authentication on. The `root` user must exist and hold the `root`
   * role. Clients without credentials are refused from then on; clients with
   * credentials keep working (their token is fetched on their next call).
   */
  async enable(options?: CallOptions): Promise<void> {
    await this.ctx.raw.auth.authEnable({}, toConnectOptions(options));
  }

  /** Turns authentication off (needs the root role while it is on). */
  async disable(options?: CallOptions): Promise<void> {
    await this.ctx.raw.auth.authDisable({}, toConnectOptions(options));
  }

  /**
   * Whether auth is enabled, and the auth revision.
   *
   * @throws NotSupportedError on etcd 3.4, which has no AuthStatus.
   */
  async status(options?: CallOptions): Promise<AuthStatus> {
    const res = await this.versions.guard("AuthStatus", ETCD_3_5, () => this.ctx.raw.auth.authStatus({}, toConnectOptions(options)), options);
    return { enabled: res.enabled, authRevision: res.authRevision };
  }

  /**
   * Creates a user. A string is a password; `{ hashedPassword }` is a bcrypt
   * hash (etcd 3.5+); `{ noPassword: true }` makes a user that can only
   * authenticate with a TLS client certificate.
   *
   * With a hash the user is created in two steps (etcd 3.5 would otherwise
   * store the hash of an empty password): first with a random password
   * nobody learns, then given the hash. If the second step fails the user is
   * deleted again, as far as the server lets us.
   *
   * @throws NotSupportedError for `hashedPassword` when a member runs etcd
   * older than 3.5 (it would drop the hash silently and store no password);
   * nothing is sent then.
   */
  async addUser(name: string, credentials: string | UserCredentials, options?: CallOptions): Promise<void> {
    checkName("user", name);
    const c = typeof credentials === "string" ? { password: credentials } : credentials;
    if ("hashedPassword" in c) {
      const wire = wireHash(c.hashedPassword);
      await this.versions.require("hashedPassword", ETCD_3_5, options);
      // etcd 3.5's UserAdd replaces the hash with one of the (empty) password field: a user
      // added with only a hash could log in with an empty password. So the user is made with a
      // random password nobody learns, then given the hash, which UserChangePassword keeps.
      await this.ctx.raw.auth.userAdd({ name, password: randomBytes(32).toString("base64") }, toConnectOptions(options));
      try {
        await this.ctx.raw.auth.userChangePassword({ name, hashedPassword: wire }, toConnectOptions(options));
      } catch (e) {
        // Do not leave a half-made user behind (best effort: the error that matters is the first).
        await this.ctx.raw.auth.userDelete({ name }, toConnectOptions(options)).catch(() => undefined);
        throw e;
      }
    } else if ("noPassword" in c) {
      if (c.noPassword !== true) throw new InvalidOptionError("noPassword must be true (or give a password)");
      await this.ctx.raw.auth.userAdd({ name, options: { noPassword: true } }, toConnectOptions(options));
    } else if ("password" in c) {
      checkSecret("password", c.password);
      await this.ctx.raw.auth.userAdd({ name, password: c.password }, toConnectOptions(options));
    } else {
      throw new InvalidOptionError("credentials: give a password, { hashedPassword } or { noPassword: true }");
    }
  }

  /** A user and its roles. @throws UserNotFoundError */
  async getUser(name: string, options?: CallOptions): Promise<UserInfo> {
    checkName("user", name);
    const res = await this.ctx.raw.auth.userGet({ name }, toConnectOptions(options));
    return { name, roles: res.roles };
  }

  /** Names of all users. */
  async listUsers(options?: CallOptions): Promise<string[]> {
    return (await this.ctx.raw.auth.userList({}, toConnectOptions(options))).users;
  }

  /** Deletes a user. @throws UserNotFoundError */
  async deleteUser(name: string, options?: CallOptions): Promise<void> {
    checkName("user", name);
    await this.ctx.raw.auth.userDelete({ name }, toConnectOptions(options));
  }

  /**
   * Sets a user's password (a string), or its bcrypt hash (`{ hashedPassword }`,
   * etcd 3.5+). Tokens issued before stay valid until they expire.
   *
   * @throws NotSupportedError for `hashedPassword` when a member runs etcd older than 3.5.
   */
  async changePassword(name: string, password: string | { hashedPassword: string }, options?: CallOptions): Promise<void> {
    checkName("user", name);
    if (typeof password === "string") {
      checkSecret("password", password);
      await this.ctx.raw.auth.userChangePassword({ name, password }, toConnectOptions(options));
      return;
    }
    const wire = wireHash(password?.hashedPassword);
    await this.versions.require("hashedPassword", ETCD_3_5, options);
    await this.ctx.raw.auth.userChangePassword({ name, hashedPassword: wire }, toConnectOptions(options));
  }

  /** Grants a role to a user. */
  async grantRole(user: string, role: string, options?: CallOptions): Promise<void> {
    checkName("user", user);
    checkName("role", role);
    await this.ctx.raw.auth.userGrantRole({ user, role }, toConnectOptions(options));
  }

  /** Takes a role away from a user. @throws RoleNotGrantedError */
  async revokeRole(user: string, role: string, options?: CallOptions): Promise<void> {
    checkName("user", user);
    checkName("role", role);
    await this.ctx.raw.auth.userRevokeRole({ name: user, role }, toConnectOptions(options));
  }

  /** Creates a role with no permissions. */
  async addRole(name: string, options?: CallOptions): Promise<void> {
    checkName("role", name);
    await this.ctx.raw.auth.roleAdd({ name }, toConnectOptions(options));
  }

  /** A role and its permissions. @throws RoleNotFoundError */
  async getRole(name: string, options?: CallOptions): Promise<RoleInfo> {
    checkName("role", name);
    const res = await this.ctx.raw.auth.roleGet({ role: name }, toConnectOptions(options));
    return { name, permissions: res.perm.map(fromPermission) };
  }

  /** Names of all roles. */
  async listRoles(options?: CallOptions): Promise<string[]> {
    return (await this.ctx.raw.auth.roleList({}, toConnectOptions(options))).roles;
  }

  /** Deletes a role (users lose it). @throws RoleNotFoundError */
  async deleteRole(name: string, options?: CallOptions): Promise<void> {
    checkName("role", name);
    await this.ctx.raw.auth.roleDelete({ role: name }, toConnectOptions(options));
  }

  /**
   * Grants a role access to one key, a range (`rangeEnd`), a prefix
   * (`prefix: true`) or every key from `key` on (`fromKey: true`).
   *
   * ```ts
   * await etcd.auth.grantPermission("reader", { type: "read", key: "config/", prefix: true });
   * ```
   */
  async grantPermission(role: string, permission: PermissionGrant, options?: CallOptions): Promise<void> {
    checkName("role", role);
    if (typeof permission !== "object" || permission === null) throw new InvalidOptionError("permission: give { type, key, ... }");
    const permType = TYPES[permission.type];
    if (permType === undefined) {
      throw new InvalidOptionError(`permission type must be one of ${Object.keys(TYPES).join(", ")}, got ${String(permission.type)}`);
    }
    const { key, rangeEnd } = resolveRange(permission.key, permission);
    await this.ctx.raw.auth.roleGrantPermission({ name: role, perm: { permType, key, rangeEnd } }, toConnectOptions(options));
  }

  /**
   * Takes back a permission, named by the same key and range it was granted
   * with (its type does not matter).
   *
   * ```ts
   * await etcd.auth.revokePermission("reader", { key: "config/", prefix: true });
   * ```
   * @throws PermissionNotGrantedError
   */
  async revokePermission(role: string, permission: PermissionRange, options?: CallOptions): Promise<void> {
    checkName("role", role);
    if (typeof permission !== "object" || permission === null) throw new InvalidOptionError("permission: give { key, ... }");
    const r = resolveRange(permission.key, permission);
    await this.ctx.raw.auth.roleRevokePermission({ role, key: r.key, rangeEnd: r.rangeEnd }, toConnectOptions(options));
  }
}

function fromPermission(p: Permission): RolePermission {
  const type = p.permType === Permission_Type.READ ? "read" : p.permType === Permission_Type.WRITE ? "write" : "readwrite";
  return { type, key: p.key, rangeEnd: p.rangeEnd };
}

/**
 * A bcrypt hash as etcd stores it: the server keeps base64 of the hash text
 * (what it makes itself from a plain password), so that is what goes on the wire.
 */
function wireHash(hash: unknown): string {
  if (typeof hash !== "string" || !/^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
    throw new InvalidOptionError('hashedPassword must be a bcrypt hash such as "$2b$10$..." (60 characters)');
  }
  return Buffer.from(hash, "utf8").toString("base64");
}

function checkName(what: "user" | "role", name: unknown): void {
  if (typeof name !== "string" || name === "") throw new InvalidOptionError(`${what} name must be a non-empty string`);
}

function checkSecret(what: string, value: unknown): void {
  // The value itself never goes into the message: it is a secret.
  if (typeof value !== "string" || value === "") {
    throw new InvalidOptionError(`${what} must be a non-empty string${what === "password" ? " (use { noPassword: true } for a certificate-only user)" : ""}`);
  }
}
