/**
 * The two ways a keep-alive stream goes over the network:
 *
 * - over the built-in HTTP/2 transport, a {@link RawGrpcStream}: requests are
 *   pre-encoded per lease and a whole batch goes out in one write; answers
 *   are decoded by hand. This halves the client CPU of keeping thousands of
 *   leases alive (see `bench/lease.ts`).
 * - over any other transport (connect-node, or when interceptors must see
 *   the call), the typed `LeaseKeepAlive` stream of that transport.
 *
 * Both carry `hasleader`, as Go's client does for this stream: a member
 * without a leader cannot renew leases, so it should refuse the stream (and
 * cancel it when it loses its leader) rather than hold it.
 * @module
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Lease as LeaseService, type LeaseKeepAliveRequestSchema } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import type { EndpointSlot } from "../cluster/endpoint-pool.js";
import type { TokenSource } from "../cluster/cluster-transport.js";
import { RawGrpcStream } from "../transport/raw-grpc-stream.js";
import { toEtcdError } from "../errors.js";
import { decodeKeepAliveResponse, leaseIdHalves } from "./keep-alive-codec.js";
import type { KeepAliveRequest, KeepAliveWire, OpenWire, WireEvents } from "./keep-alive.js";

const PATH = "/etcdserverpb.Lease/LeaseKeepAlive";

/** What opening a wire needs from the client. */
export interface WireOptions {
  /** The auth token source, when auth is on (read when each stream opens). */
  tokens: () => TokenSource | undefined;
  /** Use the raw stream where the endpoint has a built-in HTTP/2 connection. */
  raw: boolean;
  /** Largest response accepted, in bytes. */
  maxReceiveMessageBytes?: number | undefined;
}

/** A factory of wires for {@link KeepAliveStream}. */
export function wireFactory(options: WireOptions): OpenWire {
  return (slot, events) => {
    const tokens = options.tokens();
    if (tokens === undefined || tokens.exempt(LeaseService.method.leaseKeepAlive)) return open(slot, { hasleader: "true" }, events);
    // etcd (3.4, 3.5) checks no token on LeaseKeepAlive, so the cached one is
    // enough and a fresh Authenticate (bcrypt, a raft round) per stream is not
    // needed; should a server refuse it, it is dropped and the next stream
    // carries a new one.
    let used: string | undefined;
    const metadata = Promise.resolve(tokens.token(undefined)).then((token): Record<string, string> => {
      used = token;
      return token === "" ? { hasleader: "true" } : { hasleader: "true", token };
    });
    return open(slot, metadata, {
      response: events.response,
      end: (error) => {
        if (used !== undefined && error !== undefined && tokens.isTokenError(toEtcdError(error), used)) tokens.invalidate(used);
        events.end(error);
      },
    });
  };

  function open(slot: EndpointSlot, metadata: Record<string, string> | Promise<Record<string, string>>, events: WireEvents): KeepAliveWire {
    return options.raw && slot.connection !== undefined
      ? new RawWire(slot, metadata, events, options.maxReceiveMessageBytes)
      : new TypedWire(slot, metadata, events);
  }
}

class RawWire implements KeepAliveWire {
  private readonly stream: RawGrpcStream;

  constructor(slot: EndpointSlot, metadata: Record<string, string> | Promise<Record<string, string>>, events: WireEvents, maxReceive: number | undefined) {
    this.stream = new RawGrpcStream(
      slot.connection!,
      PATH,
      metadata,
      {
        message: (buf, start, end) => {
          let a;
          try {
            a = decodeKeepAliveResponse(buf, start, end);
          } catch (e) {
            this.stream.cancel();
            events.end(e);
            return;
          }
          events.response(a.idHi, a.idLo, a.ttl);
        },
        end: (error) => events.end(error),
      },
      maxReceive,
    );
  }

  send(requests: readonly KeepAliveRequest[]): void {
    if (requests.length === 1) {
      this.stream.write(requests[0]!.frame);
      return;
    }
    let size = 0;
    for (let i = 0; i < requests.length; i++) size += requests[i]!.frame.length;
    const buf = Buffer.allocUnsafe(size);
    let o = 0;
    for (let i = 0; i < requests.length; i++) {
      const f = requests[i]!.frame;
      buf.set(f, o);
      o += f.length;
    }
    this.stream.write(buf);
  }

  close(): void {
    this.stream.cancel();
  }
}

type RequestInit = MessageInitShape<typeof LeaseKeepAliveRequestSchema>;

class TypedWire implements KeepAliveWire {
  private readonly input = new RequestQueue<RequestInit>();
  private readonly abort = new AbortController();
  private closed = false;

  constructor(slot: EndpointSlot, metadata: Record<string, string> | Promise<Record<string, string>>, events: WireEvents) {
    void this.run(slot, metadata, events);
  }

  private async run(slot: EndpointSlot, metadata: Record<string, string> | Promise<Record<string, string>>, events: WireEvents): Promise<void> {
    try {
      const header = await metadata;
      if (this.closed) return;
      const res = await slot.transport.stream(LeaseService.method.leaseKeepAlive, this.abort.signal, undefined, header, this.input);
      for await (const m of res.message) {
        if (this.closed) return;
        const [idHi, idLo] = leaseIdHalves(m.ID);
        events.response(idHi, idLo, Number(m.TTL));
      }
      if (!this.closed) events.end(undefined);
    } catch (e) {
      if (!this.closed) events.end(e);
    }
  }

  send(requests: readonly KeepAliveRequest[]): void {
    for (const r of requests) this.input.push({ ID: r.id });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.input.end();
    this.abort.abort();
  }
}

/** The request side of a typed stream: an async iterable fed by `push`. One consumer. */
class RequestQueue<T> implements AsyncIterable<T>, AsyncIterator<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private done = false;

  push(item: T): void {
    if (this.done) return;
    const w = this.waiting;
    if (w !== undefined) {
      this.waiting = undefined;
      w({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    this.done = true;
    this.items = [];
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  // connect's transports require it of request iterables.
  throw(e?: unknown): Promise<IteratorResult<T>> {
    this.end();
    return Promise.reject(e);
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }
}
