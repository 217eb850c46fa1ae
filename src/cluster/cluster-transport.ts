/**
 * The transport the client's typed connect clients use: it sends each call to
 * the pinned endpoint through that endpoint's own transport, adds the auth
 * token and `hasleader` metadata, applies the default deadline, turns every
 * failure into a typed {@link EtcdError}, and retries where that is safe
 * (see `retry.ts`).
 * @module
 */
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { ContextValues, StreamResponse, Transport, UnaryResponse } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { requireLeaderKey, retryWritesKey } from "../call-options.js";
import type { EndpointPool, EndpointSlot } from "./endpoint-pool.js";
import {
  AbortedError,
  ClientClosedError,
  DeadlineExceededError,
  EndpointUnavailableError,
  EtcdError,
  LearnerNotSupportedError,
  NoEndpointAvailableError,
  OutcomeUnknownError,
  toEtcdError,
} from "../errors.js";
import { isConnectionLost, isUnsent } from "../transport/failure.js";
import { classifyFailure, isRepeatable, mayHaveBeenApplied, methodName, retryDelayMs } from "./retry.js";

/** Supplies the auth token for calls; implemented by the auth session. */
export interface TokenSource {
  /** The current token, or a promise while one is being fetched. */
  token(signal: AbortSignal | undefined): string | Promise<string>;
  /** Drops `stale` so the next {@link TokenSource.token} authenticates again. */
  invalidate(stale: string): void;
  /**
   * A token fetched now, not a cached one (shared with concurrent callers):
   * streams live long and cannot be retried with a new token once open.
   */
  fresh(signal: AbortSignal | undefined): Promise<string>;
  /** True when `err` says the token was rejected (expired, or the auth store moved on). */
  isTokenError(err: EtcdError): boolean;
  /** True for calls that must go without a token (Authenticate itself). */
  exempt(method: DescMethodUnary | DescMethodStreaming): boolean;
}

/** Behaviour of a {@link ClusterTransport}. */
export interface ClusterTransportOptions {
  /** Deadline of a unary call when the caller gave none, retries included. */
  requestTimeoutMs: number;
  /** Retry writes that may have reached the server (see `CallOptions.retryWrites`). */
  retryWrites: boolean;
  /** Send `hasleader: true` on every call. */
  requireLeader: boolean;
}

/** The client-wide transport over an {@link EndpointPool}. */
export class ClusterTransport implements Transport {
  /** Set by the client after authentication is configured. */
  tokens: TokenSource | undefined;
  private closed = false;

  constructor(
    readonly pool: EndpointPool,
    private readonly options: ClusterTransportOptions,
  ) {}

  /** Fails every later call with {@link ClientClosedError}. */
  close(): void {
    this.closed = true;
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    if (this.closed) return Promise.reject(new ClientClosedError());
    if (this.tokens !== undefined && !this.tokens.exempt(method)) {
      return this.unaryWithRetries(method, signal, timeoutMs, header, input, contextValues);
    }
    // Hot path: one attempt on a healthy pinned endpoint, no extra promise layers unless it fails.
    const budget = timeoutMs ?? this.options.requestTimeoutMs;
    const start = Date.now();
    const slot = this.pool.pick();
    const h = this.headers(header, contextValues, undefined);
    return slot.transport.unary(method, signal, budget, h, input, contextValues).then(
      (res) => {
        if (slot.failures !== 0) this.pool.succeeded(slot);
        return res;
      },
      (e: unknown) =>
        this.afterFailure(method, signal, budget, start, header, input, contextValues, slot, e, new Map(), 1, undefined),
    );
  }

  private async unaryWithRetries<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues: ContextValues | undefined,
  ): Promise<UnaryResponse<I, O>> {
    const budget = timeoutMs ?? this.options.requestTimeoutMs;
    const start = Date.now();
    const token = await this.tokenFor(signal, budget, start);
    const slot = this.pool.pick();
    try {
      const res = await slot.transport.unary(method, signal, budget - (Date.now() - start), this.headers(header, contextValues, token), input, contextValues);
      if (slot.failures !== 0) this.pool.succeeded(slot);
      return res;
    } catch (e) {
      return this.afterFailure(method, signal, budget, start, header, input, contextValues, slot, e, new Map(), 1, token);
    }
  }

  /** Decides what a failed attempt leads to: an error for the caller, or another attempt. */
  private async afterFailure<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    budget: number,
    start: number,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues: ContextValues | undefined,
    failedSlot: EndpointSlot,
    failure: unknown,
    tried: Map<EndpointSlot, EtcdError>,
    attempt: number,
    token: string | undefined,
  ): Promise<UnaryResponse<I, O>> {
    let slot = failedSlot;
    let e = failure;
    let tokenRetried = false;
    for (;;) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      if (this.closed) throw new ClientClosedError();
      const err = toEtcdError(e, slot.endpoint.address);
      if (err.code === Code.DeadlineExceeded && !(err.rawMessage ?? "").startsWith("etcdserver:")) {
        throw new DeadlineExceededError(budget, lastErrors(tried), slot.endpoint.address);
      }
      if (token !== undefined && this.tokens !== undefined && !tokenRetried && this.tokens.isTokenError(err)) {
        // An expired token or a stale auth revision: fetch a new token and try once more.
        tokenRetried = true;
        this.tokens.invalidate(token);
        token = await this.tokenFor(signal, budget, start);
      } else {
        const cls = classifyFailure(e);
        if (cls.endpointFailed) this.pool.failed(slot, err);
        const repeatable = isRepeatable(method, input) || (contextValues?.get(retryWritesKey) ?? this.options.retryWrites);
        if (!(cls.safeToResend || (repeatable && cls.retryableIfRepeatable))) {
          // A lost connection, or a member that gave up while the proposal was in flight: the write may still be applied.
          if (isConnectionLost(e) || mayHaveBeenApplied(err)) {
            throw new OutcomeUnknownError(methodName(method), err);
          }
          throw err;
        }
        tried.set(slot, err);
        // TLS or protocol mismatches, and learners refusing the call, do not go away by
        // waiting: once every endpoint has failed that way the caller hears at once.
        if (tried.size >= this.pool.slots.length && [...tried.values()].every(isDefinitiveFailure)) {
          throw tried.size > 1 ? new NoEndpointAvailableError([...tried.values()]) : err;
        }
        const remaining = budget - (Date.now() - start);
        const delay = tried.size >= this.pool.slots.length ? retryDelayMs(attempt) : 0;
        if (remaining - delay <= 0) {
          throw tried.size > 1 ? new NoEndpointAvailableError([...tried.values()]) : err;
        }
        if (delay > 0) await sleep(delay, signal);
        slot = this.pool.pick(new Set(tried.keys()));
        // Every endpoint failed this call, and the best one is still backing off: wait for it, within the deadline.
        const wait = slot.retryAt - Date.now();
        if (wait > 0 && tried.has(slot)) {
          if (wait >= budget - (Date.now() - start)) {
            throw new NoEndpointAvailableError([...tried.values()]);
          }
          await sleep(wait, signal);
        }
      }
      attempt++;
      const remaining = budget - (Date.now() - start);
      if (remaining <= 0) throw new DeadlineExceededError(budget, lastErrors(tried), slot.endpoint.address);
      try {
        const res = await slot.transport.unary(method, signal, remaining, this.headers(header, contextValues, token), input, contextValues);
        if (slot.failures !== 0) this.pool.succeeded(slot);
        return res;
      } catch (next) {
        e = next;
      }
    }
  }

  async stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues?: ContextValues,
  ): Promise<StreamResponse<I, O>> {
    if (this.closed) throw new ClientClosedError();
    const tried = new Map<EndpointSlot, EtcdError>();
    const start = Date.now();
    const budget = timeoutMs ?? this.options.requestTimeoutMs;
    for (;;) {
      // Re-authenticate before each stream opens: a cached token may expire while the stream lives.
      const token =
        this.tokens !== undefined && !this.tokens.exempt(method)
          ? await this.withinBudget(this.tokens.fresh(signal), budget, start)
          : undefined;
      const slot = this.pool.pick(new Set(tried.keys()));
      try {
        const res = await slot.transport.stream(method, signal, timeoutMs, this.headers(header, contextValues, token), input, contextValues);
        if (slot.failures !== 0) this.pool.succeeded(slot);
        return { ...res, header: res.header, trailer: res.trailer, message: this.mapStreamErrors(res.message, slot, signal) };
      } catch (e) {
        if (signal?.aborted) throw new AbortedError(signal.reason);
        const err = toEtcdError(e, slot.endpoint.address);
        const cls = classifyFailure(e);
        if (cls.endpointFailed) this.pool.failed(slot, err);
        // Only a stream that never started may be opened elsewhere: its input was not consumed.
        if (!isUnsent(e) || Date.now() - start >= budget || tried.size >= this.pool.slots.length) {
          throw tried.size > 0 && isUnsent(e) ? new NoEndpointAvailableError([...tried.values(), err]) : err;
        }
        tried.set(slot, err);
      }
    }
  }

  private async *mapStreamErrors<T>(source: AsyncIterable<T>, slot: EndpointSlot, signal: AbortSignal | undefined): AsyncIterable<T> {
    const it = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        let r: IteratorResult<T>;
        try {
          r = await it.next();
        } catch (e) {
          if (signal?.aborted) throw new AbortedError(signal.reason);
          const err = toEtcdError(e, slot.endpoint.address);
          if (classifyFailure(e).endpointFailed) this.pool.failed(slot, err);
          throw err;
        }
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }

  /**
   * One attempt on a given endpoint, bypassing the pin: metadata, deadline and
   * error mapping, but no failover (for per-member calls: status, defragment,
   * hash, move leader). A rejected auth token is renewed and the call sent
   * once more, as on the pinned path. `timeoutMs` defaults to the client's
   * request timeout.
   */
  async unaryOn<I extends DescMessage, O extends DescMessage>(
    slot: EndpointSlot,
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<MessageShape<O>> {
    if (this.closed) throw new ClientClosedError();
    const budget = timeoutMs ?? this.options.requestTimeoutMs;
    const start = Date.now();
    const withToken = this.tokens !== undefined && !this.tokens.exempt(method);
    for (let attempt = 1; ; attempt++) {
      let token: string | undefined;
      try {
        token = withToken ? await this.tokenFor(signal, budget, start) : undefined;
        const remaining = budget - (Date.now() - start);
        if (remaining <= 0) throw new DeadlineExceededError(budget, [], slot.endpoint.address);
        const res = await slot.transport.unary(method, signal, remaining, this.headers(undefined, undefined, token), input);
        if (slot.failures !== 0) this.pool.succeeded(slot);
        return res.message;
      } catch (e) {
        if (signal?.aborted) throw new AbortedError(signal.reason);
        if (this.closed) throw new ClientClosedError();
        const err = toEtcdError(e, slot.endpoint.address);
        if (err.code === Code.DeadlineExceeded && !(err.rawMessage ?? "").startsWith("etcdserver:")) {
          throw new DeadlineExceededError(budget, [], slot.endpoint.address);
        }
        if (attempt === 1 && token !== undefined && this.tokens!.isTokenError(err)) {
          this.tokens!.invalidate(token);
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * A server stream on a given endpoint, bypassing the pin (for a snapshot of
   * one member): the same token, `hasleader`, deadline and error mapping as
   * {@link ClusterTransport.stream}, but never moved to another member. Without
   * `timeoutMs` the stream has no deadline; `signal` ends it.
   */
  async streamOn<I extends DescMessage, O extends DescMessage>(
    slot: EndpointSlot,
    method: DescMethodStreaming<I, O>,
    input: AsyncIterable<MessageInitShape<I>>,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<AsyncIterable<MessageShape<O>>> {
    if (this.closed) throw new ClientClosedError();
    const start = Date.now();
    try {
      const token =
        this.tokens !== undefined && !this.tokens.exempt(method)
          ? await this.withinBudget(this.tokens.fresh(signal), timeoutMs ?? this.options.requestTimeoutMs, start)
          : undefined;
      const remaining = timeoutMs === undefined ? undefined : timeoutMs - (Date.now() - start);
      if (remaining !== undefined && remaining <= 0) throw new DeadlineExceededError(timeoutMs!, [], slot.endpoint.address);
      const res = await slot.transport.stream(method, signal, remaining, this.headers(undefined, undefined, token), input);
      if (slot.failures !== 0) this.pool.succeeded(slot);
      return this.closedAware(this.mapStreamErrors(res.message, slot, signal));
    } catch (e) {
      if (signal?.aborted) throw new AbortedError(signal.reason);
      if (this.closed) throw new ClientClosedError();
      const err = toEtcdError(e, slot.endpoint.address);
      // A member asked for once (not one of the client's endpoints) has no health to track.
      if (classifyFailure(e).endpointFailed && this.pool.slots.includes(slot)) this.pool.failed(slot, err);
      throw err;
    }
  }

  /**
   * A stream cut by {@link ClusterTransport.close} ends with ClientClosedError, not a
   * connection error, and at once: messages that arrived before close() are not delivered.
   */
  private async *closedAware<T>(source: AsyncIterable<T>): AsyncIterable<T> {
    try {
      for await (const item of source) {
        if (this.closed) throw new ClientClosedError();
        yield item;
      }
    } catch (e) {
      throw this.closed ? new ClientClosedError() : e;
    }
  }

  private tokenFor(signal: AbortSignal | undefined, budget: number, start: number): Promise<string> | string {
    return this.withinBudget(this.tokens!.token(signal), budget, start);
  }

  /** A token as it comes (cached), or its fetch cut off at what is left of the call's deadline. */
  private withinBudget(t: string | Promise<string>, budget: number, start: number): Promise<string> | string {
    return typeof t === "string" ? t : withDeadline(t, budget - (Date.now() - start), budget);
  }

  private headers(header: HeadersInit | undefined, ctx: ContextValues | undefined, token: string | undefined): HeadersInit | undefined {
    const leader = ctx?.get(requireLeaderKey) ?? this.options.requireLeader;
    if (!leader && (token === undefined || token === "")) return header;
    const out: Record<string, string> = {};
    if (header !== undefined) new Headers(header).forEach((v, k) => (out[k] = v));
    if (leader) out["hasleader"] = "true";
    if (token !== undefined && token !== "") out["token"] = token;
    return out;
  }
}

function isDefinitiveFailure(e: EtcdError): boolean {
  return (e instanceof EndpointUnavailableError && (e.reason === "tls" || e.reason === "protocol")) || e instanceof LearnerNotSupportedError;
}

function lastErrors(tried: Map<EndpointSlot, EtcdError>): EtcdError[] {
  return [...tried.values()];
}

function withDeadline<T>(p: Promise<T>, ms: number, budget: number): Promise<T> {
  if (ms <= 0) return Promise.reject(new DeadlineExceededError(budget));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new DeadlineExceededError(budget)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

/** Waits `ms`, or rejects with {@link AbortedError} when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError(signal.reason));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new AbortedError(signal!.reason));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
