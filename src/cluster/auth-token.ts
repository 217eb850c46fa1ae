/**
 * Username/password authentication: one token shared by every call, fetched
 * on first use, fetched again when the server rejects it. Concurrent calls
 * share one in-flight Authenticate. The password stays in this closure; it is
 * never put in errors, logs or status output.
 * @module
 */
import type { DescMethodStreaming, DescMethodUnary } from "@bufbuild/protobuf";
import type { TokenSource } from "./cluster-transport.js";
import { AuthNotEnabledError, AuthRevisionOldError, InvalidAuthTokenError, UserNameEmptyError, type EtcdError } from "../errors.js";

/** Credentials for {@link EtcdOptions.auth}. */
export interface AuthCredentials {
  username: string;
  password: string;
}

/** Keeps the auth token of one client. */
export class AuthTokenSource implements TokenSource {
  private current: string | undefined;
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

  fresh(): Promise<string> {
    // Join a fetch already under way (it is fresh too); otherwise start one.
    if (this.inflight === undefined) this.current = undefined;
    return Promise.resolve(this.token());
  }

  invalidate(stale: string): void {
    if (this.current === stale) this.current = undefined;
  }

  isTokenError(err: EtcdError): boolean {
    // "user name is empty": the call went without a token, because auth was off when
    // the client last asked and has been enabled since; authenticate now.
    return err instanceof InvalidAuthTokenError || err instanceof AuthRevisionOldError || err instanceof UserNameEmptyError;
  }

  exempt(method: DescMethodUnary | DescMethodStreaming): boolean {
    return method.name === "Authenticate" && method.parent.typeName === "etcdserverpb.Auth";
  }

  /** Forgets the token (after the client changed users or was closed). */
  clear(): void {
    this.current = undefined;
  }
}
