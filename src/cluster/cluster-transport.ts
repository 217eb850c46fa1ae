/**
 * The transport the client's typed connect clients use: it sends each call to
 * the pinned endpoint through that endpoint's own transport, adds the auth
 * token and `hasleader` metadata, holds the call to its deadline and signal
 * from the moment it is made (see `deadline.ts`), turns every failure into a
 * typed {@link EtcdError}, and retries where that is safe (see `retry.ts`).
 * @module
 */
import { setMaxListeners } from "node:events";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { ContextValues, StreamResponse, Transport, UnaryResponse } from "@connectrpc/connect";
import { requireLeaderKey, retryWritesKey } from "../call-options.js";
import { CallBudget, abortedError, type LinkedSignal } from "../deadline.js";
import type { EndpointPool, EndpointSlot } from "./endpoint-pool.js";
import { ClientClosedError, EndpointUnavailableError, EtcdError, NoEndpointAvailableError, OutcomeUnknownError, toEtcdError } from "../errors.js";
import { isConnectionLost, isUnsent } from "../transport/failure.js";
import { ReplayableInput } from "./replayable-input.js";
import {
  classifyFailure,
  isConfigurationFailure,
  isDeadline,
  isDefinitiveFailure,
  isRepeatable,
  mayHaveBeenApplied,
  methodName,
  retryDelayMs,
} from "./retry.js";

/** Supplies the auth token for calls; implemented by the auth session. */
export interface TokenSource {
  /** The current token, or a promise while one is being fetched. */
  token(signal: AbortSignal | undefined): string | Promise<string>;
  /** Drops `stale` so the next {@link TokenSource.token} authenticates again. */
  invalidate(stale: string): void;
  /**
   * A token fresh enough to open a stream with (shared with concurrent
   * callers): streams live long and cannot be retried with a new token once open.
   */
  fresh(signal: AbortSignal | undefined): string | Promise<string>;
  /** True when `err`, answering a call sent with `token`, says to authenticate again. */
  isTokenError(err: EtcdError, token: string): boolean;
  /** True for calls that must go without a token (Authenticate itself). */
  exempt(method: DescMethodUnary | DescMethodStreaming): boolean;
}

/** Behaviour of a {@link ClusterTransport}. */
export interface ClusterTransportOptions {
  /** Deadline of a unary call (and of opening a stream) when the caller gave none, retries included. */
  requestTimeoutMs: number;
  /** Retry writes that may have reached the server (see `CallOptions.retryWrites`). */
  retryWrites: boolean;
  /** Send `hasleader: true` on every call. */
  requireLeader: boolean;
  /**
   * Keep retrying until the deadline when every endpoint refuses or does not
   * resolve (gRPC's wait-for-ready). Default false: such a call fails at once
   * with `NoEndpointAvailableError`.
   */
  waitForReady: boolean;
}

/** The client-wide transport over an {@link EndpointPool}. */
export class ClusterTransport implements Transport {
  /** Set by the client after authentication is configured. */
  tokens: TokenSource | undefined;
  private readonly closing = new AbortController();

  constructor(
    readonly pool: EndpointPool,
    private readonly options: ClusterTransportOptions,
  ) {
    // Every call waiting (for a token, a backoff) listens for the close: any number of them is normal.
    setMaxListeners(0, this.closing.signal);
  }

  /** True once {@link ClusterTransport.close} was called. */
  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /**
   * Fails every later call with {@link ClientClosedError}, and every call
   * waiting (for a token, a backoff, a connection) at once. Calls on a
   * connection end when the connection closes.
   */
  close(): void {
    if (!this.closed) this.closing.abort(new ClientClosedError());
  }

  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues?: ContextValues,
  ): Promise<UnaryResponse<I, O>> {
    let budget: CallBudget;
    try {
      budget = this.budget(timeoutMs, signal);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.runUnary(method, budget, header, input, contextValues, undefined);
  }

  /**
   * One call on a given endpoint, bypassing the pin: metadata, deadline,
   * token renewal and error mapping, but no failover (for per-member calls:
   * status, defragment, hash, move leader). `timeoutMs` defaults to the
   * client's request timeout.
   */
  async unaryOn<I extends DescMessage, O extends DescMessage>(
    slot: EndpointSlot,
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<MessageShape<O>> {
    const res = await this.runUnary(method, this.budget(timeoutMs, signal), undefined, input, undefined, slot);
    return res.message;
  }

  private budget(timeoutMs: number | undefined, signal: AbortSignal | undefined): CallBudget {
    return new CallBudget(timeoutMs ?? this.options.requestTimeoutMs, signal, this.closing.signal);
  }

  /**
   * The one unary path: attempts on the pinned endpoint, then on others while
   * that is safe, all within one budget. `only` pins the call to one endpoint
   * (no failover).
   */
  private async runUnary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    budget: CallBudget,
    header: HeadersInit | undefined,
    input: MessageInitShape<I>,
    contextValues: ContextValues | undefined,
    only: EndpointSlot | undefined,
  ): Promise<UnaryResponse<I, O>> {
    const needsToken = this.tokens !== undefined && !this.tokens.exempt(method);
    // Each endpoint's latest failure in this call.
    const tried = new Map<EndpointSlot, EtcdError>();
    // An earlier attempt of this write may have been applied.
    let mayBeApplied = false;
    let tokenRetried = false;
    let token: string | undefined;
    let slot = only ?? this.pool.pick();
    for (let attempt = 1; ; attempt++) {
      const stop = budget.stopReason(tried.size > 0 ? [...tried.values()] : undefined, slot.endpoint.address);
      if (stop !== undefined) throw mayBeApplied && isDeadline(stop) ? new OutcomeUnknownError(methodName(method), stop) : stop;
      if (needsToken) {
        const t = this.tokens!.token(budget.signal);
        token = typeof t === "string" ? t : await budget.race(t);
      }
      let failure: unknown;
      try {
        const res = await slot.transport.unary(method, budget.signal, budget.transportTimeout(), this.headers(header, contextValues, token), input, contextValues);
        if (slot.failures !== 0) this.pool.succeeded(slot);
        return res;
      } catch (e) {
        failure = e;
      }
      if (this.closed) throw new ClientClosedError();
      if (budget.signal?.aborted) throw abortedError(budget.signal);
      const err = toEtcdError(failure, slot.endpoint.address);
      // Decided only on failure: the success path stays free of it.
      const write = !isRepeatable(method, input);
      // The request may have reached a member that applied it, or may still apply it.
      const unknown = write && !isUnsent(failure) && (isConnectionLost(failure) || mayHaveBeenApplied(err) || isDeadline(err));
      if (isDeadline(err)) {
        // Ours or the server's: either way the call's time is up.
        const deadline = budget.deadlineError([...tried.values()], slot.endpoint.address);
        throw unknown || mayBeApplied ? new OutcomeUnknownError(methodName(method), deadline) : deadline;
      }
      if (needsToken && !tokenRetried && this.tokens!.isTokenError(err, token!)) {
        // An expired token or a stale auth revision: the server refused the call; authenticate again and resend once.
        tokenRetried = true;
        this.tokens!.invalidate(token!);
        continue;
      }
      const cls = classifyFailure(failure);
      if (cls.endpointFailed) this.pool.failed(slot, err);
      const mayRetry = !write || (contextValues?.get(retryWritesKey) ?? this.options.retryWrites);
      if (!(cls.safeToResend || (mayRetry && cls.retryableIfRepeatable)) || only !== undefined) {
        throw unknown ? new OutcomeUnknownError(methodName(method), err) : err;
      }
      mayBeApplied ||= unknown;
      tried.set(slot, err);
      slot = await this.nextEndpoint(budget, tried, attempt, method, mayBeApplied);
    }
  }

  /**
   * After a failed attempt that may be retried: fails the call when every
   * endpoint failed for good, else waits as the backoff asks (within the
   * deadline) and returns the endpoint for the next attempt.
   */
  private async nextEndpoint(
    budget: CallBudget,
    tried: Map<EndpointSlot, EtcdError>,
    attempt: number,
    method: DescMethodUnary,
    mayBeApplied: boolean,
  ): Promise<EndpointSlot> {
    const everyEndpointFailed = this.pool.slots.every((s) => tried.has(s));
    if (everyEndpointFailed) {
      const errors = [...tried.values()];
      // Refused, unknown host, TLS or protocol mismatch everywhere: say so now instead of retrying until the deadline.
      if (errors.every(isConfigurationFailure) || (!this.options.waitForReady && errors.every(isDefinitiveFailure))) {
        // A lone member that answered (a learner refusing the call) says more than a list of one.
        throw errors.length === 1 && !(errors[0] instanceof EndpointUnavailableError) ? errors[0]! : new NoEndpointAvailableError(errors);
      }
    }
    const outOfTime = (): EtcdError => {
      const deadline = budget.deadlineError([...tried.values()]);
      return mayBeApplied ? new OutcomeUnknownError(methodName(method), deadline) : deadline;
    };
    const delay = everyEndpointFailed ? retryDelayMs(attempt) : 0;
    if (budget.remaining() - delay <= 0) throw outOfTime();
    if (delay > 0) await budget.sleep(delay);
    const slot = this.pool.pick(new Set(tried.keys()));
    // Every endpoint failed this call, and the best one is still backing off: wait for it, within the deadline.
    const wait = slot.retryAt - Date.now();
    if (wait > 0 && tried.has(slot)) {
      if (wait >= budget.remaining()) throw outOfTime();
      await budget.sleep(wait);
    }
    return slot;
  }

  stream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues?: ContextValues,
  ): Promise<StreamResponse<I, O>> {
    return this.openStream(method, signal, timeoutMs, header, input, contextValues, undefined);
  }

  /**
   * A stream on a given endpoint, bypassing the pin (a snapshot of one
   * member): the same token, `hasleader`, deadline and error mapping as
   * {@link ClusterTransport.stream}, but never moved to another member.
   * Without `timeoutMs` the stream has no deadline; `signal` ends it.
   */
  async streamOn<I extends DescMessage, O extends DescMessage>(
    slot: EndpointSlot,
    method: DescMethodStreaming<I, O>,
    input: AsyncIterable<MessageInitShape<I>>,
    timeoutMs: number | undefined,
    signal?: AbortSignal,
  ): Promise<AsyncIterable<MessageShape<O>>> {
    return (await this.openStream(method, signal, timeoutMs, undefined, input, undefined, slot)).message;
  }

  /** The one stream path; `only` pins the stream to one endpoint (no failover). */
  private async openStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodStreaming<I, O>,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    header: HeadersInit | undefined,
    input: AsyncIterable<MessageInitShape<I>>,
    contextValues: ContextValues | undefined,
    only: EndpointSlot | undefined,
  ): Promise<StreamResponse<I, O>> {
    // Opening is bounded by the caller's deadline, or the default request timeout; the stream
    // itself lives until the caller's deadline, if it gave one.
    const budget = this.budget(timeoutMs, signal);
    const replay = new ReplayableInput(input);
    const tried = new Map<EndpointSlot, EtcdError>();
    const needsToken = this.tokens !== undefined && !this.tokens.exempt(method);
    for (;;) {
      let link: LinkedSignal | undefined;
      let slot: EndpointSlot | undefined;
      try {
        const stop = budget.stopReason([...tried.values()]);
        if (stop !== undefined) throw stop;
        // A fresh-enough token: a cached one may expire while the stream lives.
        let token: string | undefined;
        if (needsToken) {
          const t = this.tokens!.fresh(budget.signal);
          token = typeof t === "string" ? t : await budget.race(t);
        }
        slot = only ?? this.pool.pick(new Set(tried.keys()));
        link = budget.linkedSignal();
        const lifetime = timeoutMs === undefined ? undefined : budget.transportTimeout();
        const res = await slot.transport.stream(method, link.signal, lifetime, this.headers(header, contextValues, token), replay.attempt(), contextValues);
        // Accepted: from here on the stream is never opened again at this layer (its owner re-creates it).
        replay.accepted();
        link.dropDeadline();
        if (slot.failures !== 0) this.pool.succeeded(slot);
        return { ...res, header: res.header, trailer: res.trailer, message: this.streamMessages(res.message, slot, signal, link, replay) };
      } catch (e) {
        link?.dispose();
        const err = this.streamFailure(e, slot, signal, budget, tried);
        // Only a stream that provably never reached a server may be opened elsewhere, with its input replayed.
        if (slot === undefined || err !== undefined || only !== undefined || tried.size >= this.pool.slots.length - 1) {
          replay.close();
          const mapped = err ?? toEtcdError(e, slot?.endpoint.address);
          throw tried.size > 0 && err === undefined ? new NoEndpointAvailableError([...tried.values(), mapped]) : mapped;
        }
        tried.set(slot, toEtcdError(e, slot.endpoint.address));
      }
    }
  }

  /**
   * What a failed stream opening means: an error to give the caller now, or
   * undefined when it never reached a server and may be tried elsewhere.
   */
  private streamFailure(
    e: unknown,
    slot: EndpointSlot | undefined,
    signal: AbortSignal | undefined,
    budget: CallBudget,
    tried: Map<EndpointSlot, EtcdError>,
  ): EtcdError | undefined {
    if (this.closed) return new ClientClosedError();
    if (signal?.aborted) return abortedError(signal);
    const err = toEtcdError(e, slot?.endpoint.address);
    if (slot === undefined) return err;
    if (isDeadline(err) || budget.expired()) return budget.deadlineError([...tried.values(), err], slot.endpoint.address);
    if (classifyFailure(e).endpointFailed) this.pool.failed(slot, err);
    return isUnsent(e) ? undefined : err;
  }

  /** The response messages, with failures typed; ends the caller's input and the signal links when the stream ends. */
  private async *streamMessages<T>(
    source: AsyncIterable<T>,
    slot: EndpointSlot,
    signal: AbortSignal | undefined,
    link: LinkedSignal,
    replay: ReplayableInput<unknown>,
  ): AsyncIterable<T> {
    const it = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        let r: IteratorResult<T>;
        try {
          r = await it.next();
        } catch (e) {
          if (this.closed) throw new ClientClosedError();
          if (signal?.aborted) throw abortedError(signal);
          const err = toEtcdError(e, slot.endpoint.address);
          if (classifyFailure(e).endpointFailed) this.pool.failed(slot, err);
          throw err;
        }
        if (r.done === true) return;
        // After close(), messages already received are not delivered: the stream ends now.
        if (this.closed) throw new ClientClosedError();
        yield r.value;
      }
    } finally {
      link.dispose();
      replay.close();
      await it.return?.();
    }
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
