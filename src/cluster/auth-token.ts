/**
 * Username/password authentication: one token shared by every call, fetched
 * on first use, fetched again when the server rejects it. Concurrent calls
 * share one in-flight Authenticate. The password stays in this closure; it is
 * never put in errors, logs or status output.
 *
 * A server without auth answers "authentication is not enabled": calls then go
 * without a token, until one is refused with "user name is empty" (auth was
 * enabled since), which authenticates again.
 * @module
 */
import type { DescMethodStreaming, DescMethodUnary } from "@bufbuild/protobuf";
import type { TokenSource } from "./cluster-transport.js";
import { AuthNotEnabledError, AuthRevisionOldError, InvalidAuthTokenError, UserNameEmptyError, type EtcdError } from "../errors.js";

/** Credentials for {@link EtcdOptions.auth}. */
export interface AuthCredentials {
  /** The etcd user name. */
  username: string;
  /** Its password; kept out of errors, events and the status view. */
  password: string;
}

/**
 * How recently a token must have been fetched to open a stream with it. Below
 * the shortest TTL etcd allows (1 s), so it cannot have expired; long enough
 * that streams opened together share one Authenticate (a bcrypt check and a
 * raft proposal on the server).
 */
export const FRESH_TOKEN_MS = 500;

/** Keeps the auth token of one client. */
export class AuthTokenSource implements TokenSource {
  private current: string | undefined;
  private fetchedAt = 0;
  private inflight: Promise<string> | undefined;

  /**
   * @param authenticate Calls `Auth.Authenticate` and returns the token. It
   * receives no signal: one caller's abort must not fail the others waiting on it.
   */
  constructor(private readonly authenticate: () => Promise<string>) {}

  token(): string | Promise<string> {
    if (this.current !== undefined) return this.current;
    return (this.inflight ??= this.authenticate().then(
      (t) => {
        this.inflight = undefined;
        this.current = t;
        this.fetchedAt = performance.now();
        return t;
      },
      (e: unknown) => {
        this.inflight = undefined;
        // A server without auth needs no token: send calls without one.
        if (e instanceof AuthNotEnabledError) {
          this.current = "";
          return "";
        }
        throw e;
      },
    ));
  }

  fresh(): string | Promise<string> {
    // A token fetched a moment ago (or one being fetched now) is fresh enough; otherwise fetch one.
    if (this.inflight === undefined && this.current !== "" && performance.now() - this.fetchedAt > FRESH_TOKEN_MS) this.current = undefined;
    return this.token();
  }

  invalidate(stale: string): void {
    if (this.current === stale) this.current = undefined;
  }

  isTokenError(err: EtcdError, token: string): boolean {
    // "user name is empty" for a call sent without a token: auth was enabled after we learned it was off.
    return err instanceof InvalidAuthTokenError || err instanceof AuthRevisionOldError || (token === "" && err instanceof UserNameEmptyError);
  }

  exempt(method: DescMethodUnary | DescMethodStreaming): boolean {
    return method.name === "Authenticate" && method.parent.typeName === "etcdserverpb.Auth";
  }

  /** Forgets the token (after the client changed users or was closed). */
  clear(): void {
    this.current = undefined;
  }
}
