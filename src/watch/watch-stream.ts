/**
 * One bidirectional Watch stream carrying many watchers: creates are
 * pipelined with client-chosen watch IDs, responses are routed by ID, and
 * when the stream breaks every watcher is re-created on a new stream (on
 * another member if need be) from the revision after the last one it
 * delivered.
 * @module
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, createContextValues, type Transport } from "@connectrpc/connect";
import {
  Watch,
  WatchCreateRequest_FilterType,
  type WatchRequestSchema,
  type WatchResponse,
} from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { requireLeaderKey } from "../call-options.js";
import {
  AuthFailedError,
  AuthRevisionOldError,
  ClientClosedError,
  CompactedError,
  EtcdError,
  InvalidAuthTokenError,
  PermissionDeniedError,
  RequestTooLargeError,
  UserNameEmptyError,
  errorFromServerMessage,
  toEtcdError,
} from "../errors.js";
import { retryDelayMs } from "../cluster/retry.js";
import { RequestQueue } from "./request-queue.js";
import { FRAGMENT, NO_DELETE, NO_PUT, PREV_KV, PROGRESS_NOTIFY, type Watcher, type WatcherHost, type WatcherState } from "./watcher.js";

type WatchRequestInit = MessageInitShape<typeof WatchRequestSchema>;

/** Where a watch stream is: no watcher (`idle`), opening, open, waiting to reopen (`backoff`), or closed with the client. */
export type WatchStreamState = "idle" | "connecting" | "open" | "backoff" | "closed";

/** A snapshot of one stream, for debugging. */
export interface WatchStreamInfo {
  /** Whether the stream carries `hasleader`. */
  requireLeader: boolean;
  /** Where the stream is in its life. */
  state: WatchStreamState;
  /** Member ID of the member serving the stream, once it answered. */
  memberId: bigint | undefined;
  /** Watchers on this stream, including paused ones. */
  watchers: number;
  /** How many of them are in each state. */
  states: Record<Exclude<WatcherState, "closed">, number>;
  /** Watchers the server has (or is creating) on the current stream. */
  onServer: number;
  /** Creates sent and not answered yet. */
  pendingCreates: number;
  /** Times the stream was opened. */
  opens: number;
  /** Why the stream last broke, if it did. */
  lastError: EtcdError | undefined;
}

/** A stream that lived this long after its first answer had worked: its successor opens without delay. */
const HEALTHY_STREAM_MS = 1000;
/** Backoff between failed attempts to open a stream. */
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 5000;

/** One attempt at a stream: its request queue, its cancel switch and the watchers the server has on it. */
class Session {
  readonly queue = new RequestQueue<WatchRequestInit>();
  readonly abort = new AbortController();
  /** Watchers by watch ID, created or being created on this stream. */
  readonly byId = new Map<number, Watcher>();
  /** Watch IDs of creates not yet answered, in the order sent (etcd answers in order). */
  creates: number[] = [];
  createsHead = 0;
  /** Resolvers of cancels someone waits for, by watch ID. */
  acks: Map<number, () => void> | undefined;
  memberId: bigint | undefined;
  answered = false;
  /** `Date.now()` of the first answer. */
  answeredAt = 0;
  /** Fires when creates have gone unanswered for the create deadline. */
  createTimer: NodeJS.Timeout | undefined;

  ack(id: number): void {
    const r = this.acks?.get(id);
    if (r !== undefined) {
      this.acks!.delete(id);
      r();
    }
  }

  /** The watch ID of the oldest unanswered create. */
  shiftCreate(): number | undefined {
    if (this.createsHead >= this.creates.length) return undefined;
    const id = this.creates[this.createsHead++]!;
    if (this.createsHead === this.creates.length) {
      this.creates = [];
      this.createsHead = 0;
    } else if (this.createsHead > 4096 && this.createsHead * 2 > this.creates.length) {
      this.creates = this.creates.slice(this.createsHead);
      this.createsHead = 0;
    }
    return id;
  }
}

/**
 * A Watch stream and the watchers it carries. It opens when it gets its
 * first watcher, closes when its last watcher leaves, and reopens after a
 * failure: at once when the broken stream had worked for a while, with
 * jittered exponential backoff while attempts keep failing.
 */
export class WatchStream implements WatcherHost {
  private readonly members = new Set<Watcher>();
  private session: Session | undefined;
  private nextId = 1;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private opens = 0;
  private lastError: EtcdError | undefined;

  constructor(
    private readonly transport: Transport,
    /** Whether the stream carries `hasleader`. */
    readonly requireLeader: boolean,
    /**
     * How long creates may go unanswered before the stream is given up and
     * opened again: a safety net for a server that stops reading a stream.
     */
    private readonly createTimeoutMs: number,
  ) {}

  /** Adds a new watcher and creates it on the server. */
  add(w: Watcher): void {
    if (this.closed) {
      w.finish(new ClientClosedError());
      return;
    }
    this.members.add(w);
    this.attach(w);
  }

  attach(w: Watcher): void {
    if (this.closed || !this.members.has(w)) return;
    const s = this.session;
    if (s !== undefined) {
      this.register(s, w);
      return;
    }
    w.setState("disconnected");
    if (this.timer === undefined) this.open();
  }

  detach(w: Watcher): void {
    const s = this.session;
    const id = w.wid;
    if (s === undefined || id === 0) return;
    w.wid = 0;
    s.byId.delete(id);
    s.queue.push(cancelRequest(id));
  }

  remove(w: Watcher): Promise<void> | undefined {
    if (!this.members.delete(w)) return undefined;
    const s = this.session;
    const id = w.wid;
    let ack: Promise<void> | undefined;
    if (s !== undefined && id !== 0) {
      w.wid = 0;
      s.byId.delete(id);
      s.queue.push(cancelRequest(id));
      ack = new Promise((resolve) => (s.acks ??= new Map()).set(id, resolve));
    }
    if (this.members.size === 0) this.idle();
    return ack;
  }

  requestProgress(): void {
    this.session?.queue.push(PROGRESS_REQUEST);
  }

  /** Ends every watcher cleanly and the stream with them; no reconnects after this. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    const s = this.session;
    this.session = undefined;
    if (s !== undefined) this.endSession(s);
    const all = [...this.members];
    this.members.clear();
    const closed = new ClientClosedError();
    for (const w of all) w.finish(undefined, closed);
  }

  get state(): WatchStreamState {
    if (this.closed) return "closed";
    if (this.session !== undefined) return this.session.answered ? "open" : "connecting";
    return this.timer !== undefined ? "backoff" : "idle";
  }

  /** A snapshot for debugging. */
  info(): WatchStreamInfo {
    const s = this.session;
    return {
      requireLeader: this.requireLeader,
      state: this.state,
      memberId: s?.memberId,
      watchers: this.members.size,
      states: this.countStates(),
      onServer: s?.byId.size ?? 0,
      pendingCreates: s === undefined ? 0 : s.creates.length - s.createsHead,
      opens: this.opens,
      lastError: this.lastError,
    };
  }

  private countStates(): WatchStreamInfo["states"] {
    const n = { creating: 0, watching: 0, paused: 0, disconnected: 0 };
    for (const w of this.members) if (w.state !== "closed") n[w.state]++;
    return n;
  }

  private register(s: Session, w: Watcher): void {
    const id = this.nextId++;
    w.wid = id;
    s.byId.set(id, w);
    s.creates.push(id);
    s.queue.push(createRequest(w, id));
    w.setState("creating");
    s.createTimer ??= setTimeout(() => this.createsStalled(s), this.createTimeoutMs);
  }

  private createsStalled(s: Session): void {
    s.createTimer = undefined;
    if (this.session !== s || s.createsHead >= s.creates.length) return;
    this.broken(s, new EtcdError(`watch creates unanswered for ${this.createTimeoutMs} ms`, Code.DeadlineExceeded));
  }

  private open(): void {
    this.timer = undefined;
    const s = new Session();
    this.session = s;
    this.opens++;
    for (const w of this.members) if (w.wanted) this.register(s, w);
    void this.run(s);
  }

  private async run(s: Session): Promise<void> {
    let failure: unknown;
    try {
      const ctx = createContextValues().set(requireLeaderKey, this.requireLeader);
      const res = await this.transport.stream(Watch.method.watch, s.abort.signal, undefined, undefined, s.queue, ctx);
      s.queue.established();
      for await (const m of res.message) {
        if (this.session !== s) break;
        this.dispatch(s, m);
      }
    } catch (e) {
      failure = e;
    }
    this.broken(s, failure);
  }

  private dispatch(s: Session, m: WatchResponse): void {
    if (!s.answered) {
      s.answered = true;
      s.answeredAt = Date.now();
      s.memberId = m.header?.memberId;
    }
    const id = Number(m.watchId);
    if (m.created) {
      this.onCreated(s, m, id);
      return;
    }
    if (id === -1) {
      // A progress notification for the whole stream (the answer to a progress request).
      const rev = m.header?.revision ?? 0n;
      for (const w of s.byId.values()) w.progressForStream(rev);
      return;
    }
    if (m.canceled) {
      s.ack(id);
      const w = s.byId.get(id);
      if (w === undefined) return;
      s.byId.delete(id);
      w.wid = 0;
      if (m.compactRevision > 0n) {
        // etcd keeps a compacted watcher until it is cancelled.
        s.queue.push(cancelRequest(id));
        w.finish(
          new CompactedError("etcdserver: mvcc: required revision has been compacted", Code.OutOfRange, {
            compactRevision: m.compactRevision,
          }),
        );
      } else {
        w.finish(m.cancelReason !== "" ? errorFromServerMessage(m.cancelReason) : new EtcdError("the server cancelled the watcher", Code.Canceled));
      }
      return;
    }
    s.byId.get(id)?.receive(m);
  }

  private onCreated(s: Session, m: WatchResponse, id: number): void {
    const expected = s.shiftCreate();
    if (s.createTimer !== undefined) {
      // Answers keep coming: the deadline counts from the last one.
      if (s.createsHead >= s.creates.length) {
        clearTimeout(s.createTimer);
        s.createTimer = undefined;
      } else s.createTimer.refresh();
    }
    // etcd 3.5 answers a refused create with watch ID -1: it is the oldest create.
    const wid = id > 0 ? id : (expected ?? 0);
    const w = s.byId.get(wid);
    if (!m.canceled) {
      w?.created(m.header?.revision ?? 0n);
      return;
    }
    s.ack(wid);
    const err = errorFromServerMessage(m.cancelReason !== "" ? m.cancelReason : "the server refused the watch");
    const auth = isAuthRefusal(err);
    if (w !== undefined) {
      s.byId.delete(wid);
      w.wid = 0;
      // A refusal for permissions may come from a token that expired under a
      // long-lived stream: try once more on a fresh stream (with a fresh token).
      if (!(auth && w.retryAfterAuthRefusal())) w.finish(err);
    }
    // etcd 3.4 stops reading a stream after refusing a watch for permissions: start a new one.
    if (auth && this.session === s) this.broken(s, undefined, true);
  }

  /** The session ended (failure undefined: cleanly, or restarted on purpose). */
  private broken(s: Session, failure: unknown, restart = false): void {
    if (this.session !== s) return;
    this.session = undefined;
    this.endSession(s);
    if (this.closed) return;
    const err = failure === undefined ? undefined : toEtcdError(failure);
    if (err !== undefined) this.lastError = err;
    if (err !== undefined && isPermanent(err)) {
      // Retrying cannot help: every watcher ends with the error.
      for (const w of [...this.members]) w.finish(err);
      return;
    }
    if (!this.hasWanted()) return;
    // A stream that worked for a while is reopened at once (a member died, the
    // watchers should move now); one that failed early backs off, so a member
    // that accepts streams and then drops them is not hammered with re-creates.
    if (restart || (s.answered && Date.now() - s.answeredAt >= HEALTHY_STREAM_MS)) {
      this.failures = 0;
      this.open();
      return;
    }
    this.failures++;
    this.timer = setTimeout(() => this.open(), retryDelayMs(this.failures, BACKOFF_BASE_MS, BACKOFF_CAP_MS));
  }

  private endSession(s: Session): void {
    if (s.createTimer !== undefined) clearTimeout(s.createTimer);
    s.createTimer = undefined;
    s.abort.abort();
    s.queue.end();
    const acks = s.acks;
    s.acks = undefined;
    if (acks !== undefined) for (const r of acks.values()) r();
    for (const w of s.byId.values()) {
      w.wid = 0;
      w.disconnected();
    }
    s.byId.clear();
  }

  /** The last watcher left: close the stream until one comes. */
  private idle(): void {
    this.clearTimer();
    const s = this.session;
    if (s === undefined) return;
    this.session = undefined;
    this.endSession(s);
  }

  private hasWanted(): boolean {
    for (const w of this.members) if (w.wanted) return true;
    return false;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

/** Refusals a fresh stream (with a fresh token) may cure. */
function isAuthRefusal(err: EtcdError): boolean {
  return (
    err instanceof PermissionDeniedError ||
    err instanceof InvalidAuthTokenError ||
    err instanceof AuthRevisionOldError ||
    err instanceof UserNameEmptyError
  );
}

/** Stream failures that another attempt cannot fix. */
export function isPermanent(err: EtcdError): boolean {
  return (
    err.code === Code.Unimplemented ||
    err instanceof PermissionDeniedError ||
    err instanceof AuthFailedError ||
    err instanceof RequestTooLargeError
  );
}

const PROGRESS_REQUEST: WatchRequestInit = { requestUnion: { case: "progressRequest", value: {} } };

function cancelRequest(id: number): WatchRequestInit {
  return { requestUnion: { case: "cancelRequest", value: { watchId: BigInt(id) } } };
}

const NO_FILTERS: WatchCreateRequest_FilterType[] = [];

function createRequest(w: Watcher, id: number): WatchRequestInit {
  const f = w.flags;
  let filters = NO_FILTERS;
  if ((f & (NO_PUT | NO_DELETE)) !== 0) {
    filters = [];
    if ((f & NO_PUT) !== 0) filters.push(WatchCreateRequest_FilterType.NOPUT);
    if ((f & NO_DELETE) !== 0) filters.push(WatchCreateRequest_FilterType.NODELETE);
  }
  return {
    requestUnion: {
      case: "createRequest",
      value: {
        key: w.key,
        rangeEnd: w.rangeEnd,
        startRevision: w.nextRevision,
        progressNotify: (f & PROGRESS_NOTIFY) !== 0,
        filters,
        prevKv: (f & PREV_KV) !== 0,
        watchId: BigInt(id),
        fragment: (f & FRAGMENT) !== 0,
      },
    },
  };
}
