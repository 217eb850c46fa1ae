/**
 * Keys and values: create, update, fetch, delete, fetch every key sorted, and
 * delete a batch by prefix.
 *
 * Run: `ETCD_ENDPOINTS=127.0.0.1:2379 node build/examples/kv.js` after `npx tsc -p tsconfig.json`
 * (in your own project, import from "etcd-connect").
 */
import { Etcd, KeyNotFoundError } from "../src/index.js";

const endpoints = (process.env.ETCD_ENDPOINTS ?? "127.0.0.1:2379").split(",");
const etcd = new Etcd({ endpoints });
try {
  // Create: every write answers with the store's revision after it.
  const created = await etcd.put("examples/kv/key", "value");
  console.log(`created examples/kv/key at revision ${created.revision}`);

  // Update: the previous value comes back with prevKv.
  const updated = await etcd.put("examples/kv/key", "new value", { prevKv: true });
  console.log(`updated examples/kv/key: ${updated.prevKv?.text} -> new value at revision ${updated.revision}`);

  // Update the value only if the key exists: ignoreLease keeps whatever lease it has,
  // ignoreValue (with an empty value) would keep its value instead. On a missing key
  // etcd refuses both, with a typed error.
  try {
    await etcd.put("examples/kv/missing", "", { ignoreValue: true });
  } catch (e) {
    console.log(`ignoreValue on a missing key: ${e instanceof KeyNotFoundError ? "KeyNotFoundError" : e}`);
  }

  // Fetch one key: text, bytes, json() and the key's revisions.
  const got = await etcd.get("examples/kv/key");
  const kv = got.first!;
  console.log(`fetched ${kv.keyText} = ${got.text} (created at ${kv.createRevision}, modified at ${kv.modRevision}, version ${kv.version})`);

  // Fetch every key in the store, sorted by key (an empty key with prefix means all keys).
  await Promise.all(["b", "c", "a"].map((k) => etcd.put(`examples/kv/batch/${k}`, k)));
  const all = await etcd.get("", { prefix: true, sort: { target: "key", order: "ascend" }, keysOnly: true });
  console.log(`all ${all.count} keys, sorted: ${all.kvs.map((k) => k.keyText).join(", ")}`);

  // Delete one key, then a batch by prefix.
  const one = await etcd.delete("examples/kv/key");
  console.log(`deleted ${one.deleted} key`);
  const batch = await etcd.delete("examples/kv/batch/", { prefix: true, prevKv: true });
  console.log(`deleted ${batch.deleted} keys under examples/kv/batch/: ${batch.prevKvs.map((k) => k.keyText).join(", ")}`);
} finally {
  await etcd.close();
}
