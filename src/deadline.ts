/**
 * The deadline and abort rules of a call, in one place. A call's signal and
 * deadline hold from the moment the call is made: while it waits for a
 * connection, for an auth token, for a backoff, and across retries. Unary
 * calls, stream opening and token fetches all go through {@link CallBudget}.
 *
 * What the numbers mean: a timeout is milliseconds from the moment the call
 * is made. `Infinity` means no deadline. `0` is a deadline that has already
 * passed: the call fails with `DeadlineExceededError` without being sent, as
 * in gRPC and connect. Negative numbers and `NaN` are refused with
 * `InvalidOptionError`. Values past `setTimeout`'s limit (2^31 - 1 ms, about
 * 24.8 days) are honoured by re-arming the timer, never by firing at once.
 * @module
 */
import { describeValue } from "./describe-value.js";
import { AbortedError, ClientClosedError, DeadlineExceededError, InvalidOptionError, type EtcdError } from "./errors.js";

/** The longest delay `setTimeout` accepts; longer ones would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Checks a duration option: a number of milliseconds, `>= 0` (or `> 0` when
 * `positive`), or `Infinity` when `infinite` allows it.
 *
 * @throws InvalidOptionError naming the option and the value it got.
 */
export function checkDuration(value: unknown, what: string, rules: { positive?: boolean; infinite?: boolean } = {}): number {
  const ok =
    typeof value === "number" &&
    !Number.isNaN(value) &&
    (rules.positive ? value > 0 : value >= 0) &&
    (rules.infinite !== false || Number.isFinite(value));
  if (!ok) {
    const range = `${rules.positive ? "> 0" : ">= 0"}${rules.infinite !== false ? " or Infinity" : ""}`;
    throw new InvalidOptionError(`${what} must be a number of milliseconds ${range}, got ${describeValue(value)}`);
  }
  return value;
}

/** A timer that may be longer than `setTimeout` allows: it re-arms until the full delay has passed. */
class LongTimer {
  private handle: NodeJS.Timeout | undefined;
  private readonly due: number;

  constructor(
    ms: number,
    private readonly fn: () => void,
    private readonly unref: boolean,
  ) {
    this.due = performance.now() + ms;
    this.arm();
  }

  private arm(): void {
    const left = this.due - performance.now();
    if (left <= MAX_TIMER_MS) {
      this.handle = setTimeout(this.fn, Math.max(0, left));
    } else {
      this.handle = setTimeout(() => this.arm(), MAX_TIMER_MS);
    }
    if (this.unref) this.handle.unref();
  }

  clear(): void {
    clearTimeout(this.handle);
  }
}

/** A timer from {@link startTimer}; `undefined` when the delay was infinite. */
export type Timer = NodeJS.Timeout | LongTimer | undefined;

/**
 * Runs `fn` after `ms` milliseconds: never for `Infinity`, and correctly for
 * delays past `setTimeout`'s 2^31 - 1 ms limit. `unref` lets the process exit
 * while the timer is pending (for timers that guard something else that
 * already keeps the process alive).
 */
export function startTimer(ms: number, fn: () => void, unref = false): Timer {
  if (ms === Infinity) return undefined;
  if (ms > MAX_TIMER_MS) return new LongTimer(ms, fn, unref);
  const t = setTimeout(fn, Math.max(0, ms));
  if (unref) t.unref();
  return t;
}

/** Cancels a timer from {@link startTimer}. */
export function stopTimer(t: Timer): void {
  if (t === undefined) return;
  if (t instanceof LongTimer) t.clear();
  else clearTimeout(t);
}

/** The error of a call whose caller's signal fired: the one place it is built. */
export function abortedError(signal: AbortSignal): AbortedError {
  return new AbortedError(signal.reason);
}

/**
 * The budget of one call: its deadline, measured from the moment the call was
 * made, its caller's signal, and (for the client's own calls) the client's
 * closing. Every wait of the call goes through {@link CallBudget.race} or
 * {@link CallBudget.sleep}, so none can outlive it.
 */
export class CallBudget {
  /** `performance.now()` when the call was made. */
  readonly startedAt: number;
  private readonly deadlineAt: number;

  /**
   * @param timeoutMs The call's deadline in milliseconds from now; `Infinity` for none.
   * @param signal The caller's signal.
   * @param closing Fires when the client closes: the call ends with `ClientClosedError`.
   * @throws InvalidOptionError for a negative or NaN timeout.
   */
  constructor(
    readonly timeoutMs: number,
    readonly signal: AbortSignal | undefined,
    private readonly closing?: AbortSignal,
  ) {
    checkDuration(timeoutMs, "timeoutMs");
    this.startedAt = performance.now();
    this.deadlineAt = this.startedAt + timeoutMs;
  }

  /** Milliseconds left before the deadline (`Infinity` without one; `<= 0` once it passed). */
  remaining(): number {
    return this.deadlineAt - performance.now();
  }

  /** What is left, as a transport's `timeoutMs` argument: `undefined` for no deadline. */
  transportTimeout(): number | undefined {
    const left = this.remaining();
    return left === Infinity ? undefined : Math.max(0, left);
  }

  /** True once the deadline has passed. */
  expired(): boolean {
    return performance.now() >= this.deadlineAt;
  }

  /** True when the client closed, or the caller aborted: nothing more may be tried. */
  cancelled(): boolean {
    return this.closing?.aborted === true || this.signal?.aborted === true;
  }

  /**
   * Why the call must stop now, if it must: the client closed, the caller
   * aborted, or the deadline passed (in that order of precedence).
   */
  stopReason(attempts?: readonly EtcdError[], endpoint?: string): EtcdError | undefined {
    if (this.closing?.aborted) return new ClientClosedError();
    if (this.signal?.aborted) return abortedError(this.signal);
    if (this.expired()) return this.deadlineError(attempts, endpoint);
    return undefined;
  }

  /** The deadline error of this call, listing earlier failed attempts. */
  deadlineError(attempts: readonly EtcdError[] = [], endpoint?: string): DeadlineExceededError {
    return new DeadlineExceededError(this.timeoutMs, attempts, endpoint);
  }

  /**
   * Waits for `p`, or rejects with the reason the call stops (closed,
   * aborted, deadline) as soon as there is one. `p` keeps running; a late
   * rejection of it is swallowed.
   */
  race<T>(p: Promise<T>): Promise<T> {
    const stop = this.stopReason();
    if (stop !== undefined) {
      p.catch(() => undefined);
      return Promise.reject(stop);
    }
    return new Promise<T>((resolve, reject) => {
      const { cancel: done } = this.onStop((err) => reject(err));
      p.then(
        (v) => {
          done();
          resolve(v);
        },
        (e: unknown) => {
          done();
          reject(e);
        },
      );
    });
  }

  /** Waits `ms`, or rejects as soon as the call must stop. */
  sleep(ms: number): Promise<void> {
    const stop = this.stopReason();
    if (stop !== undefined) return Promise.reject(stop);
    return new Promise<void>((resolve, reject) => {
      const t = startTimer(ms, () => {
        done();
        resolve();
      });
      const { cancel: done } = this.onStop((err) => {
        stopTimer(t);
        reject(err);
      });
    });
  }

  /**
   * An AbortSignal that fires when the call must stop (closed, aborted or
   * deadline), for APIs that take a signal. `dropDeadline()` keeps only the
   * closed and aborted links (a stream outlives its opening deadline);
   * `dispose()` drops everything once the call is over.
   */
  linkedSignal(): LinkedSignal {
    const ac = new AbortController();
    const stop = this.stopReason();
    if (stop !== undefined) {
      ac.abort(stop);
      return { signal: ac.signal, dropDeadline: () => undefined, dispose: () => undefined };
    }
    const link = this.onStop((err) => ac.abort(err));
    return { signal: ac.signal, dropDeadline: link.dropTimer, dispose: link.cancel };
  }

  /** Calls `fn` once with the stop reason when the deadline passes or a signal fires. */
  private onStop(fn: (err: EtcdError) => void): { cancel: () => void; dropTimer: () => void } {
    let timer: Timer;
    const fire = (): void => {
      cancel();
      // A timer may fire a fraction of a millisecond early: the deadline is what it stands for.
      fn(this.stopReason() ?? this.deadlineError());
    };
    const dropTimer = (): void => {
      stopTimer(timer);
      timer = undefined;
    };
    const cancel = (): void => {
      dropTimer();
      this.signal?.removeEventListener("abort", fire);
      this.closing?.removeEventListener("abort", fire);
    };
    timer = startTimer(this.remaining(), fire);
    this.signal?.addEventListener("abort", fire, { once: true });
    this.closing?.addEventListener("abort", fire, { once: true });
    return { cancel, dropTimer };
  }
}

/** A signal linked to a call's budget; see {@link CallBudget.linkedSignal}. */
export interface LinkedSignal {
  readonly signal: AbortSignal;
  /** From now on, only the client's closing and the caller's abort fire the signal. */
  dropDeadline(): void;
  /** Unlinks the signal entirely. */
  dispose(): void;
}

/** Waits `ms`, or rejects with `AbortedError` as soon as `signal` fires (timers past 2^31 ms included). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new CallBudget(Infinity, signal).sleep(ms);
}
