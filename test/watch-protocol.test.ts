// Watch protocol edge cases against fake node:http2 servers: metadata,
// moving to another member and resuming, refused creates answered with
// watch ID -1, progress notifications as resume points (or not), fragments,
// slow-consumer cuts at revision boundaries, compaction, duplicates.
import { afterEach, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startFakeWatchServer, putEvent, type FakeWatchServer, type FakeWatchStream, type WatchResponseInit } from "./fake-watch-server.js";
import { take, waitFor, within } from "./watch-support.js";
import { client } from "./support.js";
import { CompactedError, EtcdError, PermissionDeniedError, type Etcd } from "../src/index.js";

let a: FakeWatchServer;
let b: FakeWatchServer;
let etcd: Etcd;

beforeEach(async () => {
  a = await startFakeWatchServer();
  b = await startFakeWatchServer();
  etcd = client([a.endpoint, b.endpoint], { dialTimeoutMs: 1000, keepAliveIntervalMs: 0 });
});
afterEach(async () => {
  etcd.close();
  await Promise.all([a.close(), b.close()]);
});

/**
 * Answers requests on `s` as they arrive: `onCreate` decides the answer to
 * each create (default: created, as etcd does); cancels get canceled.
 */
function answer(s: FakeWatchStream, onCreate?: (watchId: bigint, key: string) => WatchResponseInit | undefined, revision = 9n): void {
  let handled = 0;
  const tick = setInterval(() => {
    for (; handled < s.requests.length; handled++) {
      const r = s.requests[handled]!;
      if (r.requestUnion.case === "createRequest") {
        const c = r.requestUnion.value;
        s.send(onCreate?.(c.watchId, new TextDecoder().decode(c.key)) ?? { watchId: c.watchId, created: true, header: { revision } });
      }
      if (r.requestUnion.case === "cancelRequest") s.send({ watchId: r.requestUnion.value.watchId, canceled: true });
    }
  }, 5);
  s.stream.once("close", () => clearInterval(tick));
}

function autoAnswer(s: FakeWatchStream, revision = 9n): void {
  answer(s, undefined, revision);
}

describe("watch protocol", () => {
  test("streams carry hasleader by default, and not with requireLeader: false", async () => {
    a.onStream = (s) => autoAnswer(s);
    const w1 = etcd.watch("k");
    await within(w1.ready(), 5000, "first");
    const w2 = etcd.watch("k", { requireLeader: false });
    await within(w2.ready(), 5000, "second");
    assert.equal(a.streams.length, 2);
    assert.equal(a.streams[0]!.headers["hasleader"], "true");
    assert.equal(a.streams[1]!.headers["hasleader"], undefined);
  });

  test("'no leader' ends the stream; the watcher moves to the other member and resumes after its last revision", async () => {
    a.onStream = (s) => {
      void (async () => {
        const [req] = await s.waitRequests(1);
        const id = (req!.requestUnion.value as { watchId: bigint }).watchId;
        s.send({ watchId: id, created: true, header: { revision: 9n } });
        // Two revisions in one response: two batches.
        s.send({ watchId: id, events: [putEvent("k", 10n, "a"), putEvent("k", 11n, "b")], header: { revision: 11n } });
        setTimeout(() => s.fail(14, "etcdserver: no leader"), 50);
      })();
    };
    b.onStream = (s) => {
      void (async () => {
        const [req] = await s.waitRequests(1);
        const id = (req!.requestUnion.value as { watchId: bigint }).watchId;
        s.send({ watchId: id, created: true, header: { revision: 12n } });
        // A member behind or a careless server may send what was delivered already: never twice.
        s.send({ watchId: id, events: [putEvent("k", 11n, "b"), putEvent("k", 12n, "c")], header: { revision: 12n } });
      })();
    };
    const w = etcd.watch("k");
    const got = await take(w, 3);
    assert.deepEqual(
      got.map((x) => `${x.revision}:${x.events[0]!.text}`),
      ["10:a", "11:b", "12:c"],
    );
    const onB = await b.waitStreams(1);
    assert.equal(onB.creates()[0]!.startRevision, 12n, "resumed from the last delivered revision + 1");
    assert.equal(onB.headers["hasleader"], "true");
    assert.ok(etcd.watches.info().streams[0]!.lastError instanceof EtcdError);
  });

  test("creates are pipelined; a refused create answered with watch ID -1 is matched to its watcher in order", async () => {
    a.onStream = (s) => {
      void (async () => {
        const reqs = await s.waitRequests(3);
        // All three creates arrived before any answer: no round trip per watcher.
        const ids = reqs.map((r) => (r.requestUnion.value as { watchId: bigint }).watchId);
        assert.equal(new Set(ids).size, 3);
        s.send({ watchId: ids[0]!, created: true });
        s.send({ watchId: -1n, created: true, canceled: true, cancelReason: "mvcc: watcher range is empty" });
        s.send({ watchId: ids[2]!, created: true });
        s.send({ watchId: ids[2]!, events: [putEvent("c", 20n)] });
      })();
    };
    const [w1, w2, w3] = ["a", "b", "c"].map((k) => etcd.watch(k));
    await within(w1!.ready(), 5000, "w1");
    await assert.rejects(within(w2!.ready(), 5000, "the refusal"), (e: unknown) => e instanceof EtcdError && /range is empty/.test(e.message));
    assert.equal(w2!.state, "closed");
    await within(w3!.ready(), 5000, "w3");
    assert.equal((await take(w3!, 1))[0]!.revision, 20n);
  });

  test("a permission refusal is retried once on a fresh stream, then reported as PermissionDeniedError", async () => {
    const reason = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
    let streams = 0;
    a.onStream = (s) => {
      const n = ++streams;
      answer(s, (_, key) => (key === "secret" || (key === "flaky" && n === 1) ? { watchId: -1n, created: true, canceled: true, cancelReason: reason } : undefined));
    };
    const flaky = etcd.watch("flaky");
    const secret = etcd.watch("secret");
    await within(flaky.ready(), 5000, "the watcher refused once");
    await assert.rejects(within(secret.ready(), 5000, "the refusal"), PermissionDeniedError);
    assert.ok(streams >= 2, "a fresh stream was opened after the refusal");
  });

  test("a stream-wide progress notification is delivered but is not a resume point; a watcher's own is", async () => {
    a.onStream = (s) => {
      void (async () => {
        const reqs = await s.waitRequests(2);
        const [own, shared] = reqs.map((r) => (r.requestUnion.value as { watchId: bigint }).watchId);
        s.send({ watchId: own!, created: true, header: { revision: 9n } });
        s.send({ watchId: shared!, created: true, header: { revision: 9n } });
        s.send({ watchId: own!, events: [putEvent("own", 10n)] });
        s.send({ watchId: shared!, events: [putEvent("shared", 10n)] });
        // Its own progress notification: nothing for "own" up to 50.
        s.send({ watchId: own!, header: { revision: 50n } });
        // A stream-wide one (the answer to a progress request): may overtake events on etcd 3.4.
        s.send({ watchId: -1n, header: { revision: 60n } });
        setTimeout(() => s.fail(14, "etcdserver: no leader"), 50);
      })();
    };
    b.onStream = (s) => autoAnswer(s, 70n);
    const own = etcd.watch("own", { progressNotify: true });
    const shared = etcd.watch("shared", { progressNotify: true });
    const o = await take(own, 3);
    const sh = await take(shared, 2);
    assert.deepEqual(
      o.map((x) => `${x.revision}${x.progress ? "p" : ""}`),
      ["10", "50p", "60p"],
    );
    assert.deepEqual(
      sh.map((x) => `${x.revision}${x.progress ? "p" : ""}`),
      ["10", "60p"],
    );
    const onB = await b.waitStreams(1);
    await onB.waitRequests(2);
    const starts = new Map(onB.creates().map((c) => [c.key, c.startRevision]));
    assert.equal(starts.get("own"), 51n);
    assert.equal(starts.get("shared"), 11n);
  });

  test("fragments are put back together into one batch", async () => {
    a.onStream = (s) => {
      void (async () => {
        const [req] = await s.waitRequests(1);
        const id = (req!.requestUnion.value as { watchId: bigint }).watchId;
        s.send({ watchId: id, created: true });
        s.send({ watchId: id, fragment: true, events: [putEvent("k1", 30n), putEvent("k2", 30n)] });
        s.send({ watchId: id, fragment: true, events: [putEvent("k3", 30n)] });
        s.send({ watchId: id, events: [putEvent("k4", 30n), putEvent("k5", 31n)] });
      })();
    };
    const w = etcd.watch("k", { prefix: true, fragment: true });
    const got = await take(w, 2);
    assert.deepEqual(
      got.map((x) => `${x.revision}:${x.events.map((e) => e.keyText).join(",")}`),
      ["30:k1,k2,k3,k4", "31:k5"],
    );
  });

  test("a slow consumer's buffer is cut at a revision boundary; the watcher resumes at the next revision", async () => {
    a.onStream = (s) => {
      void (async () => {
        const [req] = await s.waitRequests(1);
        const id = (req!.requestUnion.value as { watchId: bigint }).watchId;
        s.send({ watchId: id, created: true });
        s.send({ watchId: id, events: [putEvent("k", 5n), putEvent("k", 6n), putEvent("k", 7n), putEvent("k", 8n)] });
        await s.waitRequests(3);
        // Answer the re-create from where the consumer stopped.
        const again = s.creates()[1]!;
        s.send({ watchId: again.watchId, created: true });
        s.send({ watchId: again.watchId, events: [putEvent("k", 7n), putEvent("k", 8n)] });
      })();
    };
    const w = etcd.watch("k", { maxBufferedEvents: 2 });
    const s = await a.waitStreams(1);
    await waitFor("the pause", () => w.state === "paused", 5000);
    assert.equal(w.bufferedEvents, 2);
    const got = await take(w, 4);
    assert.deepEqual(
      got.map((x) => x.revision),
      [5n, 6n, 7n, 8n],
    );
    assert.equal(s.cancels().length, 1);
    assert.equal(s.creates()[1]!.startRevision, 7n);
  });

  test("compaction ends the watcher with CompactedError and cancels it on the server", async () => {
    a.onStream = (s) =>
      answer(s, (watchId, key) => {
        if (key === "old") setTimeout(() => s.send({ watchId, canceled: true, compactRevision: 42n }), 20);
        return undefined;
      });
    const other = etcd.watch("other");
    await within(other.ready(), 5000, "the other watcher");
    const w = etcd.watch("old", { startRevision: 3n });
    const err = await within(w.next(), 5000, "the error").then(
      () => assert.fail("expected CompactedError"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CompactedError);
    assert.equal(err.compactRevision, 42n);
    // etcd keeps a compacted watcher until it is cancelled: the client cancels it (the stream lives on for the other).
    const s = a.streams[0]!;
    await s.waitRequests(3);
    assert.deepEqual(s.cancels(), [s.creates()[1]!.watchId]);
    assert.equal(other.state, "watching");
  });

  test("creates left unanswered past the request deadline: the stream is opened again", async () => {
    // The first stream swallows the creates (as etcd 3.4 does after refusing a watch for permissions).
    a.onStream = (s) => {
      if (a.streams.length > 1) autoAnswer(s);
    };
    const c = client([a.endpoint], { requestTimeoutMs: 500, keepAliveIntervalMs: 0 });
    try {
      const w = c.watch("k");
      await within(w.ready(), 5000, "created on a new stream");
      assert.equal(a.streams.length, 2);
      // The stream's opening deadline and the creates' deadline are both 500 ms here: whichever fires first reopens it.
      assert.match(String(c.watches.info().streams[0]!.lastError), /unanswered for 500 ms|deadline of 500 ms exceeded/);
    } finally {
      c.close();
    }
  });

  test("a member that accepts streams and drops them at once is retried with backoff, not in a tight loop", async () => {
    const c = client([a.endpoint], { keepAliveIntervalMs: 0 });
    a.onStream = (s) => {
      answer(s);
      setTimeout(() => s.fail(14, "etcdserver: server stopped"), 5);
    };
    try {
      c.watch("k");
      await new Promise((r) => setTimeout(r, 1500));
      const n = a.streams.length;
      assert.ok(n >= 3 && n <= 20, `${n} streams in 1.5 s`);
    } finally {
      c.close();
    }
  });

  test("a stream refused before it started (REFUSED_STREAM) is opened elsewhere with its creates", async () => {
    a.onStream = (s) => s.refuse();
    b.onStream = (s) => autoAnswer(s);
    const ws = ["x", "y", "z"].map((k) => etcd.watch(k));
    await within(Promise.all(ws.map((w) => w.ready())), 5000, "created on the other member");
    const onB = await b.waitStreams(1);
    assert.deepEqual(onB.creates().map((c) => c.key).sort(), ["x", "y", "z"]);
  });
});
