// The prefix mirror against a real member, through a TCP proxy that cuts and
// blackholes connections: it must equal a fresh range at its revision after
// paging, after faults, after a compaction forces a re-list, and after a long
// disconnect. Every wait is bounded.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startEtcd, startProxy, type EtcdMember, type TcpProxy } from "./harness/index.js";
import { client, uniquePrefix } from "./support.js";
import { waitFor, within } from "./watch-support.js";
import { ClientClosedError, Etcd, InvalidOptionError, type Mirror, type MirrorRelist } from "../src/index.js";

let member: EtcdMember;
let direct: Etcd;

before(async () => {
  member = await startEtcd();
  direct = new Etcd({ endpoints: [member.endpoint] });
});
after(async () => {
  direct?.close();
  await member?.stop();
});

/** The mirror's map and revision, taken together. */
function snapshot(m: Mirror): { revision: bigint; entries: string[] } {
  return { revision: m.revision, entries: [...m.map].map(([k, kv]) => `${k}=${kv.text}@${kv.modRevision}`).sort() };
}

/** Fails unless the mirror equals a fresh range of the prefix at the mirror's revision. */
async function assertMatchesStore(m: Mirror, prefix: string): Promise<void> {
  const snap = snapshot(m);
  const res = await direct.get(prefix, { prefix: true, revision: snap.revision });
  assert.deepEqual(snap.entries, res.kvs.map((kv) => `${kv.keyText}=${kv.text}@${kv.modRevision}`).sort());
}

/** Keeps a copy of the map from the first listing and, after it, the mirror's put and delete events alone. */
function shadow(m: Mirror): Map<string, string> {
  const s = new Map<string, string>();
  void m.ready.then(() => {
    for (const [k, kv] of m.map) s.set(k, kv.text);
  });
  m.on("put", (k, kv) => s.set(k, kv.text));
  m.on("delete", (k) => s.delete(k));
  return s;
}

/** Writes a numbered sequence of puts and deletes under `prefix` until stopped; returns the last revision. */
function writer(prefix: string, keys = 20) {
  let stop = false;
  let last = 0n;
  let n = 0;
  const done = (async () => {
    const deadline = Date.now() + 30_000;
    while (!stop && Date.now() < deadline && n < 5000) {
      const i = n++;
      const res = i % 4 === 3 ? await direct.delete(`${prefix}${i % keys}`) : await direct.put(`${prefix}${i % keys}`, String(i));
      last = res.revision;
    }
  })();
  return {
    get count() {
      return n;
    },
    async stop(): Promise<bigint> {
      stop = true;
      await done;
      return last;
    },
  };
}

describe("mirror", () => {
  test("lists in pages at one revision, then follows changes; equals the store at its revision", async () => {
    const p = uniquePrefix("mirror-basic");
    for (let i = 0; i < 50; i++) await direct.put(`${p}${String(i).padStart(2, "0")}`, String(i));
    const c = client(member.endpoint);
    try {
      const m = c.mirror(p, { pageSize: 7 });
      const events = shadow(m);
      await within(m.ready, 5000, "the first listing");
      assert.equal(m.map.size, 50);
      assert.equal(m.get(`${p}07`)?.text, "7");
      await assertMatchesStore(m, p);
      const w = writer(p);
      await waitFor("some writes", () => w.count > 100, 10_000);
      const last = await w.stop();
      await waitFor("the mirror to catch up", () => m.revision >= last, 10_000);
      await assertMatchesStore(m, p);
      // The events alone describe every change after the listing.
      assert.deepEqual([...events].sort(), [...m.map].map(([k, kv]) => [k, kv.text]).sort());
      m.close();
      assert.equal(m.state, "closed");
    } finally {
      c.close();
    }
  });

  test("stored keys and values are copies, not views of network buffers", async () => {
    const p = uniquePrefix("mirror-copy");
    await direct.put(p + "a", "1");
    const c = client(member.endpoint);
    try {
      const m = c.mirror(p);
      await m.ready;
      const kv = m.get(p + "a")!;
      assert.equal(kv.value.byteLength, kv.value.buffer.byteLength);
      await direct.put(p + "b", "2");
      await waitFor("b", () => m.map.has(p + "b"), 5000);
      const b = m.get(p + "b")!;
      assert.equal(b.key.byteLength, b.key.buffer.byteLength);
      m.close();
    } finally {
      c.close();
    }
  });

  describe("through a proxy", () => {
    let proxy: TcpProxy;
    before(async () => {
      proxy = await startProxy("127.0.0.1", member.clientPort);
    });
    after(async () => {
      await proxy?.close();
    });
    const opts = { dialTimeoutMs: 500, keepAliveIntervalMs: 5000, keepAliveTimeoutMs: 1000, backoff: { initialMs: 50, maxMs: 200 } };

    test("connections cut under a running writer: the mirror resumes and stays equal", async () => {
      const p = uniquePrefix("mirror-cut");
      const c = client(proxy.endpoint, opts);
      try {
        const m = c.mirror(p);
        const events = shadow(m);
        const relists: MirrorRelist[] = [];
        m.on("relisted", (r) => relists.push(r));
        await within(m.ready, 5000, "the first listing");
        const w = writer(p);
        const stream = () => c.watches.info().streams[0]!;
        for (let i = 0; i < 5; i++) {
          await waitFor("writes", () => w.count > (i + 1) * 40, 10_000);
          const opens = stream().opens;
          proxy.cutAll();
          await waitFor("the stream to open again", () => stream().opens > opens && stream().state === "open", 10_000);
        }
        const last = await w.stop();
        await waitFor("the mirror to catch up", () => m.revision >= last, 15_000);
        await assertMatchesStore(m, p);
        assert.deepEqual(relists, [], "a resumable watch needs no new listing");
        assert.ok(stream().opens >= 6, "the stream was re-opened after each cut");
        assert.deepEqual([...events].sort(), [...m.map].map(([k, kv]) => [k, kv.text]).sort());
        m.close();
      } finally {
        c.close();
      }
    });

    test("a compaction while disconnected forces a re-list, reported with the reason", async () => {
      const p = uniquePrefix("mirror-compact");
      for (let i = 0; i < 10; i++) await direct.put(`${p}${i}`, "start");
      const c = client(proxy.endpoint, opts);
      try {
        const m = c.mirror(p);
        const events = shadow(m);
        const relists: MirrorRelist[] = [];
        m.on("relisted", (r) => relists.push(r));
        await within(m.ready, 5000, "the first listing");
        const before = m.revision;
        // Cut the mirror off, change things, and compact the history it would need.
        proxy.blackhole();
        proxy.cutAll();
        await waitFor("the watch to notice", () => c.watches.info().streams[0]?.state !== "open", 5000);
        await direct.delete(`${p}0`);
        await direct.put(`${p}1`, "changed");
        await direct.put(`${p}new`, "new");
        const compactAt = (await direct.put(`${p}2`, "changed")).revision;
        await direct.compact(compactAt);
        proxy.pass();
        await waitFor("the re-list", () => relists.length === 1, 15_000);
        assert.equal(relists[0]!.reason, "compacted");
        assert.equal(relists[0]!.compactRevision, compactAt);
        assert.equal(relists[0]!.changed, 4);
        assert.ok(m.revision >= compactAt && m.revision > before);
        await assertMatchesStore(m, p);
        assert.equal(m.get(`${p}0`), undefined);
        assert.equal(m.get(`${p}1`)?.text, "changed");
        assert.deepEqual([...events].sort(), [...m.map].map(([k, kv]) => [k, kv.text]).sort());
        // And it follows changes again afterwards.
        const next = await direct.put(`${p}3`, "after");
        await waitFor("the mirror to follow", () => m.revision >= next.revision, 5000);
        await assertMatchesStore(m, p);
        m.close();
      } finally {
        proxy.pass();
        c.close();
      }
    });

    test("a disconnect longer than relistAfterDisconnectMs lists again instead of replaying", async () => {
      const p = uniquePrefix("mirror-long");
      const c = client(proxy.endpoint, opts);
      try {
        const m = c.mirror(p, { relistAfterDisconnectMs: 1000 });
        const relists: MirrorRelist[] = [];
        m.on("relisted", (r) => relists.push(r));
        await within(m.ready, 5000, "the first listing");
        proxy.blackhole();
        proxy.cutAll();
        const w = writer(p, 5);
        await new Promise((r) => setTimeout(r, 2000));
        const last = await w.stop();
        proxy.pass();
        await waitFor("the re-list", () => relists.length === 1, 15_000);
        assert.equal(relists[0]!.reason, "disconnected");
        await waitFor("the mirror to catch up", () => m.revision >= last, 10_000);
        await assertMatchesStore(m, p);
        m.close();
      } finally {
        proxy.pass();
        c.close();
      }
    });
  });

  test("bad options are refused; close() before the first listing rejects ready", async () => {
    const c = client(member.endpoint);
    try {
      assert.throws(() => c.mirror("x/", { pageSize: 0 }), InvalidOptionError);
      assert.throws(() => c.mirror("x/", { keyEncoding: "nope" as BufferEncoding }), InvalidOptionError);
      const m = c.mirror(uniquePrefix("mirror-early"));
      m.close();
      await assert.rejects(m.ready, (e: unknown) => (e as Error).name === "EtcdError");
      const m2 = c.mirror(uniquePrefix("mirror-client-close"));
      c.close();
      await assert.rejects(m2.ready);
      assert.equal(m2.state, "closed");
      assert.throws(() => c.mirror("x/"), ClientClosedError);
    } finally {
      c.close();
    }
  });
});
