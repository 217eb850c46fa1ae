/**
 * A lock shared by several workers on several clients, with fencing.
 *
 * Four workers (two clients, two sessions each) add to one counter under the
 * lock `examples/lock/<pid>`. Each increment is written only if this worker
 * still holds the lock (`mutex.isOwner()` in the transaction), so a worker
 * that lost its lock (its session expired while it was paused) cannot
 * overwrite the next holder's work. `withLock` releases the lock even when
 * the work throws. Runs against ETCD_ENDPOINTS (default 127.0.0.1:2379) and
 * exits by itself.
 *
 * Run: `ETCD_ENDPOINTS=127.0.0.1:2379 node build/examples/lock.js` after `npx tsc -p tsconfig.json`
 * (in your own project, import from "etcd-connect").
 */
import { Etcd, LockedError, Op } from "../src/index.js";

const endpoints = (process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379").split(",");
const base = `examples/lock/${process.pid}`;
const counter = `${base}/counter`;
const rounds = 5;

const clients = [new Etcd({ endpoints }), new Etcd({ endpoints })];
try {
  await clients[0]!.put(counter, "0");

  const worker = async (etcd: Etcd, who: string) => {
    const session = await etcd.session({ ttl: 5 });
    try {
      for (let i = 0; i < rounds; i++) {
        await session.withLock(`${base}/lock`, async (mutex) => {
          const n = Number((await etcd.get(counter)).text);
          const r = await etcd.txn().if(mutex.isOwner()).then(Op.put(counter, String(n + 1))).commit();
          if (!r.succeeded) throw new Error(`${who} lost the lock before writing`);
          console.log(`${who}: ${n} -> ${n + 1} (fencing token ${mutex.fencingToken})`);
        });
      }
    } finally {
      await session.close();
    }
  };
  await Promise.all(clients.flatMap((c, i) => [worker(c, `client${i}/w0`), worker(c, `client${i}/w1`)]));
  console.log(`counter = ${(await clients[0]!.get(counter)).text} (expected ${clients.length * 2 * rounds})`);

  // tryLock does not wait: it fails with LockedError while someone else holds the lock.
  const holder = await clients[0]!.session({ ttl: 5 });
  const other = await clients[1]!.session({ ttl: 5 });
  await holder.mutex(`${base}/lock`).lock();
  try {
    await other.mutex(`${base}/lock`).tryLock();
  } catch (e) {
    if (!(e instanceof LockedError)) throw e;
    console.log(`tryLock: ${e.message}`);
  }
  await holder.close(); // revokes the lease: the lock is released
  await other.mutex(`${base}/lock`).tryLock();
  console.log("tryLock after the holder's session closed: acquired");
  await other.close();
  await clients[0]!.delete(`${base}/`, { prefix: true });
} finally {
  await Promise.all(clients.map((c) => c.close()));
}
