// Snapshot verification without a real etcd: the verifier as pure logic over
// any split of the stream, and the whole client path against a small fake
// gRPC server (node:http2) that sends good, corrupted, truncated or cut
// snapshots in etcd's layout: database pieces, then the 32-byte SHA-256.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as http2 from "node:http2";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import fc from "fast-check";
import { create, toBinary } from "@bufbuild/protobuf";
import { SnapshotResponseSchema } from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { encodeFrame } from "../src/transport/grpc-frame.js";
import { client } from "./support.js";
import { EtcdError, SnapshotVerificationError, SnapshotVerifier, verifySnapshotFile } from "../src/index.js";

/** A fake bolt file: a whole number of 4 KiB pages of random bytes. */
function fakeDatabase(pages: number): Buffer {
  return randomBytes(pages * 4096);
}

/** The messages etcd sends for `db`: pieces of at most `piece` bytes with remaining counts, then the digest. */
function etcdMessages(db: Buffer, piece = 32 * 1024): Array<{ remainingBytes: bigint; blob: Uint8Array }> {
  const out: Array<{ remainingBytes: bigint; blob: Uint8Array }> = [];
  for (let off = 0; off < db.length; off += piece) {
    const blob = db.subarray(off, Math.min(db.length, off + piece));
    out.push({ remainingBytes: BigInt(db.length - off - blob.length), blob });
  }
  out.push({ remainingBytes: 0n, blob: createHash("sha256").update(db).digest() });
  return out;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

test("the verifier accepts etcd's layout and returns the database's SHA-256", () => {
  const db = fakeDatabase(20);
  const v = new SnapshotVerifier();
  for (const m of etcdMessages(db)) v.message(m);
  assert.equal(v.finish(), sha(db));
  assert.equal(v.databaseBytes, db.length);
  assert.equal(v.bytes, db.length + 32);
});

test("the verifier gives the same answer however the stream is split (property)", () => {
  const db = fakeDatabase(3);
  const whole = Buffer.concat([db, createHash("sha256").update(db).digest()]);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: whole.length - 1 }), { maxLength: 40 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const v = new SnapshotVerifier();
      let prev = 0;
      for (const c of [...points, whole.length]) {
        v.update(whole.subarray(prev, c));
        prev = c;
      }
      assert.equal(v.finish(), sha(db));
    }),
    { numRuns: 200 },
  );
});

test("the verifier refuses a flipped byte, a missing piece, a missing digest and extra bytes", () => {
  const db = fakeDatabase(12);
  const flipped = etcdMessages(db).map((m) => ({ ...m, blob: Buffer.from(m.blob) }));
  flipped[1]!.blob[100]! ^= 0x01;
  const cases: Array<[string, Array<{ remainingBytes: bigint; blob: Uint8Array }>, RegExp]> = [
    ["flipped byte", flipped, /SHA-256 mismatch/],
    ["missing piece", etcdMessages(db).filter((_, i) => i !== 1), /incomplete/],
    ["missing digest", etcdMessages(db).slice(0, -1), /incomplete/],
    ["extra bytes", [...etcdMessages(db), { remainingBytes: 0n, blob: Buffer.alloc(8) }], /incomplete or overlong/],
    ["nothing", [], /too short/],
  ];
  for (const [what, msgs, re] of cases) {
    const v = new SnapshotVerifier();
    for (const m of msgs) v.message(m);
    assert.throws(() => v.finish("127.0.0.1:1"), (e: unknown) => e instanceof SnapshotVerificationError && re.test(e.message) && e.endpoint === "127.0.0.1:1", what);
  }
});

test("verifySnapshotFile checks a saved file; a corrupted or digestless file is refused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "snap-verify-"));
  try {
    const db = fakeDatabase(5);
    const good = join(dir, "good.db");
    writeFileSync(good, Buffer.concat([db, createHash("sha256").update(db).digest()]));
    assert.equal(await verifySnapshotFile(good), sha(db));
    const bad = Buffer.from(readFileSync(good));
    bad[5000]! ^= 0xff;
    writeFileSync(join(dir, "bad.db"), bad);
    await assert.rejects(verifySnapshotFile(join(dir, "bad.db")), SnapshotVerificationError);
    writeFileSync(join(dir, "plain.db"), db);
    await assert.rejects(verifySnapshotFile(join(dir, "plain.db")), /does not end with a SHA-256/);
    await assert.rejects(verifySnapshotFile(join(dir, "missing.db")), (e: unknown) => e instanceof EtcdError && /cannot read/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

type Behaviour = "good" | "bad-digest" | "truncated" | "reset";

/** A gRPC server that answers Maintenance/Snapshot with `db` the way `behaviour` says. */
async function fakeSnapshotServer(db: Buffer, behaviour: Behaviour): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => undefined);
    if (headers[":path"] !== "/etcdserverpb.Maintenance/Snapshot") {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12", "grpc-message": "unknown method" }, { endStream: true });
      return;
    }
    stream.resume(); // the request: one empty message
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    let msgs = etcdMessages(db);
    if (behaviour === "bad-digest") msgs[msgs.length - 1] = { remainingBytes: 0n, blob: Buffer.alloc(32, 7) };
    if (behaviour === "truncated") msgs = msgs.filter((_, i) => i !== 2);
    msgs.forEach((m, i) => {
      if (behaviour === "reset" && i === 3) return;
      if (behaviour === "reset" && i > 3) return;
      stream.write(encodeFrame(toBinary(SnapshotResponseSchema, create(SnapshotResponseSchema, m))));
    });
    if (behaviour === "reset") {
      setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 20);
      return;
    }
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

test("a good snapshot from the fake server is written whole, with its digest, and verified", async () => {
  const db = fakeDatabase(40); // 160 KiB: several 32 KiB messages
  const srv = await fakeSnapshotServer(db, "good");
  const dir = mkdtempSync(join(tmpdir(), "snap-fake-"));
  const etcd = client(srv.endpoint);
  try {
    const file = join(dir, "s.db");
    const progress: Array<[number, number | undefined]> = [];
    const info = await etcd.maintenance.snapshot(file, { onProgress: (p) => progress.push([p.bytes, p.totalBytes]) });
    assert.equal(info.sha256, sha(db));
    assert.equal(info.databaseBytes, db.length);
    assert.equal(info.bytes, db.length + 32);
    assert.equal(info.endpoint, srv.endpoint);
    assert.deepEqual(readFileSync(file), Buffer.concat([db, createHash("sha256").update(db).digest()]));
    assert.equal(existsSync(file + ".part"), false);
    assert.ok(progress.length >= 5, `progress after each message (${progress.length})`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]![0] > progress[i - 1]![0], "bytes grow");
    assert.deepEqual(progress.at(-1), [db.length + 32, db.length + 32]);
  } finally {
    etcd.close();
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const behaviour of ["bad-digest", "truncated", "reset"] as const) {
  test(`a ${behaviour} snapshot fails with a typed error and leaves no file behind`, async () => {
    const db = fakeDatabase(40);
    const srv = await fakeSnapshotServer(db, behaviour);
    const dir = mkdtempSync(join(tmpdir(), "snap-fake-"));
    const etcd = client(srv.endpoint);
    try {
      const file = join(dir, "s.db");
      const older = join(dir, "older-backup.db");
      writeFileSync(older, "an older, good backup");
      const e = await etcd.maintenance.snapshot(file).then(
        () => assert.fail("the snapshot must fail"),
        (err: unknown) => err,
      );
      if (behaviour === "reset") assert.ok(e instanceof EtcdError && !(e instanceof SnapshotVerificationError), String(e));
      else assert.ok(e instanceof SnapshotVerificationError, String(e));
      assert.equal((e as EtcdError).endpoint, srv.endpoint);
      assert.equal(existsSync(file), false, "no file at the path");
      assert.equal(existsSync(file + ".part"), false, "the partial file was removed");
      // A failed snapshot over an existing file leaves that file as it was: data goes to path.part until verified.
      await assert.rejects(etcd.maintenance.snapshot(older));
      assert.equal(readFileSync(older, "utf8"), "an older, good backup");
      // A Writable destination is destroyed with the error, as stream.pipeline does.
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      const e2 = await etcd.maintenance.snapshot(sink).then(
        () => assert.fail("the snapshot must fail"),
        (err: unknown) => err,
      );
      assert.equal((e2 as Error).name, (e as Error).name);
      assert.equal(sink.destroyed, true);
    } finally {
      etcd.close();
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
