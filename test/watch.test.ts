// Watches against real members: options, progress, fragments, compaction,
// future revisions, slow consumers, cancelling many at once, and closing.
// Every wait is bounded.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { startEtcd, type EtcdMember } from "./harness/index.js";
import { client, transportUnderTest, uniquePrefix, useMember } from "./support.js";
import { describeBatches, nextEvents, serverWatchers, take, waitFor, within } from "./watch-support.js";
import {
  AbortedError,
  ClientClosedError,
  CompactedError,
  Compare,
  EtcdError,
  InvalidKeyError,
  InvalidOptionError,
  Op,
  type Etcd,
  type WatchBatch,
  type WatchEvent,
} from "../src/index.js";

let member: EtcdMember;
let etcd: Etcd;

useMember((m, newClient) => {
  member = m;
  etcd = newClient();
});

/** Runs an ES module script in a child process that must exit by itself with code 0; returns its stdout. */
async function runChild(script: string): Promise<string> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await within(
    new Promise<number | null>((resolve) => child.once("exit", resolve)),
    15_000,
    "the child to exit by itself",
  ).catch((e: unknown) => {
    child.kill("SIGKILL");
    throw e;
  });
  assert.equal(code, 0, err);
  return out.trim();
}

/**
 * The member's watcher count once it agrees with what this test's client has
 * on the server: cancels of earlier tests may still be on their way.
 */
async function settledServerWatchers(): Promise<number> {
  const ours = () => etcd.watches.info().streams.reduce((n, s) => n + s.onServer, 0);
  await waitFor("the server's watchers to match the client's", async () => (await serverWatchers(member.endpoint)) === ours(), 5000);
  return ours();
}

describe("watch: events and options", () => {
  test("puts and deletes arrive as batches of one revision each, in order", async () => {
    const p = uniquePrefix("basic");
    const w = etcd.watch(p, { prefix: true });
    try {
      await within(w.ready(), 5000, "created");
      assert.equal(w.state, "watching");
      const a = await etcd.put(p + "a", "1");
      const b = await etcd.put(p + "b", "2");
      const d = await etcd.delete(p + "a");
      const got = await take(w, 3);
      assert.deepEqual(describeBatches(got), [`${a.revision}:put ${p}a=1`, `${b.revision}:put ${p}b=2`, `${d.revision}:delete ${p}a=`]);
      const put = got[0]!.events[0]!;
      assert.equal(put.kv.createRevision, a.revision);
      assert.equal(put.kv.version, 1n);
      assert.equal(put.revision, a.revision);
      assert.equal(got[2]!.events[0]!.kv.modRevision, d.revision);
      assert.equal(w.revision, d.revision);
    } finally {
      await w.close();
    }
  });

  test("a transaction's changes arrive together in one batch", async () => {
    const p = uniquePrefix("txn");
    const w = etcd.watch(p, { prefix: true });
    try {
      await w.ready();
      await etcd.put(p + "old", "x");
      const res = await etcd
        .txn()
        .if(Compare.version(p + "x", "=", 0))
        .then(Op.put(p + "x", "1"), Op.put(p + "y", "2"), Op.delete(p + "old"), Op.put(p + "z", "3"))
        .commit();
      assert.ok(res.succeeded);
      const [first, second] = await take(w, 2);
      assert.equal(first!.events.length, 1);
      assert.equal(second!.revision, res.raw.header?.revision);
      assert.deepEqual(
        second!.events.map((e) => `${e.type} ${e.keyText}`),
        [`put ${p}x`, `put ${p}y`, `delete ${p}old`, `put ${p}z`],
      );
    } finally {
      await w.close();
    }
  });

  test("key, prefix, fromKey and rangeEnd select what is watched", async () => {
    const p = uniquePrefix("ranges");
    const single = etcd.watch(p + "b");
    const prefix = etcd.watch(p + "b", { prefix: true });
    const fromKey = etcd.watch(p + "c", { fromKey: true });
    const range = etcd.watch(p + "a", { rangeEnd: p + "c" });
    const all = [single, prefix, fromKey, range];
    try {
      await Promise.all(all.map((w) => w.ready()));
      for (const k of ["a", "b", "bb", "c", "d"]) await etcd.put(p + k, k);
      const keys = async (w: (typeof all)[number], n: number) => (await take(w, n)).map((b) => b.events[0]!.keyText.slice(p.length));
      assert.deepEqual(await keys(single, 1), ["b"]);
      assert.deepEqual(await keys(prefix, 2), ["b", "bb"]);
      // fromKey watches to the end of the keyspace: only its own keys are written here.
      assert.deepEqual(await keys(fromKey, 2), ["c", "d"]);
      assert.deepEqual(await keys(range, 3), ["a", "b", "bb"]);
      // Nothing else arrives for the narrow ones.
      await etcd.put(p + "b", "again");
      assert.deepEqual(await keys(single, 1), ["b"]);
    } finally {
      await Promise.all(all.map((w) => w.close()));
    }
  });

  test("startRevision replays history from that revision", async () => {
    const p = uniquePrefix("history");
    const r1 = await etcd.put(p + "k", "1");
    await etcd.put(p + "k", "2");
    await etcd.put(p + "k", "3");
    const w = etcd.watch(p + "k", { startRevision: r1.revision + 1n });
    try {
      const got = await take(w, 2);
      assert.deepEqual(
        got.map((b) => b.events[0]!.text),
        ["2", "3"],
      );
    } finally {
      await w.close();
    }
  });

  test("prevKv gives the pair before each change", async () => {
    const p = uniquePrefix("prevkv");
    await etcd.put(p + "k", "before");
    const w = etcd.watch(p + "k", { prevKv: true });
    try {
      await w.ready();
      await etcd.put(p + "k", "after");
      await etcd.delete(p + "k");
      const [put, del] = await take(w, 2);
      assert.equal(put!.events[0]!.prevKv?.text, "before");
      assert.equal(put!.events[0]!.text, "after");
      assert.equal(del!.events[0]!.type, "delete");
      assert.equal(del!.events[0]!.prevKv?.text, "after");
    } finally {
      await w.close();
    }
  });

  test("noPut and noDelete filter on the server", async () => {
    const p = uniquePrefix("filters");
    const onlyDeletes = etcd.watch(p, { prefix: true, noPut: true });
    const onlyPuts = etcd.watch(p, { prefix: true, noDelete: true });
    try {
      await Promise.all([onlyDeletes.ready(), onlyPuts.ready()]);
      await etcd.put(p + "a", "1");
      await etcd.delete(p + "a");
      await etcd.put(p + "b", "2");
      await etcd.delete(p + "b");
      assert.deepEqual(
        (await take(onlyDeletes, 2)).map((b) => `${b.events[0]!.type} ${b.events[0]!.keyText.slice(p.length)}`),
        ["delete a", "delete b"],
      );
      assert.deepEqual(
        (await take(onlyPuts, 2)).map((b) => `${b.events[0]!.type} ${b.events[0]!.keyText.slice(p.length)}`),
        ["put a", "put b"],
      );
    } finally {
      await Promise.all([onlyDeletes.close(), onlyPuts.close()]);
    }
  });

  test("a future startRevision waits for the store to get there", async () => {
    const p = uniquePrefix("future");
    const now = (await etcd.put(p + "k", "0")).revision;
    const w = etcd.watch(p + "k", { startRevision: now + 3n });
    try {
      await w.ready();
      const revs: bigint[] = [];
      for (let i = 1; i <= 4; i++) revs.push((await etcd.put(p + "k", String(i))).revision);
      const got = await take(w, 2);
      // Puts at now+1 and now+2 are before the start: the first batch is the one at now+3.
      assert.deepEqual(
        got.map((b) => [b.revision, b.events[0]!.text]),
        [
          [now + 3n, "3"],
          [now + 4n, "4"],
        ],
      );
    } finally {
      await w.close();
    }
  });

  test("event listeners get puts and deletes without iterating", async () => {
    const p = uniquePrefix("listeners");
    const w = etcd.watch(p, { prefix: true });
    const seen: string[] = [];
    let batches = 0;
    const onPut = (e: WatchEvent) => seen.push(`put ${e.keyText.slice(p.length)}=${e.text}`);
    const onDelete = (e: WatchEvent) => seen.push(`delete ${e.keyText.slice(p.length)}`);
    const onBatch = () => batches++;
    w.on("put", onPut);
    w.on("delete", onDelete);
    w.on("batch", onBatch);
    let once = 0;
    w.once("put", () => once++);
    let ended = false;
    w.on("end", () => (ended = true));
    try {
      await w.ready();
      await etcd.put(p + "a", "1");
      await etcd.delete(p + "a");
      await waitFor("two events", () => seen.length === 2, 5000);
      assert.deepEqual(seen, ["put a=1", "delete a"]);
      assert.equal(batches, 2);
      // Listeners take the batches: nothing piles up for an iterator nobody runs.
      assert.equal(w.bufferedEvents, 0);
      assert.equal(once, 1);
      // Without data listeners, batches wait for the iterator again.
      w.off("put", onPut).off("delete", onDelete).off("batch", onBatch);
      const later = await etcd.put(p + "b", "2");
      assert.deepEqual(describeBatches(await take(w, 1)), [`${later.revision}:put ${p}b=2`]);
      assert.equal(seen.length, 2);
    } finally {
      await w.close();
    }
    assert.ok(ended);
  });

  test("bad input is refused before anything is sent", () => {
    assert.throws(() => etcd.watch(""), InvalidKeyError);
    assert.throws(() => etcd.watch("k", { startRevision: -1n }), InvalidOptionError);
    assert.throws(() => etcd.watch("k", { startRevision: 1.5 }), InvalidOptionError);
    assert.throws(() => etcd.watch("k", { prefix: true, fromKey: true }), InvalidOptionError);
    assert.throws(() => etcd.watch("k", { maxBufferedEvents: 0 }), InvalidOptionError);
    assert.throws(() => etcd.watch(42 as unknown as string), InvalidKeyError);
  });

  test("one stream per distinct metadata carries every watcher", async () => {
    const p = uniquePrefix("streams");
    const leader = Array.from({ length: 50 }, (_, i) => etcd.watch(`${p}l${i}`));
    const any = Array.from({ length: 20 }, (_, i) => etcd.watch(`${p}a${i}`, { requireLeader: false }));
    try {
      await Promise.all([...leader, ...any].map((w) => w.ready()));
      const info = etcd.watches.info();
      const byLeader = new Map(info.streams.map((s) => [s.requireLeader, s]));
      assert.equal(byLeader.get(true)?.watchers, 50);
      assert.equal(byLeader.get(false)?.watchers, 20);
      assert.equal(byLeader.get(true)?.state, "open");
      await etcd.put(`${p}a7`, "x");
      assert.equal((await nextEvents(any[7]!)).events[0]!.text, "x");
    } finally {
      await Promise.all([...leader, ...any].map((w) => w.close()));
    }
  });
});

describe("watch: progress and fragments", () => {
  let special: EtcdMember;
  let c: Etcd;
  before(async () => {
    // Progress notifications every 500 ms; responses over 8 KiB are fragmented for watchers that allow it.
    special = await startEtcd({ extraArgs: ["--experimental-watch-progress-notify-interval", "500ms", "--max-request-bytes", "8192"] });
    c = client(special.endpoint);
  });
  after(async () => {
    c?.close();
    await special?.stop();
  });

  test("progressNotify: idle watchers get progress batches, and resume after them", async () => {
    const p = uniquePrefix("progress");
    const w = c.watch(p + "k", { progressNotify: true });
    try {
      await w.ready();
      // Writes elsewhere move the store on; the watcher sees none of them, only progress.
      const other = await c.put(p + "other", "x");
      let b: WatchBatch;
      do {
        [b] = (await take(w, 1, 5000)) as [WatchBatch];
        assert.ok(b.progress, "only progress arrives");
        assert.equal(b.events.length, 0);
      } while (b.revision < other.revision);
      assert.ok(w.revision >= other.revision, "a progress notification of its own is a resume point");
    } finally {
      await w.close();
    }
  });

  test("requestProgress() answers with the store revision", async () => {
    const p = uniquePrefix("reqprogress");
    const w = c.watch(p + "k");
    try {
      await w.ready();
      const at = (await c.put(p + "elsewhere", "1")).revision;
      w.requestProgress();
      const [b] = await take(w, 1, 5000);
      assert.ok(b!.progress);
      assert.ok(b!.revision >= at, `progress at ${b!.revision} >= ${at}`);
    } finally {
      await w.close();
    }
  });

  test("fragment: a revision larger than the server's message limit arrives whole, in one batch", async () => {
    const p = uniquePrefix("fragment");
    // etcd fragments responses over --max-request-bytes plus 512 KiB of gRPC allowance:
    // one delete of 100 keys with 7000-byte previous values is about 700 KB in one revision.
    const value = "v".repeat(7000);
    for (let i = 0; i < 100; i++) await c.put(`${p}${String(i).padStart(3, "0")}`, value);
    const w = c.watch(p, { prefix: true, prevKv: true, fragment: true });
    // The same revision seen on the raw stream, to show the server did fragment it.
    const ac = new AbortController();
    const enc = new TextEncoder();
    const raw = c.raw.watch.watch(
      (async function* () {
        yield { requestUnion: { case: "createRequest" as const, value: { key: enc.encode(p), rangeEnd: enc.encode(p.slice(0, -1) + "0"), prevKv: true, fragment: true } } };
        await new Promise((r) => setTimeout(r, 15_000));
      })(),
      { signal: ac.signal },
    );
    try {
      await w.ready();
      const it = raw[Symbol.asyncIterator]();
      assert.ok((await within(it.next(), 5000, "raw created")).value?.created);
      const del = await c.delete(p, { prefix: true });
      const [batch] = await take(w, 1);
      assert.equal(batch!.revision, del.revision);
      assert.equal(batch!.events.length, 100);
      assert.ok(batch!.events.every((e) => e.type === "delete" && e.prevKv?.text === value));
      let fragments = 0;
      for (;;) {
        const r = await within(it.next(), 5000, "raw fragment");
        assert.ok(!r.done);
        fragments++;
        if (!r.value.fragment) break;
      }
      assert.ok(fragments > 1, `the server sent ${fragments} fragments`);
      // Nothing else follows for the watcher: the fragments made exactly one batch.
      await c.put(p + "after", "x");
      assert.equal((await take(w, 1))[0]!.events[0]!.keyText, p + "after");
    } finally {
      ac.abort();
      await w.close();
    }
  });
});

describe("watch: compaction", () => {
  test("a watch starting at a compacted revision ends with CompactedError carrying compactRevision", async () => {
    const p = uniquePrefix("compacted-start");
    const first = await etcd.put(p + "k", "1");
    const last = await etcd.put(p + "k", "2");
    await etcd.compact(last.revision);
    const w = etcd.watch(p + "k", { startRevision: first.revision });
    const err = await within(w.next(), 5000, "the error").then(
      () => assert.fail("expected CompactedError"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof CompactedError, String(err));
    assert.equal(err.compactRevision, last.revision);
    assert.equal(w.state, "closed");
    assert.equal(w.error, err);
    // The error is reported once; then the iterator is done.
    assert.deepEqual(await w.next(), { value: undefined, done: true });
  });

  test("compaction while a watcher is behind ends it with CompactedError, after what it had", async () => {
    const p = uniquePrefix("compacted-during");
    // A consumer that stops reading: past 5 buffered events the watcher is cancelled on the server.
    const w = etcd.watch(p + "k", { maxBufferedEvents: 5 });
    try {
      await w.ready();
      const revs: bigint[] = [];
      for (let i = 0; i < 20; i++) revs.push((await etcd.put(p + "k", String(i))).revision);
      await waitFor("the watcher to pause", () => w.state === "paused", 5000);
      // History the paused watcher still needs is compacted away.
      await etcd.compact(revs[15]!);
      const seen: string[] = [];
      let error: unknown;
      try {
        for (;;) {
          const r = await within(w.next(), 5000, "next batch");
          if (r.done) break;
          seen.push(r.value.events[0]!.text);
        }
      } catch (e) {
        error = e;
      }
      // It delivers what it had buffered, resumes, and finds its next revision compacted.
      assert.deepEqual(seen, ["0", "1", "2", "3", "4"]);
      assert.ok(error instanceof CompactedError, String(error));
      assert.equal(error.compactRevision, revs[15]);
    } finally {
      await w.close();
    }
  });
});

describe("watch: slow consumers", () => {
  test("a slow consumer is paused past maxBufferedEvents and resumed without gaps or repeats", async () => {
    const p = uniquePrefix("slow");
    const w = etcd.watch(p, { prefix: true, maxBufferedEvents: 10 });
    try {
      await w.ready();
      const baseline = await settledServerWatchers();
      const revs: bigint[] = [];
      for (let i = 0; i < 60; i++) revs.push((await etcd.put(`${p}${i % 7}`, String(i))).revision);
      await waitFor("pause", () => w.state === "paused", 5000);
      assert.ok(w.bufferedEvents <= 10, `buffered ${w.bufferedEvents}`);
      // Paused means cancelled on the server: it holds one watcher fewer.
      await waitFor("the server to drop the watcher", async () => (await serverWatchers(member.endpoint)) === baseline - 1, 5000);
      const got = await take(w, 60, 15_000);
      assert.deepEqual(
        got.map((b) => b.revision),
        revs,
      );
      assert.deepEqual(
        got.map((b) => b.events[0]!.text),
        revs.map((_, i) => String(i)),
      );
      await waitFor("watching again", () => w.state === "watching", 5000);
    } finally {
      await w.close();
    }
  });
});

describe("watch: ending", () => {
  test("breaking out of the loop cancels the watcher on the server", async () => {
    const p = uniquePrefix("break");
    const base = await settledServerWatchers();
    const w = etcd.watch(p + "k");
    await w.ready();
    assert.equal(await serverWatchers(member.endpoint), base + 1);
    await etcd.put(p + "k", "1");
    for await (const b of w) {
      assert.equal(b.events[0]!.text, "1");
      break;
    }
    assert.equal(w.state, "closed");
    await waitFor("the server to drop the watcher", async () => (await serverWatchers(member.endpoint)) === base, 5000);
  });

  test("an AbortSignal ends the loop cleanly and cancels the watcher", async () => {
    const p = uniquePrefix("abort");
    const base = await settledServerWatchers();
    const ac = new AbortController();
    const w = etcd.watch(p + "k", { signal: ac.signal });
    await w.ready();
    const loop = (async () => {
      let n = 0;
      for await (const _ of w) n++;
      return n;
    })();
    const put = await etcd.put(p + "k", "1");
    await waitFor("the loop to take the event", () => w.revision >= put.revision && w.bufferedEvents === 0, 5000);
    ac.abort();
    assert.equal(await within(loop, 5000, "the loop to end"), 1);
    await waitFor("the server to drop the watcher", async () => (await serverWatchers(member.endpoint)) === base, 5000);
    // An already aborted signal gives a watcher that is over at once.
    const late = etcd.watch(p + "k", { signal: ac.signal });
    assert.equal(late.state, "closed");
    await assert.rejects(late.ready(), AbortedError);
    assert.deepEqual(await late.next(), { value: undefined, done: true });
  });

  test("cancelling 1,000 watchers at once: every cancel confirmed, the stream goes on", async () => {
    const p = uniquePrefix("thousand");
    const base = await settledServerWatchers();
    const keep = etcd.watch(p + "keep");
    const ws = Array.from({ length: 1000 }, (_, i) => etcd.watch(`${p}${i}`));
    await within(Promise.all([keep.ready(), ...ws.map((w) => w.ready())]), 15_000, "1000 creates");
    assert.equal(await serverWatchers(member.endpoint), base + 1001);
    const opens = etcd.watches.info().streams.find((s) => s.requireLeader)!.opens;
    await within(Promise.all(ws.map((w) => w.close())), 15_000, "1000 cancels");
    assert.ok(ws.every((w) => w.state === "closed"));
    await waitFor("the server to drop them", async () => (await serverWatchers(member.endpoint)) === base + 1, 5000);
    // The same stream still carries the remaining watcher.
    await etcd.put(p + "keep", "still here");
    assert.equal((await nextEvents(keep)).events[0]!.text, "still here");
    assert.equal(etcd.watches.info().streams.find((s) => s.requireLeader)!.opens, opens);
    await keep.close();
  });

  test("closing the client ends every loop and lets the process exit by itself", async () => {
    const index = new URL("../src/index.js", import.meta.url).href;
    const script = `
      import { Etcd } from ${JSON.stringify(index)};
      const etcd = new Etcd({ endpoints: [${JSON.stringify(member.endpoint)}], transport: ${JSON.stringify(transportUnderTest)} });
      const ws = Array.from({ length: 200 }, (_, i) => etcd.watch("exit/" + i));
      await Promise.all(ws.map((w) => w.ready()));
      const mirror = etcd.mirror("exit/");
      await mirror.ready;
      // A client whose endpoint refuses connections: its watch stream sits in backoff, with a timer.
      const lost = new Etcd({ endpoints: ["127.0.0.1:1"], transport: ${JSON.stringify(transportUnderTest)} });
      const orphan = lost.watch("x");
      const orphanReady = orphan.ready();
      const loops = [ws[0], ws[199], orphan].map(async (w) => { for await (const _ of w) {} return w.state; });
      const pending = ws[5].ready();
      // Long enough for the orphan's stream to fail a few times: it waits in backoff, on a timer.
      await new Promise((r) => setTimeout(r, 1500));
      const orphanStream = lost.watches.info().streams[0].state;
      etcd.close();
      lost.close();
      const result = { loops: await Promise.all(loops), mirror: mirror.state, all: ws.every((w) => w.state === "closed"), ready: await pending.then(() => "ok", (e) => e.name), orphanReady: await orphanReady.then(() => "ok", (e) => e.name), orphanStream };
      await new Promise((r) => setImmediate(r));
      // Nothing of the clients keeps the process alive: no timer is left.
      result.timers = process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
      console.log(JSON.stringify(result));
    `;
    const out = await runChild(script);
    assert.deepEqual(JSON.parse(out), { loops: ["closed", "closed", "closed"], mirror: "closed", all: true, ready: "ok", orphanReady: "ClientClosedError", orphanStream: "backoff", timers: 0 });
  });

  test("a listener that throws does not break the stream or the mirror: the error is uncaught, delivery goes on", async () => {
    const index = new URL("../src/index.js", import.meta.url).href;
    const script = `
      import { Etcd, Op } from ${JSON.stringify(index)};
      const etcd = new Etcd({ endpoints: [${JSON.stringify(member.endpoint)}], transport: ${JSON.stringify(transportUnderTest)} });
      const uncaught = [];
      process.on("uncaughtException", (e) => uncaught.push(e.message));
      const seen = [];
      const w = etcd.watch("throwing/", { prefix: true }).on("put", (e) => {
        seen.push(e.keyText + "=" + e.text);
        if (e.text === "1") throw new Error("listener bug");
      });
      await w.ready();
      const m = etcd.mirror("throwing/");
      await m.ready;
      // Throws on the first key of a two-key transaction: the mirror must still hold both.
      m.on("put", (key) => { if (key === "throwing/b") throw new Error("mirror listener bug"); });
      await etcd.put("throwing/a", "1");
      await etcd.txn().then(Op.put("throwing/b", "x"), Op.put("throwing/c", "y")).commit();
      await etcd.put("throwing/a", "2");
      const end = Date.now() + 5000;
      while ((seen.length < 4 || m.get("throwing/a")?.text !== "2") && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      console.log(JSON.stringify({ seen, uncaught, opens: etcd.watches.info().streams[0].opens, state: w.state, mirror: [...m.map].map(([k, kv]) => k + "=" + kv.text).sort() }));
      etcd.close();
    `;
    const out = await runChild(script);
    assert.deepEqual(JSON.parse(out), {
      seen: ["throwing/a=1", "throwing/b=x", "throwing/c=y", "throwing/a=2"],
      uncaught: ["listener bug", "mirror listener bug"],
      opens: 1,
      state: "watching",
      mirror: ["throwing/a=2", "throwing/b=x", "throwing/c=y"],
    });
  });

  test("after close, watch() throws ClientClosedError and open watchers are closed", async () => {
    const c = client(member.endpoint);
    const w = c.watch(uniquePrefix("after-close") + "k");
    await w.ready();
    const next = w.next();
    c.close();
    assert.deepEqual(await within(next, 2000, "the loop to end"), { value: undefined, done: true });
    assert.equal(w.state, "closed");
    assert.throws(() => c.watch("k"), ClientClosedError);
    assert.throws(() => c.mirror("k"), ClientClosedError);
  });
});

describe("watch: server cancels", () => {
  let secured: EtcdMember;
  const ROOT = "root-pw-watch";
  const READER = "reader-pw-watch";
  before(async () => {
    // Tokens live one second, so streams outlive the token they were opened with.
    secured = await startEtcd({ authTokenTtl: 1 });
    const admin = client(secured.endpoint);
    try {
      const enc = new TextEncoder();
      await admin.raw.auth.userAdd({ name: "root", password: ROOT });
      await admin.raw.auth.userGrantRole({ user: "root", role: "root" });
      await admin.raw.auth.roleAdd({ name: "pub-reader" });
      await admin.raw.auth.roleGrantPermission({ name: "pub-reader", perm: { permType: 0, key: enc.encode("pub/"), rangeEnd: enc.encode("pub0") } });
      await admin.raw.auth.userAdd({ name: "reader", password: READER });
      await admin.raw.auth.userGrantRole({ user: "reader", role: "pub-reader" });
      await admin.raw.auth.authEnable({});
    } finally {
      admin.close();
    }
  });
  after(async () => {
    await secured?.stop();
  });

  test("a refused watch ends with PermissionDeniedError; the other watchers on the stream go on", async () => {
    const reader = client(secured.endpoint, { auth: { username: "reader", password: READER } });
    const root = client(secured.endpoint, { auth: { username: "root", password: ROOT } });
    try {
      const ok = reader.watch("pub/a");
      await within(ok.ready(), 5000, "the permitted watcher");
      const denied = reader.watch("secret/a");
      const err = await within(denied.next(), 5000, "the refusal").then(
        () => assert.fail("expected PermissionDeniedError"),
        (e: unknown) => e,
      );
      assert.equal((err as EtcdError).name, "PermissionDeniedError", String(err));
      // etcd 3.4 stops reading a stream after such a refusal: watchers made afterwards still work.
      const later = reader.watch("pub/b");
      await within(later.ready(), 5000, "a watcher created after the refusal");
      await root.put("pub/a", "1");
      await root.put("pub/b", "2");
      assert.equal((await nextEvents(ok)).events[0]!.text, "1");
      assert.equal((await nextEvents(later)).events[0]!.text, "2");
      await Promise.all([ok.close(), later.close()]);
    } finally {
      reader.close();
      root.close();
    }
  });

  test("a watcher created on a stream older than the auth token is still created", async () => {
    const reader = client(secured.endpoint, { auth: { username: "reader", password: READER } });
    const root = client(secured.endpoint, { auth: { username: "root", password: ROOT } });
    try {
      const first = reader.watch("pub/first");
      await within(first.ready(), 5000, "the first watcher");
      // The token the stream was opened with expires (TTL 1 s; etcd sweeps once a second).
      await new Promise((r) => setTimeout(r, 3000));
      const second = reader.watch("pub/second");
      await within(second.ready(), 5000, "a watcher created after the token expired");
      await root.put("pub/second", "x");
      await root.put("pub/first", "y");
      assert.equal((await nextEvents(second)).events[0]!.text, "x");
      assert.equal((await nextEvents(first)).events[0]!.text, "y");
      await Promise.all([first.close(), second.close()]);
    } finally {
      reader.close();
      root.close();
    }
  });
});
