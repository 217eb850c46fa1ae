/**
 * A walk through the client against a local etcd that this script starts
 * itself (the Debian etcd 3.4 binary, or ETCD_BIN). Run it with `npm run demo`.
 *
 * It shows: put/get with string, bytes and JSON values, prefix reads,
 * a compare-and-swap transaction, paging through a range at one revision,
 * typed errors, and the per-endpoint status view.
 */
import { Compare, Etcd, InvalidKeyError, Op, formatEndpointTable } from "../src/index.js";
import { startEtcd } from "../test/harness/index.js";

const member = await startEtcd();
console.log(`started etcd ${member.version} at ${member.endpoint}\n`);

const etcd = new Etcd({ endpoints: [member.endpoint] });
try {
  // Plain keys and values: strings or bytes in, typed results out.
  await etcd.put("config/color", "blue");
  await etcd.put("config/limits", JSON.stringify({ rps: 100 }));
  console.log("config/color  =", (await etcd.get("config/color")).text);
  console.log("config/limits =", (await etcd.get("config/limits")).json<{ rps: number }>());

  // Every key under a prefix, sorted by key.
  const all = await etcd.get("config/", { prefix: true, sort: { target: "key", order: "ascend" } });
  console.log("under config/:", all.kvs.map((kv) => `${kv.keyText}=${kv.text}`).join(", "));

  // Compare-and-swap: change the key only if nobody changed it since we read it.
  const read = await etcd.get("config/color");
  const seen = read.first!.modRevision;
  const cas = await etcd
    .txn()
    .if(Compare.modRevision("config/color", "=", seen))
    .then(Op.put("config/color", "green"))
    .commit();
  console.log(`\nCAS at mod revision ${seen}: ${cas.succeeded ? "applied" : "lost the race"}`);

  // The same CAS again with the now-stale revision fails, and its else branch reads the current value.
  const stale = await etcd
    .txn()
    .if(Compare.modRevision("config/color", "=", seen))
    .then(Op.put("config/color", "red"))
    .else(Op.get("config/color"))
    .commit();
  const current = stale.results[0];
  console.log(`CAS with the stale revision: ${stale.succeeded ? "applied" : "refused"}; current value ${current?.kind === "get" ? current.text : "?"}`);

  // Page through a range at one revision without holding it all in memory.
  await Promise.all(Array.from({ length: 25 }, (_, i) => etcd.put(`items/${String(i).padStart(3, "0")}`, `item ${i}`)));
  let n = 0;
  for await (const kv of etcd.paginate("items/", { prefix: true, pageSize: 10 })) {
    if (n++ < 2) console.log("  paged:", kv.keyText, "=", kv.text);
  }
  console.log(`paged through ${n} items in pages of 10`);

  // Bad input is refused before anything is sent, with a typed error.
  try {
    await etcd.put("", "no key");
  } catch (e) {
    console.log(`\nan empty key is refused: ${e instanceof InvalidKeyError ? "InvalidKeyError" : "?"}: ${(e as Error).message}`);
  }

  // What the client knows about each endpoint.
  console.log("\n" + formatEndpointTable(await etcd.status()));
} finally {
  await etcd.close();
  await member.stop();
}
