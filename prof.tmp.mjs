import { Etcd } from "./build/src/index.js";
import { startEtcd } from "./build/test/harness/index.js";
const m = await startEtcd();
const etcd = new Etcd({ endpoints: m.endpoint });
const v = "x".repeat(256);
await Promise.all(Array.from({ length: 100 }, (_, j) => etcd.put("p" + j, v)));
async function run(n) { let i = 0; await Promise.all(Array.from({ length: 100 }, async () => { while (i < n) { const k = "p" + (i++ % 100); await etcd.get(k); } })); }
await run(20000);
const c0 = process.cpuUsage(); const t0 = Date.now();
await run(60000);
const c = process.cpuUsage(c0);
console.log("get x100 user µs/op", c.user / 60000, "sys", c.system / 60000, "ops/s", 60000 / ((Date.now() - t0) / 1000));
etcd.close(); await m.stop();
