/**
 * Software transactional memory: transfer money between accounts from many
 * concurrent transfers. Each transfer reads two balances and writes both; when
 * another transfer changed them first, it runs again on fresh data, so no
 * money is created or lost.
 *
 * Run: `ETCD_ENDPOINTS=127.0.0.1:2379 node build/examples/stm.js` after `npx tsc -p tsconfig.json`
 * (in your own project, import from "etcd-connect").
 */
import { Etcd } from "../src/index.js";

const endpoints = (process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379").split(",");
const ACCOUNTS = ["examples/stm/alice", "examples/stm/bob", "examples/stm/carol"];
const etcd = new Etcd({ endpoints });

/** Moves `amount` from one account to another, unless that would overdraw it; resolves to whether it moved. */
async function transfer(from: string, to: string, amount: number): Promise<{ moved: boolean; attempts: number }> {
  const r = await etcd.stm(
    async (tx) => {
      const a = Number(await tx.get(from));
      const b = Number(await tx.get(to));
      if (a < amount) return false; // nothing written: nothing to commit
      tx.put(from, String(a - amount));
      tx.put(to, String(b + amount));
      return true;
    },
    // Both balances in one round trip up front; tellers keep coming, so allow more than the default 10 attempts.
    { prefetch: [from, to], retries: 100 },
  );
  return { moved: r.value, attempts: r.attempts };
}

try {
  for (const a of ACCOUNTS) await etcd.put(a, "100");

  // 4 tellers at once, 6 transfers each over the same 3 accounts: they conflict and retry.
  const tellers = Array.from({ length: 4 }, async (_, t) => {
    const done: Array<{ moved: boolean; attempts: number }> = [];
    for (let i = 0; i < 6; i++) {
      // To the next account or the one after (never to itself).
      done.push(await transfer(ACCOUNTS[(t + i) % 3]!, ACCOUNTS[(t + i + 1 + (i % 2)) % 3]!, 10 + ((t + i) % 4) * 5));
    }
    return done;
  });
  const results = (await Promise.all(tellers)).flat();
  const moved = results.filter((r) => r.moved).length;
  const retried = results.filter((r) => r.attempts > 1).length;
  const maxAttempts = Math.max(...results.map((r) => r.attempts));
  console.log(`${moved} of ${results.length} transfers moved money; ${retried} ran again after a conflict (at most ${maxAttempts} attempts)`);

  const balances = await etcd.get("examples/stm/", { prefix: true });
  const total = balances.kvs.reduce((sum, kv) => sum + Number(kv.text), 0);
  console.log(`balances: ${balances.kvs.map((kv) => `${kv.keyText.slice("examples/stm/".length)}=${kv.text}`).join(", ")}; total ${total}`);
  if (total !== 300) throw new Error(`money was created or lost: total ${total}`);

  await etcd.delete("examples/stm/", { prefix: true });
} finally {
  await etcd.close();
}
