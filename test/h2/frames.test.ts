// Frame codecs and the incremental frame reader, without a socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, H2Error } from "../../src/transport/h2/errors.js";
import { writeData } from "../../src/transport/h2/frames/data.js";
import { FRAME_CONTINUATION, FRAME_HEADERS } from "../../src/transport/h2/frames/frame-header.js";
import { FrameReader } from "../../src/transport/h2/frames/frame-reader.js";
import { FrameWriter } from "../../src/transport/h2/frames/frame-writer.js";
import { writeGoAway } from "../../src/transport/h2/frames/goaway.js";
import { writeHeaders } from "../../src/transport/h2/frames/headers.js";
import { writePing } from "../../src/transport/h2/frames/ping.js";
import { writeRstStream } from "../../src/transport/h2/frames/rst-stream.js";
import { writeSettings, writeSettingsAck } from "../../src/transport/h2/frames/settings.js";
import { writeWindowUpdate } from "../../src/transport/h2/frames/window-update.js";
import { LIMITS, Recorder } from "./recorder.js";
import { frame } from "./support.js";

function take(w: FrameWriter): Buffer {
  return Buffer.concat(w.take() ?? []);
}

/** Feeds `bytes` to a new reader in pieces cut at `cuts`. */
function feed(bytes: Buffer, cuts: number[], limits = LIMITS): Recorder {
  const sink = new Recorder();
  const r = new FrameReader(sink, limits);
  let at = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < bytes.length).sort((a, b) => a - b), bytes.length]) {
    r.push(bytes.subarray(at, c));
    at = c;
  }
  return sink;
}

function sampleStream(): Buffer {
  const w = new FrameWriter();
  writeSettings(w, [4, 1 << 20, 3, 100]);
  writeSettingsAck(w);
  writePing(w, Buffer.from("01234567"), 0, false);
  writeWindowUpdate(w, 0, 1000);
  writeHeaders(w, 1, Buffer.alloc(40000, 0x88), 40000, false, 16384);
  writeData(w, 1, Buffer.alloc(20000, 3), 0, 16384, false);
  writeData(w, 1, Buffer.alloc(20000, 3), 16384, 20000 - 16384, true);
  writeRstStream(w, 3, ErrorCode.CANCEL);
  writeGoAway(w, 7, ErrorCode.ENHANCE_YOUR_CALM, "too_many_pings");
  return take(w);
}

test("writers and the reader agree, whatever the chunking", () => {
  const bytes = sampleStream();
  const whole = feed(bytes, []);
  assert.deepEqual(whole.events, [
    ["settings", [4, 1 << 20, 3, 100]],
    ["settingsAck"],
    ["ping", Buffer.from("01234567").toString("hex"), false],
    ["windowUpdate", 0, 1000],
    ["headers", 1, Buffer.alloc(40000, 0x88).toString("hex"), false],
    ["dataStart", 1, 16384],
    ["dataEnd", 1, false],
    ["dataStart", 1, 20000 - 16384],
    ["dataEnd", 1, true],
    ["rst", 3, ErrorCode.CANCEL],
    ["goaway", 7, ErrorCode.ENHANCE_YOUR_CALM, "too_many_pings"],
  ]);
  assert.deepEqual(whole.bytes(1), Buffer.alloc(20000, 3));
  // Every single-byte split, and some random multi-splits.
  for (let cut = 1; cut < bytes.length; cut += 97) {
    const r = feed(bytes, [cut]);
    assert.deepEqual(r.events, whole.events, `cut at ${cut}`);
    assert.deepEqual(r.bytes(1), whole.bytes(1));
  }
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % bytes.length);
  for (let i = 0; i < 50; i++) {
    const r = feed(bytes, Array.from({ length: 20 }, rnd));
    assert.deepEqual(r.events, whole.events);
  }
});

test("a large header block is split into HEADERS + CONTINUATION at the peer's frame size", () => {
  const w = new FrameWriter();
  writeHeaders(w, 5, Buffer.alloc(40000, 1), 40000, true, 16384);
  const b = take(w);
  const frames: Array<[number, number, number]> = [];
  for (let at = 0; at < b.length; ) {
    const len = b.readUIntBE(at, 3);
    frames.push([b[at + 3]!, b[at + 4]!, len]);
    at += 9 + len;
  }
  assert.deepEqual(frames, [
    [FRAME_HEADERS, 0x1, 16384],
    [FRAME_CONTINUATION, 0, 16384],
    [FRAME_CONTINUATION, 0x4, 40000 - 2 * 16384],
  ]);
});

test("DATA padding is stripped and counted; a DATA frame is delivered in pieces as it arrives", () => {
  const payload = Buffer.concat([Buffer.from([5]), Buffer.from("hello world"), Buffer.alloc(5)]);
  const bytes = frame(0, 0x8 | 0x1, 3, payload);
  const r = feed(bytes, [9, 12, 15]);
  assert.deepEqual(r.events, [["dataStart", 3, payload.length], ["dataEnd", 3, true]]);
  assert.equal(r.bytes(3).toString(), "hello world");
  assert.ok((r.data.get(3) ?? []).length >= 3, "delivered before the frame was complete");
});

test("HEADERS padding and priority fields are stripped", () => {
  const payload = Buffer.concat([Buffer.from([2]), Buffer.from([0, 0, 0, 1, 16]), Buffer.from([0x88]), Buffer.alloc(2)]);
  const r = feed(frame(1, 0x8 | 0x20 | 0x4, 1, payload), []);
  assert.deepEqual(r.events, [["headers", 1, "88", false]]);
});

test("unknown frame types and PRIORITY are skipped; a bad PRIORITY length is a stream error", () => {
  const r = feed(Buffer.concat([frame(0xee, 0xff, 9, Buffer.alloc(100)), frame(2, 0, 1, Buffer.alloc(5)), frame(2, 0, 3, Buffer.alloc(4)), frame(6, 0, 0, Buffer.alloc(8))]), [50]);
  assert.deepEqual(r.events, [["streamError", 3, ErrorCode.FRAME_SIZE_ERROR], ["ping", "0000000000000000", false]]);
});

test("a WINDOW_UPDATE of 0 is a stream error on a stream, a connection error on stream 0", () => {
  const r = feed(frame(8, 0, 5, Buffer.alloc(4)), []);
  assert.deepEqual(r.events, [["streamError", 5, ErrorCode.PROTOCOL_ERROR]]);
  assert.throws(() => feed(frame(8, 0, 0, Buffer.alloc(4)), []), (e: unknown) => e instanceof H2Error && e.streamId === 0);
});

test("the reader stops after a connection error and ignores what follows", () => {
  const sink = new Recorder();
  const r = new FrameReader(sink, LIMITS);
  assert.throws(() => r.push(frame(0, 0, 0, Buffer.from("x"))), H2Error);
  r.push(frame(6, 0, 0, Buffer.alloc(8)));
  assert.deepEqual(sink.events, []);
});

test("settingsFirst: the first frame must be a (non-ACK) SETTINGS", () => {
  const limits = { ...LIMITS, settingsFirst: true };
  assert.throws(() => feed(frame(4, 1, 0), [], limits), /not SETTINGS/);
  assert.throws(() => feed(Buffer.from("HTTP/1.1 200 OK\r\n"), [], limits), /HTTP\/1/);
  assert.deepEqual(feed(Buffer.concat([frame(4, 0, 0), frame(4, 1, 0)]), [3], limits).events, [["settings", []], ["settingsAck"]]);
});

test("FrameWriter: small frames share the arena, big payloads go by reference, batches are taken whole", () => {
  const w = new FrameWriter();
  const big = Buffer.alloc(100_000, 9);
  writeData(w, 1, Buffer.from("small"), 0, 5, false);
  writeData(w, 1, big, 0, 16384, false);
  writePing(w, Buffer.alloc(8), 0, true);
  const batch = w.take()!;
  assert.equal(batch.length, 3); // arena (small DATA + big's frame header), the big payload itself, arena again (PING)
  assert.equal(batch[1]!.buffer, big.buffer, "the big payload is not copied");
  assert.equal(w.take(), undefined);
  const all = Buffer.concat(batch);
  assert.equal(all.length, 9 + 5 + 9 + 16384 + 17);
});
