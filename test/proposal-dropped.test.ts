// etcd answers "raft proposal dropped" (code Unknown) when its raft refuses a
// proposal before logging it (no leader, a leadership transfer under way):
// the write was never applied, so the client sends it again, on either
// transport, and the caller sees only the success. Checked with a fake member
// that drops each write's first attempt.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { DescMethodUnary } from "@bufbuild/protobuf";
import { KV } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { Compare, Etcd, Op, ProposalDroppedError } from "../src/index.js";
import { startFakeServer, type FakeServer } from "./fake-server.js";

const servers: FakeServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const path = (m: DescMethodUnary): string => `/${m.parent.typeName}/${m.name}`;
const WRITES: Array<[DescMethodUnary, (e: Etcd) => Promise<unknown>]> = [
  [KV.method.put, (e) => e.put("k", "v")],
  [KV.method.deleteRange, (e) => e.delete("k")],
  [KV.method.txn, (e) => e.txn().if(Compare.version("k", "=", 0)).then(Op.put("k", "v")).commit()],
];

/** A member whose raft drops the first `drops` attempts of each method, then answers. */
async function droppingMember(drops: number): Promise<FakeServer> {
  const seen = new Map<string, number>();
  const s = await startFakeServer({
    onCall: async (c) => {
      await c.received(1);
      const n = (seen.get(c.path) ?? 0) + 1;
      seen.set(c.path, n);
      const method = WRITES.find(([m]) => path(m) === c.path)?.[0];
      if (method === undefined) return c.fail(12, "unimplemented");
      if (n <= drops) return c.fail(2, "raft proposal dropped");
      c.reply(method.output, { header: { revision: 7n } });
    },
  });
  servers.push(s);
  return s;
}

for (const transport of ["http2", "connect-node"] as const) {
  describe(`raft proposal dropped, ${transport} transport`, () => {
    test("a write raft dropped once is sent again and succeeds (no retryWrites needed)", async () => {
      const member = await droppingMember(1);
      const etcd = new Etcd({ endpoints: [member.endpoint], transport, requestTimeoutMs: 5000 });
      try {
        for (const [method, call] of WRITES) {
          await call(etcd);
          assert.equal(member.callsTo(path(method)).length, 2, `${method.name} sent twice`);
        }
      } finally {
        await etcd.close();
      }
    });

    test("a member that keeps dropping: ProposalDroppedError or the deadline, never an unknown outcome", async () => {
      const member = await droppingMember(Infinity);
      const etcd = new Etcd({ endpoints: [member.endpoint], transport, requestTimeoutMs: 600 });
      try {
        const err = await etcd.put("k", "v").then(
          () => undefined,
          (e: unknown) => e,
        );
        assert.ok(err instanceof Error, "the put failed");
        assert.ok(!(err.name === "OutcomeUnknownError"), `not unknown: ${String(err)}`);
        assert.ok(member.callsTo(path(KV.method.put)).length >= 2, "resent while time was left");
        assert.ok(err instanceof ProposalDroppedError || err.name === "DeadlineExceededError", String(err));
      } finally {
        await etcd.close();
      }
    });
  });
}
