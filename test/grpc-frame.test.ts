import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameDecoder, FrameError, encodeFrame } from "../src/transport/grpc-frame.js";

function collect(max = 1 << 20): { decoder: FrameDecoder; out: Buffer[] } {
  const out: Buffer[] = [];
  return { decoder: new FrameDecoder((m) => out.push(Buffer.from(m)), max), out };
}

test("encodeFrame writes flag 0 and a big-endian length", () => {
  const f = encodeFrame(new Uint8Array([1, 2, 3]));
  assert.deepEqual([...f], [0, 0, 0, 0, 3, 1, 2, 3]);
});

test("decoder yields several messages from one chunk, including empty ones", () => {
  const { decoder, out } = collect();
  decoder.push(Buffer.concat([encodeFrame(Buffer.from("ab")), encodeFrame(new Uint8Array(0)), encodeFrame(Buffer.from("xyz"))]));
  assert.deepEqual(out.map((b) => b.toString()), ["ab", "", "xyz"]);
  assert.equal(decoder.incomplete, false);
});

test("decoder reassembles a message split at every possible byte", () => {
  const payload = Buffer.from("hello, etcd world");
  const whole = Buffer.concat([encodeFrame(payload), encodeFrame(Buffer.from("2nd"))]);
  for (let cut = 1; cut < whole.length; cut++) {
    const { decoder, out } = collect();
    decoder.push(whole.subarray(0, cut));
    decoder.push(whole.subarray(cut));
    assert.deepEqual(out.map((b) => b.toString()), ["hello, etcd world", "2nd"], `cut at ${cut}`);
  }
});

test("decoder handles one byte at a time", () => {
  const whole = Buffer.concat([encodeFrame(Buffer.alloc(300, 7)), encodeFrame(Buffer.from("z"))]);
  const { decoder, out } = collect();
  for (const b of whole) decoder.push(Buffer.from([b]));
  assert.equal(out.length, 2);
  assert.equal(out[0]!.length, 300);
  assert.ok(out[0]!.every((x) => x === 7));
  assert.equal(out[1]!.toString(), "z");
});

test("decoder reports a truncated stream", () => {
  const { decoder, out } = collect();
  decoder.push(encodeFrame(Buffer.from("abcdef")).subarray(0, 7));
  assert.equal(out.length, 0);
  assert.equal(decoder.incomplete, true);
});

test("decoder refuses messages over the limit and compressed ones", () => {
  const { decoder } = collect(4);
  assert.throws(() => decoder.push(encodeFrame(Buffer.from("12345"))), (e: unknown) => e instanceof FrameError && e.kind === "too-large");
  const c = collect();
  const f = encodeFrame(Buffer.from("x"));
  f[0] = 1;
  assert.throws(() => c.decoder.push(f), (e: unknown) => e instanceof FrameError && e.kind === "compressed");
});

test("a small message in a large read buffer gets its own memory; a large one is used in place", () => {
  const seen: Uint8Array[] = [];
  const decoder = new FrameDecoder((m) => seen.push(m), 1 << 20);
  // One 64 KiB network read holding a 10-byte message and a 60 KiB one.
  const read = Buffer.alloc(65536);
  const small = encodeFrame(Buffer.from("small-one!"));
  const large = encodeFrame(Buffer.alloc(65536 - small.length - 5, 7));
  small.copy(read, 0);
  large.copy(read, small.length);
  decoder.push(read);
  assert.equal(seen.length, 2);
  assert.equal(Buffer.from(seen[0]!).toString(), "small-one!");
  // Keeping the small value must not keep the 64 KiB read alive.
  assert.ok(seen[0]!.buffer.byteLength < 1024, `small message backed by ${seen[0]!.buffer.byteLength} bytes`);
  assert.equal(seen[1]!.buffer, read.buffer, "the large message is not copied");
  assert.ok(!Buffer.isBuffer(seen[0]) && !Buffer.isBuffer(seen[1]), "plain Uint8Arrays, not Buffers");
});
