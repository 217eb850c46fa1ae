// Watches on a 3-member cluster while members are killed, restarted and
// stopped: the watcher must see every revision exactly once, in order, with
// each revision's events together. Every loop is bounded in count and time.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { EtcdCluster, EtcdMember } from "./harness/index.js";
import { client, uniquePrefix, useCluster } from "./support.js";
import { waitFor, within } from "./watch-support.js";
import { DeadlineExceededError, Etcd, NoLeaderError, Op, OutcomeUnknownError, type Watcher, type WatchBatch } from "../src/index.js";

let cluster: EtcdCluster;

useCluster(3, (c) => {
  cluster = c;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The member serving the watch stream of `etcd`, found by the member ID in the stream's responses. */
async function watchedMember(etcd: Etcd, admin: Etcd): Promise<EtcdMember> {
  const id = etcd.watches.info().streams.find((s) => s.requireLeader)?.memberId;
  assert.ok(id !== undefined, "the watch stream has answered");
  const infos = await admin.status({ timeoutMs: 2000 });
  const info = infos.find((i) => i.memberId === id);
  assert.ok(info, `member ${id} answers status`);
  const m = cluster.members.find((x) => info.url.endsWith(x.endpoint));
  assert.ok(m);
  return m;
}

/** A batch reduced to what must be identical between two watchers of the same history. */
function shape(b: WatchBatch): string {
  return `${b.revision}|` + b.events.map((e) => `${e.type}:${e.keyText}=${e.text}@${e.kv.modRevision}`).join(",");
}

/** Collects every batch of `w` until it ends; progress notifications are left out. */
function collect(w: Watcher, into: WatchBatch[]): Promise<unknown> {
  return (async () => {
    for await (const b of w) if (!b.progress) into.push(b);
  })().catch((e: unknown) => e);
}

describe("watch failover", () => {
  test("SIGKILL, restart and SIGSTOP of members, including the watched one: every revision once, in order, whole", async () => {
    const opts = { dialTimeoutMs: 1000, keepAliveIntervalMs: 5000, keepAliveTimeoutMs: 1000, requestTimeoutMs: 5000 };
    const watching = client(cluster.endpoints, opts);
    // The writer and the checker use the built-in transport whatever is under test: the watcher is.
    const writer = new Etcd({ endpoints: cluster.endpoints, ...opts });
    const admin = new Etcd({ endpoints: cluster.endpoints, ...opts });
    const p = uniquePrefix("failover");
    const seen: WatchBatch[] = [];
    const w = watching.watch(p, { prefix: true });
    const done = collect(w, seen);
    const acked = new Map<bigint, number>();
    const unknown: number[] = [];
    const otherErrors: unknown[] = [];
    let stop = false;
    let n = 0;
    try {
      await within(w.ready(), 10_000, "the watcher");
      const start = (await writer.put(p + "start", "0")).revision;
      // Each step is one revision with three changes: two puts and a delete of an earlier key.
      const write = async (): Promise<void> => {
        const deadline = Date.now() + 60_000;
        while (!stop && Date.now() < deadline && n < 20_000) {
          const i = n++;
          try {
            const res = await writer
              .txn()
              .then(Op.put(`${p}${i}/a`, String(i)), Op.put(`${p}${i}/b`, String(i)), Op.delete(`${p}${i - 1}/a`))
              .commit();
            acked.set(res.raw.header!.revision, i);
          } catch (e) {
            // A write cut off by a fault may or may not be applied; the history read afterwards decides.
            if (e instanceof OutcomeUnknownError || e instanceof DeadlineExceededError) unknown.push(i);
            else otherErrors.push(e);
            await sleep(50);
          }
        }
      };
      const writers = write();
      const faults: string[] = [];
      const waitProgress = async (what: string) => {
        const target = acked.size + 20;
        await waitFor(what, () => acked.size >= target && w.revision >= [...acked.keys()].at(-1)! - 50n, 20_000).catch((e: unknown) => {
          throw new Error(`${String(e)}; acked ${acked.size} (target ${target}), last ${[...acked.keys()].at(-1)}, watcher at ${w.revision} (${w.state}), faults ${faults.join("; ")}`);
        });
      };
      await waitProgress("writes before the faults");
      for (const step of ["kill-watched", "kill-watched", "stop-watched", "kill-other"] as const) {
        const watched = await watchedMember(watching, admin);
        const victim = step === "kill-other" ? cluster.members.find((m) => m !== watched)! : watched;
        faults.push(`${step} ${victim.name}`);
        if (step === "stop-watched") {
          await victim.pause();
          // The connection's PING (every 5 s, 1 s timeout) finds the hung member; the watcher moves.
          await waitFor("the watcher to move off the stopped member", async () => {
            const id = watching.watches.info().streams.find((s) => s.requireLeader)?.memberId;
            const st = watching.watches.info().streams.find((s) => s.requireLeader)?.state;
            return st === "open" && id !== undefined && (await watchedMember(watching, admin).catch(() => victim)) !== victim;
          }, 20_000);
          await waitProgress("writes while a member is stopped");
          victim.resume();
        } else {
          await victim.kill();
          await waitProgress(`writes after ${step}`);
          await victim.restart();
        }
        await cluster.heal();
        await waitProgress(`writes after ${step} healed`);
      }
      stop = true;
      await within(writers, 20_000, "the writer to stop");
      const last = [...acked.keys()].reduce((a, b) => (a > b ? a : b));
      await waitFor("the watcher to catch up", () => w.revision >= last, 20_000);
      await w.close();
      await within(done, 5000, "the collector");

      // The same history read by a fresh watcher that saw no fault.
      const truth: WatchBatch[] = [];
      const fresh = admin.watch(p, { prefix: true, startRevision: start });
      const freshDone = collect(fresh, truth);
      await waitFor("the fresh watcher to read the history", () => fresh.revision >= w.revision, 20_000);
      await fresh.close();
      await freshDone;

      assert.deepEqual(otherErrors.map(String), []);
      assert.ok(acked.size > 100, `${acked.size} writes acknowledged`);
      const seenShape = seen.filter((b) => b.revision >= start && b.revision <= w.revision).map(shape);
      const truthShape = truth.filter((b) => b.revision <= w.revision).map(shape);
      assert.equal(seenShape.length, truthShape.length, `faults: ${faults.join("; ")}`);
      assert.deepEqual(seenShape, truthShape);
      // Strictly increasing revisions, so none was delivered twice.
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.revision > seen[i - 1]!.revision);
      // Every acknowledged write is there, whole: three events in its revision.
      const byRev = new Map(seen.map((b) => [b.revision, b]));
      for (const [rev, i] of acked) {
        const b = byRev.get(rev);
        assert.ok(b, `revision ${rev} (write ${i}) was delivered`);
        assert.equal(b.events.filter((e) => e.type === "put").length, 2);
      }
      assert.ok(watching.watches.info().streams[0]!.opens >= 4, "the stream was re-opened after each fault");
    } finally {
      stop = true;
      watching.close();
      writer.close();
      admin.close();
      await cluster.heal();
    }
  });

  test("a member that loses its leader ends the stream (hasleader); the watcher resumes when the cluster is back", async () => {
    const opts = { dialTimeoutMs: 1000, keepAliveIntervalMs: 5000, keepAliveTimeoutMs: 1000, requestTimeoutMs: 5000 };
    const watching = client(cluster.endpoints, opts);
    const admin = new Etcd({ endpoints: cluster.endpoints, ...opts });
    const p = uniquePrefix("noleader");
    const w = watching.watch(p + "k");
    const stopped: EtcdMember[] = [];
    try {
      await within(w.ready(), 10_000, "the watcher");
      const watched = await watchedMember(watching, admin);
      const before = (await admin.put(p + "k", "before")).revision;
      await waitFor("the first event", () => w.revision >= before, 5000);
      // Stop both other members: the watched one keeps its connection but loses its leader.
      for (const m of cluster.members) {
        if (m === watched) continue;
        await m.pause();
        stopped.push(m);
      }
      const stream = () => watching.watches.info().streams.find((s) => s.requireLeader)!;
      const opens = stream().opens;
      await waitFor("the server to end the stream for lack of a leader", () => stream().lastError instanceof NoLeaderError, 20_000);
      assert.ok(stream().opens > opens || stream().state !== "open");
      for (const m of stopped) m.resume();
      stopped.length = 0;
      await cluster.heal();
      const after = (await admin.put(p + "k", "after")).revision;
      const got: string[] = [];
      while (got.length < 2) {
        const r = await within(w.next(), 20_000, "events after the cluster is back");
        assert.ok(!r.done);
        if (!r.value.progress) got.push(`${r.value.revision}:${r.value.events[0]!.text}`);
      }
      assert.deepEqual(got, [`${before}:before`, `${after}:after`]);
    } finally {
      for (const m of stopped) m.resume();
      watching.close();
      admin.close();
      await cluster.heal();
    }
  });
});
