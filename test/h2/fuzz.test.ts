// Fuzzing with fast-check: the frame reader, the HPACK decoder and a whole
// session get random, truncated and mutated input. The only exception allowed
// is the typed one (H2Error from the codecs; inside a session, nothing escapes
// and the session ends with EndpointUnavailableError "protocol"), and every
// run ends (no hang): each property runs a bounded number of times.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import fc from "fast-check";
import { EndpointUnavailableError } from "../../src/errors.js";
import { H2Error } from "../../src/transport/h2/errors.js";
import { writeData } from "../../src/transport/h2/frames/data.js";
import { FrameReader } from "../../src/transport/h2/frames/frame-reader.js";
import { FrameWriter } from "../../src/transport/h2/frames/frame-writer.js";
import { writeGoAway } from "../../src/transport/h2/frames/goaway.js";
import { writeHeaders } from "../../src/transport/h2/frames/headers.js";
import { writePing } from "../../src/transport/h2/frames/ping.js";
import { writeRstStream } from "../../src/transport/h2/frames/rst-stream.js";
import { writeSettings } from "../../src/transport/h2/frames/settings.js";
import { writeWindowUpdate } from "../../src/transport/h2/frames/window-update.js";
import { HpackDecoder } from "../../src/transport/h2/hpack/decoder.js";
import { HpackEncoder } from "../../src/transport/h2/hpack/encoder.js";
import { H2Session } from "../../src/transport/h2/session.js";
import { LIMITS, Recorder } from "./recorder.js";
import { collector, frame, requestHeaders, SERVER_PREFACE } from "./support.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);

/** Splits `bytes` at `cuts` (positions, any order). */
function chunks(bytes: Uint8Array, cuts: number[]): Buffer[] {
  const b = Buffer.from(bytes);
  const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of [...points, b.length]) {
    out.push(b.subarray(at, p));
    at = p;
  }
  return out;
}

/** Runs `fn`; only an H2Error may escape. */
function onlyTyped(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof H2Error)) throw e;
  }
}

function readAll(parts: Buffer[], limits = LIMITS): Recorder {
  const sink = new Recorder();
  const r = new FrameReader(sink, limits);
  onlyTyped(() => {
    for (const p of parts) r.push(p);
  });
  return sink;
}

/** A stream of valid frames of every kind. */
function validFrames(): Buffer {
  const w = new FrameWriter();
  writeSettings(w, [1, 4096, 3, 100, 4, 65535, 5, 16384, 6, 8192]);
  writePing(w, Buffer.from("abcdefgh"), 0, true);
  writeWindowUpdate(w, 0, 12345);
  writeWindowUpdate(w, 1, 1);
  const e = new HpackEncoder();
  const block = e.encode([":status", "200", "content-type", "application/grpc", "grpc-status", "0", "x-custom", "some value"]);
  writeHeaders(w, 1, block, block.length, false, 16384);
  writeData(w, 1, Buffer.from("payload bytes"), 0, 13, false);
  writeHeaders(w, 1, Buffer.alloc(20000, 0xbe), 20000, true, 16384);
  writeRstStream(w, 3, 8);
  writeGoAway(w, 5, 0, "bye");
  return Buffer.concat(w.take()!);
}

const frameArb = fc.record({
  type: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 255 })),
  flags: fc.oneof(fc.constantFrom(0, 1, 4, 5, 8, 0x20, 0x2c), fc.integer({ min: 0, max: 255 })),
  streamId: fc.oneof(fc.constantFrom(0, 1, 2, 3, 5, 0x7fffffff), fc.integer({ min: 0, max: 0x7fffffff })),
  payload: fc.uint8Array({ maxLength: 64 }),
});

test("frame reader: random bytes in random chunks throw nothing but H2Error", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4096 }), fc.array(fc.nat(), { maxLength: 20 }), (bytes, cuts) => {
      readAll(chunks(bytes, cuts));
    }),
    { numRuns: RUNS },
  );
});

test("frame reader: sequences of random frames (plausible headers, random payloads)", () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
      const bytes = Buffer.concat(frames.map((f) => frame(f.type, f.flags, f.streamId, f.payload)));
      readAll(chunks(bytes, cuts));
    }),
    { numRuns: RUNS },
  );
});

test("frame reader: mutated and truncated valid frame streams", () => {
  const base = validFrames();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.nat(),
      fc.array(fc.nat(), { maxLength: 10 }),
      (mutations, cut, cuts) => {
        const b = Buffer.from(base);
        for (const [pos, v] of mutations) b[pos % b.length] = v;
        readAll(chunks(b.subarray(0, cut % (b.length + 1)), cuts));
      },
    ),
    { numRuns: RUNS },
  );
});

test("frame reader: an unmutated valid stream is read the same way whatever the chunking", () => {
  const base = validFrames();
  const whole = readAll([base]);
  assert.equal(whole.events.length, 10); // 9 frames, DATA reported as start + end
  fc.assert(
    fc.property(fc.array(fc.nat(), { maxLength: 30 }), (cuts) => {
      assert.deepEqual(readAll(chunks(base, cuts)).events, whole.events);
    }),
    { numRuns: RUNS },
  );
});

const BLOCKS = [
  "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
  "8286 84be 5808 6e6f 2d63 6163 6865",
  "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
  "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
  "3fe1 1f 82",
].map((h) => Buffer.from(h.replace(/\s+/g, ""), "hex"));

test("HPACK decoder: random bytes, over many blocks on one decoder, throw nothing but H2Error and respect the list limit", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 512 }), { maxLength: 8 }), fc.integer({ min: 0, max: 4096 }), (blocks, tableSize) => {
      const d = new HpackDecoder({ maxTableSize: tableSize, maxHeaderListSize: 2048 });
      for (const b of blocks) {
        const out: string[] = [];
        try {
          d.decode(Buffer.from(b), out);
        } catch (e) {
          if (!(e instanceof H2Error)) throw e;
          return;
        }
        let size = 0;
        for (let i = 0; i < out.length; i += 2) size += 32 + out[i]!.length + out[i + 1]!.length;
        assert.ok(size <= 2048);
        assert.ok(d.table.size <= tableSize);
      }
    }),
    { numRuns: RUNS },
  );
});

test("HPACK decoder: mutated and truncated valid blocks", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...BLOCKS),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.nat(),
      (block, mutations, cut) => {
        const b = Buffer.from(block);
        for (const [pos, v] of mutations) b[pos % b.length] = v;
        onlyTyped(() => new HpackDecoder().decode(b.subarray(0, cut % (b.length + 1)), []));
      },
    ),
    { numRuns: RUNS },
  );
});

const nameArb = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
const valueArb = fc.oneof(fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, "x")), fc.constantFrom("", "application/grpc", "trailers", "15S"));

test("HPACK: encoder and decoder stay in step over many header lists and table sizes (round trip)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.array(fc.tuple(nameArb, valueArb), { maxLength: 10 }), { minLength: 1, maxLength: 12 }),
      fc.constantFrom(0, 64, 256, 4096),
      fc.constantFrom<"shorter" | "never" | "always">("shorter", "never", "always"),
      (lists, table, huffman) => {
        const e = new HpackEncoder({ maxTableSize: table, huffman });
        const d = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 20 });
        const shared = [":method", "POST", ":path", "/x"];
        for (const list of lists) {
          const extra = list.flat();
          const out: string[] = [];
          d.decode(Buffer.from(e.encode(shared, extra)), out);
          assert.deepEqual(out, [...shared, ...extra]);
          assert.deepEqual(d.table.entries(), e.table.entries());
        }
      },
    ),
    { numRuns: RUNS },
  );
});

/** A socket stand-in: what the session writes is collected; `feed` delivers bytes to it. */
function fakeSocket(): { socket: Duplex; feed(b: Buffer): void } {
  const socket = new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb();
    },
  });
  return { socket, feed: (b) => socket.push(b) };
}

/** Frames a server could plausibly send on our streams: right sizes per type, small stream IDs, valid little header blocks. */
const plausibleFrameArb = fc.oneof(
  frameArb,
  fc.record({
    type: fc.constantFrom(0, 1, 3, 4, 6, 7, 8, 9),
    flags: fc.constantFrom(0, 1, 4, 5),
    streamId: fc.constantFrom(0, 1, 3, 5, 7),
    payload: fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.constantFrom(new Uint8Array([0x88]), new Uint8Array([0x88, 0x40, 1, 0x61, 1, 0x62]), new Uint8Array(0))),
  }),
);

test("session: random frames after a valid preface never escape as exceptions; a failed session says 'protocol'", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(plausibleFrameArb, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 6 }), async (frames, cuts) => {
      const { socket, feed } = fakeSocket();
      const session = new H2Session(socket, { address: "fuzz:1" });
      const closes: string[] = [];
      feed(SERVER_PREFACE);
      await session.ready;
      for (let i = 0; i < 3; i++) {
        const c = collector();
        session.request(requestHeaders("fuzz:1", "/svc/M"), c.handler, { body: Buffer.from("x") });
        void c.done.then((r) => closes.push(r.reason));
      }
      const bytes = Buffer.concat(frames.map((f) => frame(f.type, f.flags, f.streamId, f.payload)));
      for (const part of chunks(bytes, cuts)) feed(part); // throws if anything but a typed error escaped
      await new Promise((r) => setImmediate(r));
      if (session.state === "closed" && session.error !== undefined) {
        assert.ok(session.error instanceof EndpointUnavailableError);
        assert.ok(["protocol", "goaway"].includes(session.error.reason), session.error.message);
      }
      session.destroy();
      await new Promise((r) => setImmediate(r));
      assert.equal(closes.length, 3, "every stream closed exactly once");
    }),
    { numRuns: Math.max(50, RUNS / 4) },
  );
});

/** Builds HPACK bytes for a literal field with incremental indexing and a literal name. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

const id = fc.constantFrom(1, 3, 5, 7, 9, 11);
/** What a server may do: well-formed frames on live stream IDs, in any order. */
const serverAction = fc.oneof(
  fc.record({ k: fc.constant("headers" as const), id, end: fc.boolean(), big: fc.boolean() }),
  fc.record({ k: fc.constant("data" as const), id, len: fc.nat({ max: 300 }), end: fc.boolean(), pad: fc.boolean() }),
  fc.record({ k: fc.constant("trailers" as const), id }),
  fc.record({ k: fc.constant("rst" as const), id, code: fc.constantFrom(0, 2, 7, 8) }),
  fc.record({ k: fc.constant("wu" as const), id: fc.constantFrom(0, 1, 3, 5), inc: fc.constantFrom(1, 1000, 100000) }),
  fc.record({ k: fc.constant("settings" as const), mcs: fc.nat({ max: 4 }), iws: fc.constantFrom(0, 10, 65535, 1 << 20), hts: fc.constantFrom(0, 64, 4096) }),
  fc.record({ k: fc.constant("ping" as const), ack: fc.boolean() }),
  fc.record({ k: fc.constant("goaway" as const), last: fc.constantFrom(0, 1, 3, 5, 2 ** 31 - 1), code: fc.constantFrom(0, 11) }),
  fc.record({ k: fc.constant("split" as const), id }),
);
type ClientAction = { k: "request"; body: number; end: boolean } | { k: "cancel"; n: number } | { k: "pause"; n: number } | { k: "resume"; n: number } | { k: "write"; n: number; len: number };
const clientAction: fc.Arbitrary<ClientAction> = fc.oneof(
  fc.record({ k: fc.constant("request" as const), body: fc.nat({ max: 70000 }), end: fc.boolean() }),
  fc.record({ k: fc.constant("cancel" as const), n: fc.nat() }),
  fc.record({ k: fc.constant("pause" as const), n: fc.nat() }),
  fc.record({ k: fc.constant("resume" as const), n: fc.nat() }),
  fc.record({ k: fc.constant("write" as const), n: fc.nat(), len: fc.nat({ max: 20000 }) }),
);

function serverFrame(a: { k: string }): Buffer {
  const x = a as Record<string, number | boolean> & { k: string };
  const sid = x.id as number;
  switch (x.k) {
    case "headers":
      return frame(1, 0x4 | (x.end ? 1 : 0), sid, x.big ? Buffer.concat([Buffer.from([0x88]), literal("x-a", "some value")]) : Buffer.from([0x88, 0xbe]));
    case "data": {
      const body = Buffer.alloc(x.len as number, 7);
      return x.pad ? frame(0, 0x8 | (x.end ? 1 : 0), sid, Buffer.concat([Buffer.from([3]), body, Buffer.alloc(3)])) : frame(0, x.end ? 1 : 0, sid, body);
    }
    case "trailers":
      return frame(1, 0x5, sid, literal("grpc-status", "0"));
    case "rst":
      return frame(3, 0, sid, Buffer.from([0, 0, 0, x.code as number]));
    case "wu": {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(x.inc as number);
      return frame(8, 0, sid, b);
    }
    case "settings":
      return frame(4, 0, 0, Buffer.concat([[3, x.mcs], [4, x.iws], [1, x.hts]].map(([k, v]) => { const b = Buffer.alloc(6); b.writeUInt16BE(k as number); b.writeUInt32BE(v as number, 2); return b; })));
    case "ping":
      return frame(6, x.ack ? 1 : 0, 0, Buffer.alloc(8, 1));
    case "goaway": {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(x.last as number);
      b.writeUInt32BE(x.code as number, 4);
      return frame(7, 0, 0, b);
    }
    default:
      // A header block in two pieces: HEADERS without END_HEADERS, then CONTINUATION.
      return Buffer.concat([frame(1, 0, sid, Buffer.from([0x88])), frame(9, 0x4, sid, literal("x-b", "v"))]);
  }
}

test("session: interleaved server frames and client calls keep every stream's callbacks in order and close each once", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(serverAction.map((a) => ({ server: a })), clientAction.map((c) => ({ client: c }))), { maxLength: 40 }), async (steps) => {
      const { socket, feed } = fakeSocket();
      const session = new H2Session(socket, { address: "fuzz:2", streamWindowBytes: 65535 });
      feed(SERVER_PREFACE);
      await session.ready;
      const violations: string[] = [];
      const streams: Array<{ stream: ReturnType<H2Session["request"]>; log: string[] }> = [];
      const open = (body: number, end: boolean): void => {
        const log: string[] = [];
        const note = (e: string): void => {
          if (log.includes("close")) violations.push(`${e} after close`);
          log.push(e);
        };
        const stream = session.request(requestHeaders("fuzz:2", "/svc/M"), {
          onHeaders: () => note(log.includes("headers") ? "headers twice" : "headers"),
          onData: () => note(log.includes("headers") ? "data" : "data before headers"),
          onTrailers: () => note(log.includes("headers") ? "trailers" : "trailers before headers"),
          onClose: () => note("close"),
        }, body > 0 ? { body: Buffer.alloc(body), end } : { end });
        streams.push({ stream, log });
      };
      open(10, true);
      open(0, false);
      for (const step of steps) {
        if ("server" in step) {
          feed(serverFrame(step.server)); // throws if anything but a typed error escaped
        } else {
          const c = step.client;
          const target = streams.length > 0 ? streams[("n" in c ? c.n : 0) % streams.length]!.stream : undefined;
          if (c.k === "request") open(c.body, c.end);
          else if (c.k === "cancel") target?.cancel();
          else if (c.k === "pause") target?.pause();
          else if (c.k === "resume") target?.resume();
          else if (target !== undefined && !target.closed) {
            try {
              target.write(Buffer.alloc(c.len));
            } catch {
              // Writing after end() is refused with InvalidOptionError: fine.
            }
          }
        }
        await new Promise((r) => setImmediate(r));
      }
      if (session.state === "closed" && session.error !== undefined) {
        assert.ok(["protocol", "goaway", "connection-lost"].includes(session.error.reason), session.error.message);
      }
      session.destroy();
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(violations, []);
      for (const { log } of streams) assert.equal(log.filter((e) => e === "close").length, 1, log.join(","));
    }),
    {
      numRuns: Math.max(50, RUNS / 2),
      // Found by CI: a stream started from the queue left a hole that destroy() then tried to close.
      examples: [[[{ server: { k: "settings", mcs: 2, iws: 0, hts: 0 } }, { client: { k: "request", body: 0, end: false } }, { client: { k: "request", body: 0, end: false } }, { server: { k: "rst", id: 1, code: 0 } }]]],
    },
  );
});

