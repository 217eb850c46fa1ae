// Software transactional memory against a real etcd: concurrent bank
// transfers keep the total under serializable snapshot and serializable
// isolation; one deterministic interleaving per level shows what each level
// reads and when it conflicts; the retry, conflict, abort, deadline and
// unknown-outcome paths.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Interceptor } from "@connectrpc/connect";
import { startProxy, type EtcdMember } from "./harness/index.js";
import { client, uniquePrefix, useMember } from "./support.js";
import {
  AbortedError,
  DeadlineExceededError,
  Etcd,
  InvalidKeyError,
  InvalidOptionError,
  OutcomeUnknownError,
  StmConflictError,
  TooManyOpsError,
  type Isolation,
  type Stm,
} from "../src/index.js";

let member: EtcdMember;
let etcd: Etcd;
/** A second client: the "other writer" of the interleavings. */
let other: Etcd;

useMember((m, newClient) => {
  member = m;
  etcd = newClient();
  other = newClient();
});

/** A client that records the name of every RPC it sends. */
function counting(): { etcd: Etcd; calls: string[] } {
  const calls: string[] = [];
  const record: Interceptor = (next) => async (req) => {
    calls.push(req.method.name);
    return next(req);
  };
  return { etcd: client(member.endpoint, { interceptors: [record] }), calls };
}

describe("bank transfers between accounts on several clients", () => {
  for (const isolation of ["serializable-snapshot", "serializable"] as const) {
    test(`${isolation}: the total never changes, and every audit sees it whole`, async () => {
      const p = uniquePrefix(`bank-${isolation}`);
      const accounts = ["a", "b", "c", "d"].map((n) => p + n);
      const start = 1000;
      for (const a of accounts) await etcd.put(a, String(start));
      const total = start * accounts.length;
      const clients = [0, 1, 2].map(() => client(member.endpoint));
      const auditor = client(member.endpoint);
      let attempts = 0;
      let transfers = 0;
      let running = true;
      const audits: number[] = [];
      try {
        // Auditor: read-only transactions at one snapshot revision must always see the full total.
        const audit = (async () => {
          for (let i = 0; running && i < 500; i++) {
            const r = await auditor.stm(
              async (tx) => {
                let sum = 0;
                for (const a of accounts) sum += Number(await tx.get(a));
                return sum;
              },
              { isolation, prefetch: accounts },
            );
            audits.push(r.value);
          }
        })();
        const worker = async (c: Etcd, seed: number) => {
          for (let i = 0; i < 10; i++) {
            const from = accounts[(seed + i) % accounts.length]!;
            const to = accounts[(seed + 3 * i + 1) % accounts.length]!;
            if (from === to) continue;
            const amount = 1 + ((seed * 31 + i * 17) % 50);
            const r = await c.stm(
              async (tx) => {
                const f = Number(await tx.get(from));
                const t = Number(await tx.get(to));
                if (f < amount) return false;
                tx.put(from, String(f - amount));
                tx.put(to, String(t + amount));
                return true;
              },
              { isolation, retries: 500, timeoutMs: 60_000 },
            );
            attempts += r.attempts;
            if (r.value) transfers++;
          }
        };
        await Promise.all(clients.flatMap((c, ci) => [0, 1, 2].map((w) => worker(c, ci * 3 + w))));
        running = false;
        await audit;
        const final = await Promise.all(accounts.map(async (a) => Number((await etcd.get(a)).text)));
        assert.equal(final.reduce((x, y) => x + y, 0), total);
        assert.ok(final.every((v) => Number.isInteger(v) && v >= 0), `balances ${final}`);
        assert.ok(transfers > 0);
        // Nine workers on four accounts: transfers overtook each other and were re-run.
        assert.ok(attempts > transfers, `attempts ${attempts}, transfers ${transfers}`);
        assert.ok(audits.length > 0);
        assert.deepEqual(audits.filter((s) => s !== total), [], "an audit saw money appear or vanish");
      } finally {
        for (const c of clients) c.close();
        auditor.close();
      }
    });
  }
});

/**
 * Runs `fn` once per level with fresh keys and reports attempts and what the
 * function saw, so each test states the difference between levels in one table.
 */
async function perLevel<T>(
  levels: readonly Isolation[],
  setup: (p: string) => Promise<void>,
  fn: (tx: Stm, p: string) => Promise<T>,
): Promise<Record<string, { attempts: number; seen: T[]; p: string }>> {
  const out: Record<string, { attempts: number; seen: T[]; p: string }> = {};
  for (const isolation of levels) {
    const p = uniquePrefix(`iso-${isolation}`);
    await setup(p);
    const seen: T[] = [];
    const r = await etcd.stm(
      async (tx) => {
        const v = await fn(tx, p);
        seen.push(v);
        return v;
      },
      { isolation },
    );
    out[isolation] = { attempts: r.attempts, seen, p };
  }
  return out;
}

const ALL: Isolation[] = ["serializable-snapshot", "serializable", "repeatable-reads", "read-committed"];

describe("isolation levels, one deterministic interleaving each", () => {
  test("a key read, then changed by another writer: every level re-runs except read-committed (last writer wins)", async () => {
    const r = await perLevel(
      ALL,
      async (p) => void (await etcd.put(p + "k", "old")),
      async (tx, p) => {
        const v = await tx.get(p + "k");
        if (tx.attempt === 1) await other.put(p + "k", "new");
        tx.put(p + "copy", v ?? "");
        return v;
      },
    );
    assert.deepEqual(r["serializable-snapshot"]!.seen, ["old", "new"]);
    assert.deepEqual(r["serializable"]!.seen, ["old", "new"]);
    assert.deepEqual(r["repeatable-reads"]!.seen, ["old", "new"]);
    assert.deepEqual(r["read-committed"]!.seen, ["old"]);
    // read-committed committed a copy of a value that was already overwritten.
    assert.equal((await etcd.get(r["read-committed"]!.p + "copy")).text, "old");
    assert.equal((await etcd.get(r["serializable"]!.p + "copy")).text, "new");
  });

  test("a key changed between two reads: serializable reads the snapshot (and re-runs), repeatable-reads reads the latest (and commits)", async () => {
    const r = await perLevel(
      ["serializable", "repeatable-reads"],
      async (p) => {
        await etcd.put(p + "a", "1");
        await etcd.put(p + "b", "old");
      },
      async (tx, p) => {
        const a = await tx.get(p + "a");
        if (tx.attempt === 1) await other.put(p + "b", "new");
        const b = await tx.get(p + "b");
        tx.put(p + "out", `${a}${b}`);
        return b;
      },
    );
    // Serializable: the second read is at the first read's revision, so it misses the change; the commit catches it.
    assert.deepEqual(r["serializable"]!.seen, ["old", "new"]);
    // Repeatable reads: each key read at its latest revision; nothing read changed afterwards, so it commits at once.
    assert.deepEqual(r["repeatable-reads"]!.seen, ["new"]);
    assert.equal(r["repeatable-reads"]!.attempts, 1);
  });

  test("a key written without being read, changed after the snapshot: serializable snapshot re-runs, serializable commits", async () => {
    const r = await perLevel(
      ["serializable-snapshot", "serializable"],
      async (p) => {
        await etcd.put(p + "a", "1");
        await etcd.put(p + "c", "before");
      },
      async (tx, p) => {
        await tx.get(p + "a");
        if (tx.attempt === 1) await other.put(p + "c", "theirs");
        tx.put(p + "c", "mine");
        return tx.attempt;
      },
    );
    assert.equal(r["serializable-snapshot"]!.attempts, 2);
    assert.equal(r["serializable"]!.attempts, 1);
    for (const level of ["serializable-snapshot", "serializable"]) assert.equal((await etcd.get(r[level]!.p + "c")).text, "mine");
  });

  test("a write to a key changed before the snapshot is no conflict under serializable snapshot", async () => {
    const p = uniquePrefix("iso-before");
    await etcd.put(p + "c", "theirs");
    const r = await etcd.stm(async (tx) => {
      await tx.get(p + "a");
      tx.put(p + "c", "mine");
    });
    assert.equal(r.attempts, 1);
  });
});

describe("retries and conflicts", () => {
  test("re-runs with fresh reads until the commit holds", async () => {
    const p = uniquePrefix("retry");
    await etcd.put(p + "n", "0");
    const r = await etcd.stm(
      async (tx) => {
        const n = Number(await tx.get(p + "n"));
        if (tx.attempt <= 2) await other.put(p + "n", String(n + 100)); // overtaken twice
        tx.put(p + "n", String(n + 1));
        return n;
      },
      { retries: 2 },
    );
    assert.equal(r.attempts, 3);
    assert.equal(r.value, 200);
    assert.equal((await etcd.get(p + "n")).text, "201");
    assert.ok(r.txn?.succeeded);
    assert.equal(r.revision, r.txn?.revision);
  });

  test("gives up with StmConflictError after the retry limit; nothing is applied", async () => {
    const p = uniquePrefix("conflict");
    await etcd.put(p + "n", "0");
    let runs = 0;
    const err = await etcd
      .stm(
        async (tx) => {
          runs++;
          const n = Number(await tx.get(p + "n"));
          await other.put(p + "n", String(n + 1)); // overtaken every time
          tx.put(p + "mine", "written");
        },
        { retries: 3, isolation: "repeatable-reads" },
      )
      .catch((e: unknown) => e);
    assert.ok(err instanceof StmConflictError, String(err));
    assert.equal(err.attempts, 4);
    assert.equal(runs, 4);
    assert.equal((await etcd.get(p + "mine")).kvs.length, 0);
  });

  test("retries: 0 allows one attempt only", async () => {
    const p = uniquePrefix("conflict0");
    await etcd.put(p + "n", "0");
    await assert.rejects(
      etcd.stm(
        async (tx) => {
          await tx.get(p + "n");
          await other.put(p + "n", "x");
          tx.put(p + "n", "y");
        },
        { retries: 0 },
      ),
      (e: unknown) => e instanceof StmConflictError && e.attempts === 1,
    );
  });
});

describe("reads and writes inside a transaction", () => {
  test("reads see the attempt's own writes and deletes; rev() is the stored revision; a key is read once", async () => {
    const p = uniquePrefix("ryw");
    const put = await etcd.put(p + "k", "stored");
    await etcd.put(p + "gone", "x");
    const { etcd: c, calls } = counting();
    try {
      const r = await c.stm(async (tx) => {
        const first = await tx.get(p + "k");
        const again = await tx.get(p + "k");
        tx.put(p + "k", "buffered");
        const mine = await tx.get(p + "k");
        tx.delete(p + "gone");
        const deleted = await tx.get(p + "gone");
        const rev = await tx.rev(p + "k");
        const bytes = await tx.getBytes(p + "k");
        const absent = await tx.get(p + "absent");
        return { first, again, mine, deleted, rev, bytes: Buffer.from(bytes!).toString(), absent, absentRev: await tx.rev(p + "absent") };
      });
      assert.deepEqual(r.value, { first: "stored", again: "stored", mine: "buffered", deleted: undefined, rev: put.revision, bytes: "buffered", absent: undefined, absentRev: 0n });
      assert.equal((await etcd.get(p + "k")).text, "buffered");
      assert.equal((await etcd.get(p + "gone")).kvs.length, 0);
      // k and absent read once each (gone was deleted before any read), then one commit.
      assert.deepEqual(calls, ["Range", "Range", "Txn"]);
    } finally {
      c.close();
    }
  });

  test("prefetch: the listed keys come in one round trip; after a conflict the next attempt reads nothing", async () => {
    const p = uniquePrefix("prefetch");
    for (const k of ["a", "b", "c"]) await etcd.put(p + k, k);
    const { etcd: c, calls } = counting();
    try {
      const r = await c.stm(
        async (tx) => {
          const v = `${await tx.get(p + "a")}${await tx.get(p + "b")}${await tx.get(p + "c")}`;
          if (tx.attempt === 1) await other.put(p + "b", "B");
          tx.put(p + "out", v);
          return v;
        },
        { prefetch: [p + "a", p + "b", p + "c"] },
      );
      assert.equal(r.value, "aBc");
      assert.equal(r.attempts, 2);
      // Attempt 1: one read transaction (the prefetch), one failed commit whose else branch re-read a, b, c.
      // Attempt 2: the prefetch is already there; one commit.
      assert.deepEqual(calls, ["Txn", "Txn", "Txn"]);
    } finally {
      c.close();
    }
  });

  test("without prefetch, after a conflict under serializable snapshot the re-run reads nothing", async () => {
    const p = uniquePrefix("else-prefetch");
    await etcd.put(p + "a", "1");
    const { etcd: c, calls } = counting();
    try {
      const r = await c.stm(async (tx) => {
        const a = await tx.get(p + "a");
        if (tx.attempt === 1) await other.put(p + "a", "2");
        tx.put(p + "b", a!);
        return a;
      });
      assert.equal(r.value, "2");
      assert.deepEqual(calls, ["Range", "Txn", "Txn"]);
    } finally {
      c.close();
    }
  });

  test("reads started together wait for the first read and use its revision", async () => {
    const p = uniquePrefix("parallel");
    await etcd.put(p + "a", "1");
    await etcd.put(p + "b", "1");
    const revisions: bigint[] = [];
    const record: Interceptor = (next) => async (req) => {
      if (req.method.name === "Range") revisions.push((req.message as unknown as { revision: bigint }).revision);
      return next(req);
    };
    const c = client(member.endpoint, { interceptors: [record] });
    try {
      const r = await c.stm(
        async (tx) => {
          const [a, b] = await Promise.all([tx.get(p + "a"), tx.get(p + "b")]);
          tx.put(p + "sum", String(Number(a) + Number(b)));
          return [a, b];
        },
        { isolation: "serializable" },
      );
      assert.deepEqual(r.value, ["1", "1"]);
      assert.equal(r.attempts, 1);
      // The first read is a quorum read at the latest revision (0); the second read was held until it answered.
      assert.equal(revisions.length, 2);
      assert.equal(revisions[0], 0n);
      assert.ok(revisions[1]! > 0n && revisions[1]! < r.revision, `revisions ${revisions}, commit at ${r.revision}`);
    } finally {
      c.close();
    }
  });

  test("a read-only snapshot transaction sends no commit", async () => {
    const p = uniquePrefix("readonly");
    await etcd.put(p + "a", "1");
    const { etcd: c, calls } = counting();
    try {
      const r = await c.stm((tx) => tx.get(p + "a"));
      assert.equal(r.value, "1");
      assert.equal(r.txn, undefined);
      assert.ok(r.revision > 0n);
      assert.deepEqual(calls, ["Range"]);
    } finally {
      c.close();
    }
  });

  test("bad input: unknown isolation, negative retries, empty keys, too many keys for one transaction", async () => {
    await assert.rejects(etcd.stm(() => 1, { isolation: "snapshot" as Isolation }), InvalidOptionError);
    await assert.rejects(etcd.stm(() => 1, { retries: -1 }), InvalidOptionError);
    await assert.rejects(etcd.stm(() => 1, { timeoutMs: 0 }), InvalidOptionError);
    await assert.rejects(etcd.stm((tx) => tx.get("")), InvalidKeyError);
    await assert.rejects(etcd.stm((tx) => tx.put("", "v")), InvalidKeyError);
    const p = uniquePrefix("big");
    await assert.rejects(
      etcd.stm((tx) => {
        for (let i = 0; i < 200; i++) tx.put(`${p}${i}`, "v");
      }),
      TooManyOpsError,
    );
  });

  test("an error thrown by fn ends the transaction with it; nothing is written; the handle is dead afterwards", async () => {
    const p = uniquePrefix("throws");
    let kept: Stm | undefined;
    const boom = new Error("boom");
    await assert.rejects(
      etcd.stm(async (tx) => {
        kept = tx;
        tx.put(p + "k", "v");
        throw boom;
      }),
      (e: unknown) => e === boom,
    );
    assert.equal((await etcd.get(p + "k")).kvs.length, 0);
    assert.throws(() => kept!.put(p + "k", "late"), InvalidOptionError);
  });
});

describe("abort, deadline, unknown outcome", () => {
  test("an aborted signal stops before fn runs, during a read, and between attempts", async () => {
    const p = uniquePrefix("abort");
    await etcd.put(p + "n", "0");
    let ran = false;
    await assert.rejects(
      etcd.stm(
        () => {
          ran = true;
        },
        { signal: AbortSignal.abort() },
      ),
      AbortedError,
    );
    assert.equal(ran, false);

    // During an attempt: the read fails with AbortedError, and fn's own signal has fired.
    const ac = new AbortController();
    let sawSignal = false;
    await assert.rejects(
      etcd.stm(
        async (tx) => {
          ac.abort();
          sawSignal = tx.signal.aborted;
          await tx.get(p + "n");
        },
        { signal: ac.signal },
      ),
      AbortedError,
    );
    assert.ok(sawSignal);

    // Between attempts: overtaken, then aborted; fn does not run again and nothing is written.
    const between = new AbortController();
    let runs = 0;
    await assert.rejects(
      etcd.stm(
        async (tx) => {
          runs++;
          await tx.get(p + "n");
          await other.put(p + "n", String(runs));
          tx.put(p + "out", "x");
          if (runs === 1) setImmediate(() => between.abort());
        },
        { signal: between.signal, retries: 1000 },
      ),
      AbortedError,
    );
    assert.ok(runs <= 2, `ran ${runs} times after the abort`);
    assert.equal((await etcd.get(p + "out")).kvs.length, 0);
  });

  test("timeoutMs bounds the whole transaction, every attempt included", async () => {
    const p = uniquePrefix("deadline");
    await etcd.put(p + "n", "0");
    const t0 = Date.now();
    await assert.rejects(
      etcd.stm(
        async (tx) => {
          const n = Number(await tx.get(p + "n"));
          await other.put(p + "n", String(n + 1));
          tx.put(p + "n", "mine");
        },
        { timeoutMs: 300, retries: 100_000 },
      ),
      // The deadline passes between attempts, or while a commit is in flight (then its outcome is unknown).
      (e) => e instanceof DeadlineExceededError || (e instanceof OutcomeUnknownError && e.cause instanceof DeadlineExceededError),
    );
    assert.ok(Date.now() - t0 < 5000);
  });

  test("a commit whose connection breaks after it was sent: OutcomeUnknownError, fn not re-run, even with retryWrites", async () => {
    const proxy = await startProxy("127.0.0.1", member.clientPort);
    let cutNext = false;
    const cutAfterSend: Interceptor = (next) => async (req) => {
      if (cutNext && req.method.name === "Txn") {
        cutNext = false;
        // The member is stopped: the commit is sent and never answered; then the connection breaks and the member comes back.
        setTimeout(() => {
          proxy.cutAll();
          member.resume();
        }, 1000);
      }
      return next(req);
    };
    const c = client(proxy.endpoint, { interceptors: [cutAfterSend], retryWrites: true });
    const p = uniquePrefix("unknown");
    let runs = 0;
    try {
      await c.put(p + "k", "0");
      const err = await c
        .stm(async (tx) => {
          runs++;
          await tx.get(p + "k");
          tx.put(p + "k", "1");
          if (runs === 1) {
            await member.pause();
            cutNext = true;
          }
        })
        .catch((e: unknown) => e);
      assert.ok(err instanceof OutcomeUnknownError, String(err));
      assert.equal(runs, 1);
    } finally {
      member.resume();
      c.close();
      await proxy.close();
    }
  });
});
