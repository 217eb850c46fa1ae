/**
 * Compare-and-swap with a transaction (etcd v2's CompareAndSwap): read a key,
 * then write it only if nobody changed it since, and see a stale writer lose.
 *
 * Run: `ETCD_ENDPOINTS=127.0.0.1:2379 node build/examples/txn.js` after `npx tsc -p tsconfig.json`
 * (in your own project, import from "etcd-connect").
 */
import { Compare, Etcd, Op } from "../src/index.js";

const endpoints = (process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379").split(",");
const etcd = new Etcd({ endpoints });

/** Writes `newValue` unless someone changed the key after `modRevision`; returns whether it did and the value now there. */
async function compareAndSwap(key: string, modRevision: bigint, newValue: string): Promise<{ succeeded: boolean; current: string | undefined }> {
  const res = await etcd
    .txn()
    .if(Compare.modRevision(key, "=", modRevision))
    .then(Op.put(key, newValue))
    .else(Op.get(key)) // on failure, read what is there now, in the same round trip
    .commit();
  const other = res.results[0];
  return { succeeded: res.succeeded, current: !res.succeeded && other?.kind === "get" ? other.text : newValue };
}

try {
  await etcd.put("examples/txn/counter", "1");
  const read = await etcd.get("examples/txn/counter");
  const seen = read.first!.modRevision;
  console.log(`read counter = ${read.text} at mod revision ${seen}`);

  const first = await compareAndSwap("examples/txn/counter", seen, `${read.text}+1`);
  console.log(`CAS against revision ${seen}: ${first.succeeded ? "applied" : "refused"}, counter = ${first.current}`);

  // A second writer that read at the same revision now loses, and learns the current value.
  const stale = await compareAndSwap("examples/txn/counter", seen, `${read.text}+other`);
  console.log(`CAS with the stale revision ${seen}: ${stale.succeeded ? "applied" : "refused"}, counter = ${stale.current}`);
  if (!first.succeeded || stale.succeeded) throw new Error("compare-and-swap did not behave as expected");

  // Create-if-absent: a key that never existed has create revision 0.
  const create = await etcd.txn().if(Compare.createRevision("examples/txn/once", "=", 0)).then(Op.put("examples/txn/once", "first")).commit();
  const again = await etcd.txn().if(Compare.createRevision("examples/txn/once", "=", 0)).then(Op.put("examples/txn/once", "second")).commit();
  console.log(`create-if-absent: first ${create.succeeded ? "created" : "refused"}, second ${again.succeeded ? "created" : "refused"}`);

  await etcd.delete("examples/txn/", { prefix: true });
} finally {
  await etcd.close();
}
