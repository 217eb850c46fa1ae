// The keep-alive multiplexer is pure logic once the network is faked: when it
// refreshes, how it batches, when and why it declares a lease lost, and how
// it moves its stream. A fake clock makes every time exact.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Code, ConnectError } from "@connectrpc/connect";
import type { EndpointSlot } from "../src/cluster/endpoint-pool.js";
import { EndpointUnavailableError, LeaseNotFoundError, type EtcdError, type LeaseLostError } from "../src/errors.js";
import { KeepAliveStream, type KeepAliveRequest, type KeepAliveWire, type WireEvents } from "../src/lease/keep-alive.js";
import { KeptLease } from "../src/lease/kept-lease.js";
import { leaseIdHalves } from "../src/lease/keep-alive-codec.js";
import { markConnectionLost } from "../src/transport/failure.js";
import { FakeClock } from "./fake-clock.js";

class FakeWire implements KeepAliveWire {
  sent: bigint[][] = [];
  closed = false;
  constructor(
    readonly slot: EndpointSlot,
    readonly events: WireEvents,
  ) {}
  send(requests: readonly KeepAliveRequest[]): void {
    assert.ok(!this.closed, "no send on a closed wire");
    this.sent.push(requests.map((r) => r.id));
  }
  close(): void {
    this.closed = true;
  }
  /** Every request sent so far, flattened. */
  get ids(): bigint[] {
    return this.sent.flat();
  }
  /** Answers for one lease, as the wire reports it (the ID in halves). */
  respond(id: bigint, ttl: number): void {
    const [hi, lo] = leaseIdHalves(id);
    this.events.response(hi, lo, ttl);
  }
  answerAll(ttl: number): void {
    for (const id of this.ids) this.respond(id, ttl);
    this.sent = [];
  }
}

function setup(options: { slotMs?: number; leader?: () => Promise<EndpointSlot | undefined> } = {}) {
  const clock = new FakeClock();
  const slots = ["a:1", "b:1", "c:1"].map((address) => ({ endpoint: { address }, failures: 0, retryAt: 0 }) as unknown as EndpointSlot);
  const failed: Array<{ address: string; error: EtcdError }> = [];
  let pinned = 0;
  const pool = {
    slots,
    pick: () => slots[pinned]!,
    failed: (slot: EndpointSlot, error: EtcdError) => {
      failed.push({ address: slot.endpoint.address, error });
      if (slots[pinned] === slot) pinned = (pinned + 1) % slots.length;
    },
    succeeded: () => {},
  };
  const wires: FakeWire[] = [];
  const stream = new KeepAliveStream({
    pool,
    clock,
    ...(options.slotMs !== undefined ? { slotMs: options.slotMs } : {}),
    ...(options.leader !== undefined ? { locateLeader: options.leader } : {}),
    openWire: (slot, events) => {
      const w = new FakeWire(slot, events);
      wires.push(w);
      return w;
    },
  });
  const owner = { stop: (e: Parameters<KeepAliveStream["release"]>[0]) => stream.release(e), revoke: async () => {} };
  const keep = (id: bigint, ttl: number, startedAt = clock.now()) => stream.keep(id, ttl, startedAt, false, (e) => new KeptLease(e, owner)).handle;
  const lastWire = () => wires[wires.length - 1]!;
  return { clock, stream, wires, failed, keep, lastWire, slots };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

test("each lease is refreshed a third of its TTL after its answer; leases due together go out in one write", () => {
  const { clock, wires, keep, lastWire } = setup();
  const t0 = clock.now();
  const leases = Array.from({ length: 100 }, (_, i) => keep(BigInt(i + 1), 6));
  clock.advance(1890);
  assert.equal(wires.length, 0, "nothing is due before TTL/3 (less one slot)");
  clock.advance(110);
  assert.equal(wires.length, 1, "one stream for every lease");
  assert.equal(lastWire().sent.length, 1, "one write");
  assert.equal(lastWire().sent[0]!.length, 100);
  const answeredAt = clock.now();
  lastWire().answerAll(6);
  for (const l of leases) {
    assert.equal(l.state, "alive");
    assert.equal(l.ttl, 6);
  }
  clock.advance(1890);
  assert.equal(lastWire().sent.length, 0);
  clock.advance(110);
  assert.equal(lastWire().sent.length, 1, "the next refresh, TTL/3 after the answer");
  assert.ok(clock.now() - answeredAt <= 2000 && clock.now() - answeredAt > 1900);
  assert.ok(clock.now() - t0 < 6000);
});

test("a lease whose deadline passes unanswered is lost then, not before: keepalive-failed, since its first unanswered refresh", () => {
  const { clock, keep, failed } = setup();
  const t0 = clock.now();
  const lease = keep(7n, 3);
  let lostAt = 0;
  let lostWall = 0;
  lease.on("lost", () => {
    lostAt = clock.now();
    lostWall = Date.now();
  });
  for (let t = 0; t < 2990; t += 10) {
    clock.advance(10);
    assert.equal(lease.state, "alive", `still alive at +${clock.now() - t0} ms (deadline +3000)`);
  }
  clock.advance(200);
  assert.equal(lease.state, "lost");
  const err = lease.lostError!;
  assert.equal(err.reason, "keepalive-failed");
  assert.equal(err.leaseId, 7n);
  assert.ok(lostAt >= t0 + 3000 && lostAt <= t0 + 3100, `lost at +${lostAt - t0} ms`);
  // The refresh fell due at +1000 (sent up to one slot early) and was never answered.
  const since = err.since.getTime() - lostWall + (lostAt - t0);
  assert.ok(since >= 850 && since <= 1050, `since +${since} ms`);
  // Meanwhile the silent stream was given up on, each endpoint in turn, and the cause is kept.
  assert.ok(failed.length >= 1 && failed[0]!.error instanceof EndpointUnavailableError);
  assert.ok(err.cause instanceof EndpointUnavailableError, "the last stream failure is the cause");
});

test("TTL <= 0 from the server: not-found before the deadline, revoked when this client revoked it, expired after", async () => {
  const { clock, stream, keep, lastWire } = setup();
  const a = keep(1n, 6);
  const b = keep(2n, 6);
  const c = keep(3n, 6);
  clock.advance(2000);
  const w = lastWire();
  stream.entry(2n)!.revoking = true;
  w.respond(1n, 0);
  w.respond(2n, -1);
  assert.equal(a.lostError?.reason, "not-found");
  assert.equal(b.lostError?.reason, "revoked");
  // The deadline passes while the event loop is stalled; the answer is processed first.
  clock.jump(5000);
  w.respond(3n, 0);
  assert.equal(c.lostError?.reason, "expired");
  for (const l of [a, b, c]) {
    assert.equal(l.state, "lost");
    assert.equal(await l.lost, l.lostError, "the lost promise resolves with the same error");
  }
});

test("a broken stream reopens at once on the next endpoint with every unanswered refresh; then with backoff", () => {
  const { clock, wires, keep, failed, lastWire } = setup();
  keep(1n, 6);
  keep(2n, 6);
  clock.advance(2000);
  const w1 = lastWire();
  assert.deepEqual(w1.ids.sort(), [1n, 2n]);
  w1.respond(1n, 6);
  w1.events.end(markConnectionLost(new ConnectError("connection reset", Code.Unavailable)));
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.address, "a:1");
  clock.advance(1);
  assert.equal(wires.length, 2);
  const w2 = lastWire();
  assert.equal(w2.slot.endpoint.address, "b:1", "the pool moved away from the failed endpoint");
  assert.deepEqual(w2.ids, [2n], "the unanswered refresh is sent again at once; the answered one waits for its time");
  // A second failure in a row: reopened after a backoff (full jitter, at most 50 ms here).
  w2.events.end(markConnectionLost(new ConnectError("connection reset", Code.Unavailable)));
  clock.advance(51);
  assert.equal(wires.length, 3);
  assert.deepEqual(lastWire().ids, [2n]);
});

test("a slow stream is kept; one that stops answering is abandoned for another endpoint long before the TTL runs out", () => {
  const { clock, wires, keep, failed, lastWire } = setup();
  const leases = [keep(1n, 5), keep(2n, 5), keep(3n, 4)];
  // For 8 s the server answers every request, in order, 700 ms after it came
  // (a fifth of the shortest TTL, 800 ms, is allowed): slow, not hung.
  const queue: Array<{ id: bigint; at: number }> = [];
  let seen = 0;
  for (let t = 0; t < 8000; t += 50) {
    clock.advance(50);
    const w = lastWire();
    if (w === undefined) continue;
    const ids = w.ids;
    for (; seen < ids.length; seen++) queue.push({ id: ids[seen]!, at: clock.now() });
    while (queue.length > 0 && clock.now() - queue[0]!.at >= 700) w.respond(queue.shift()!.id, 5);
  }
  assert.equal(wires.length, 1, "a slow stream is not abandoned");
  assert.equal(failed.length, 0);
  for (const l of leases) assert.equal(l.state, "alive");
  // Then nothing at all: the stream is given up a fifth of the waiting lease's TTL (0.8-1 s) after the first unanswered request.
  const w1 = lastWire();
  const sentBefore = w1.ids.length;
  let firstUnanswered = 0;
  for (let t = 0; t < 3000 && wires.length === 1; t += 10) {
    clock.advance(10);
    if (firstUnanswered === 0 && (queue.length > 0 || w1.ids.length > sentBefore)) firstUnanswered = queue[0]?.at ?? clock.now();
  }
  assert.ok(w1.closed, "the silent stream is cancelled");
  const gaveUp = clock.now() - firstUnanswered;
  assert.ok(gaveUp >= 790 && gaveUp <= 1010, `gave up ${gaveUp} ms after the first unanswered request`);
  assert.equal(failed[0]?.address, "a:1");
  assert.match(failed[0]!.error.message, /no answer on the keep-alive stream/);
  assert.equal(wires.length, 2);
  assert.equal(lastWire().slot.endpoint.address, "b:1");
  assert.ok(lastWire().ids.length > 0, "unanswered refreshes go out on the new stream at once");
  lastWire().answerAll(5);
  for (const l of leases) assert.equal(l.state, "alive");
});

test("keepAliveOnce-style refreshes share the stream and resolve with the TTL, or fail with LeaseNotFoundError", async () => {
  const { stream, lastWire } = setup();
  const ok = stream.once(5n, Infinity, undefined);
  const gone = stream.once(6n, Infinity, undefined);
  await Promise.resolve();
  const w = lastWire();
  assert.deepEqual(w.ids.sort(), [5n, 6n], "sent together on one stream");
  w.respond(5n, 9);
  w.respond(6n, -1);
  assert.equal((await ok).ttl, 9);
  await assert.rejects(gone, LeaseNotFoundError);
  await tick();
  assert.ok(w.closed, "with nothing left to keep alive, the stream closes");
});

test("stop() ends a lease's refreshes; close() ends everything and leaves no timer", async () => {
  const { clock, stream, keep, lastWire } = setup();
  const a = keep(1n, 3);
  const b = keep(2n, 3);
  clock.advance(1000);
  lastWire().answerAll(3);
  a.stop();
  assert.equal(a.state, "stopped");
  clock.advance(1000);
  assert.deepEqual(lastWire().ids, [2n], "a stopped lease is not refreshed");
  lastWire().answerAll(3);
  const c = keep(3n, 3);
  let settled = false;
  void a.lost.then(() => (settled = true));
  stream.close();
  assert.equal(b.state, "stopped");
  assert.equal(c.state, "stopped");
  assert.ok(lastWire().closed);
  assert.equal(clock.pending, 0, "no timer left");
  clock.advance(10_000);
  await tick();
  assert.equal(settled, false, "stopping is not a loss");
  await assert.rejects(stream.once(1n, Infinity, undefined), { name: "ClientClosedError" });
});

test("a busy event loop: answers already waiting when a timer fires are read before any verdict", () => {
  const { clock, wires, keep, failed, lastWire } = setup();
  const lease = keep(1n, 3);
  clock.advance(1000);
  const w = lastWire();
  assert.deepEqual(w.ids, [1n]);
  // The process stalls past the stream's allowance and the lease's deadline; the answer
  // came in meanwhile and waits in the socket. Timers run first in the next turn.
  clock.jump(2500);
  clock.afterIo(() => w.respond(1n, 3));
  clock.advance(0);
  assert.equal(lease.state, "alive", "not reported lost");
  assert.equal(wires.length, 1, "the stream was not given up");
  assert.equal(failed.length, 0);
});

test("the stream moves to the leader once it is found, taking every unanswered refresh along", async () => {
  let slots: EndpointSlot[] = [];
  let asked = 0;
  const { clock, wires, keep, lastWire, slots: all } = setup({
    leader: async () => {
      asked++;
      return slots[2];
    },
  });
  slots = all;
  keep(1n, 6);
  keep(2n, 6);
  clock.advance(2000);
  assert.equal(wires[0]!.slot.endpoint.address, "a:1", "first on the pinned endpoint");
  assert.deepEqual(wires[0]!.ids.sort(), [1n, 2n]);
  await tick();
  assert.equal(asked, 1);
  assert.ok(wires[0]!.closed);
  assert.equal(wires.length, 2);
  assert.equal(lastWire().slot.endpoint.address, "c:1", "then on the leader");
  assert.deepEqual(lastWire().ids.sort(), [1n, 2n], "unanswered refreshes are sent again there");
  lastWire().answerAll(6);
  // Later streams go straight to the leader; a failure there makes it look again.
  lastWire().events.end(markConnectionLost(new ConnectError("reset", Code.Unavailable)));
  clock.advance(6000);
  assert.ok(asked >= 2, "looked for the leader again after its stream failed");
});

test("a lost lease is reported to every listener, once", () => {
  const { clock, keep } = setup();
  const lease = keep(1n, 2);
  const seen: LeaseLostError[] = [];
  lease.on("lost", (e) => seen.push(e));
  clock.advance(10_000);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.reason, "keepalive-failed");
});
