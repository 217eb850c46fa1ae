// HPACK: RFC 7541 Appendix C examples (C.1 to C.6, with and without Huffman),
// the Huffman code, the encoder's table-following cache, size updates and the
// decoder's limits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HpackDecoder } from "../../src/transport/h2/hpack/decoder.js";
import { HpackEncoder } from "../../src/transport/h2/hpack/encoder.js";
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode, huffmanEncode, huffmanLength } from "../../src/transport/h2/hpack/huffman.js";
import { BlockReader, writeInteger } from "../../src/transport/h2/hpack/primitives.js";
import { ErrorCode, H2Error } from "../../src/transport/h2/errors.js";

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ""), "hex");
const pairs = (list: Array<[string, string]>): string[] => list.flat();

function decodeAll(d: HpackDecoder, block: Buffer): Array<[string, string]> {
  const out: string[] = [];
  d.decode(block, out);
  const res: Array<[string, string]> = [];
  for (let i = 0; i < out.length; i += 2) res.push([out[i]!, out[i + 1]!]);
  return res;
}

test("C.1 integer representation", () => {
  const buf = new Uint8Array(8);
  assert.deepEqual([...buf.subarray(0, writeInteger(buf, 0, 10, 5, 0))], [0x0a]);
  assert.deepEqual([...buf.subarray(0, writeInteger(buf, 0, 1337, 5, 0))], [0x1f, 0x9a, 0x0a]);
  assert.deepEqual([...buf.subarray(0, writeInteger(buf, 0, 42, 8, 0))], [0x2a]);
  const r = new BlockReader(hex("1f9a0a"), 3);
  assert.equal(r.integer(5), 1337);
  assert.equal(r.pos, 3);
});

test("C.2 header field representations", () => {
  // C.2.1 literal with indexing
  let d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")), [["custom-key", "custom-header"]]);
  assert.deepEqual(d.table.entries(), [["custom-key", "custom-header"]]);
  assert.equal(d.table.size, 55);
  const e = new HpackEncoder({ huffman: "never" });
  assert.equal(e.encode(["custom-key", "custom-header"]).toString("hex"), hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572").toString("hex"));
  // C.2.2 literal without indexing
  d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex("040c 2f73 616d 706c 652f 7061 7468")), [[":path", "/sample/path"]]);
  assert.equal(d.table.length, 0);
  // C.2.3 literal never indexed
  d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex("1008 7061 7373 776f 7264 0673 6563 7265 74")), [["password", "secret"]]);
  assert.equal(d.table.length, 0);
  const s = new HpackEncoder({ huffman: "never", sensitive: ["password"] });
  assert.equal(s.encode(["password", "secret"]).toString("hex"), "100870617373776f726406736563726574");
  assert.equal(s.table.length, 0);
  // C.2.4 indexed
  d = new HpackDecoder();
  assert.deepEqual(decodeAll(d, hex("82")), [[":method", "GET"]]);
  assert.equal(new HpackEncoder().encode([":method", "GET"]).toString("hex"), "82");
});

const REQ1: Array<[string, string]> = [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]];
const REQ2: Array<[string, string]> = [...REQ1, ["cache-control", "no-cache"]];
const REQ3: Array<[string, string]> = [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]];
const REQ_TABLES: Array<[Array<[string, string]>, number]> = [
  [[[":authority", "www.example.com"]], 57],
  [[["cache-control", "no-cache"], [":authority", "www.example.com"]], 110],
  [[["custom-key", "custom-value"], ["cache-control", "no-cache"], [":authority", "www.example.com"]], 164],
];

const DATE1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const URL = "https://www.example.com";
const COOKIE = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const RESP1: Array<[string, string]> = [[":status", "302"], ["cache-control", "private"], ["date", DATE1], ["location", URL]];
const RESP2: Array<[string, string]> = [[":status", "307"], ["cache-control", "private"], ["date", DATE1], ["location", URL]];
const RESP3: Array<[string, string]> = [[":status", "200"], ["cache-control", "private"], ["date", DATE2], ["location", URL], ["content-encoding", "gzip"], ["set-cookie", COOKIE]];
const RESP_TABLES: Array<[Array<[string, string]>, number]> = [
  [[["location", URL], ["date", DATE1], ["cache-control", "private"], [":status", "302"]], 222],
  [[[":status", "307"], ["location", URL], ["date", DATE1], ["cache-control", "private"]], 222],
  [[["set-cookie", COOKIE], ["content-encoding", "gzip"], ["date", DATE2]], 215],
];

function sequence(name: string, blocks: string[], lists: Array<Array<[string, string]>>, tables: Array<[Array<[string, string]>, number]>, tableSize: number, huffman: "never" | "always"): void {
  test(`${name}: decoder`, () => {
    const d = new HpackDecoder({ maxTableSize: tableSize });
    blocks.forEach((b, i) => {
      assert.deepEqual(decodeAll(d, hex(b)), lists[i], `${name} block ${i + 1}`);
      assert.deepEqual(d.table.entries(), tables[i]![0], `${name} table after ${i + 1}`);
      assert.equal(d.table.size, tables[i]![1]);
    });
  });
  test(`${name}: encoder produces the RFC's bytes`, () => {
    const e = new HpackEncoder({ maxTableSize: tableSize, peerMaxTableSize: tableSize, huffman, maxEntryShare: 1 });
    blocks.forEach((b, i) => {
      // A fresh array each time: this checks the field encoding, not the block cache.
      assert.equal(e.encode(pairs(lists[i]!)).toString("hex"), hex(b).toString("hex"), `${name} block ${i + 1}`);
      assert.deepEqual(e.table.entries(), tables[i]![0]);
      assert.equal(e.table.size, tables[i]![1]);
    });
  });
}

sequence("C.3 requests without Huffman", ["8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d", "8286 84be 5808 6e6f 2d63 6163 6865", "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"], [REQ1, REQ2, REQ3], REQ_TABLES, 4096, "never");
sequence("C.4 requests with Huffman", ["8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf", "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"], [REQ1, REQ2, REQ3], REQ_TABLES, 4096, "always");
sequence(
  "C.5 responses without Huffman",
  [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
  ],
  [RESP1, RESP2, RESP3],
  RESP_TABLES,
  256,
  "never",
);
sequence(
  "C.6 responses with Huffman",
  [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
  ],
  [RESP1, RESP2, RESP3],
  RESP_TABLES,
  256,
  "always",
);

test("Huffman: canonical codes match RFC 7541 Appendix B samples", () => {
  assert.equal(HUFFMAN_CODES[0], 0x1ff8);
  assert.equal(HUFFMAN_LENGTHS[0], 13);
  assert.equal(HUFFMAN_CODES[48], 0x0); // '0'
  assert.equal(HUFFMAN_CODES[32], 0x14); // ' '
  assert.equal(HUFFMAN_CODES[255], 0x3ffffee);
  assert.equal(HUFFMAN_CODES[256], 0x3fffffff); // EOS
  assert.equal(HUFFMAN_LENGTHS[256], 30);
});

test("Huffman: every byte value round-trips, alone and in runs", () => {
  const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
  for (const s of [all, all.split("").reverse().join(""), "a", "", "\xff\xfe\x00\x01", "0".repeat(1000)]) {
    const buf = new Uint8Array(huffmanLength(s) + 1);
    const n = huffmanEncode(s, buf, 0);
    assert.equal(n, huffmanLength(s));
    const out = new Uint8Array(Math.ceil((n * 8) / 5) + 1);
    const m = huffmanDecode(buf, 0, n, out);
    assert.equal(Buffer.from(out.subarray(0, m)).toString("latin1"), s);
  }
});

test("Huffman: bad padding and EOS are compression errors", () => {
  const out = new Uint8Array(64);
  const isCompression = (e: unknown): boolean => e instanceof H2Error && e.code === ErrorCode.COMPRESSION_ERROR;
  assert.throws(() => huffmanDecode(hex("00"), 0, 1, out), isCompression); // zero padding ('0' then 000)
  assert.throws(() => huffmanDecode(hex("ffff"), 0, 2, out), isCompression); // 16 bits of padding
  assert.throws(() => huffmanDecode(hex("ffff fffc"), 0, 4, out), isCompression); // EOS
  assert.equal(huffmanDecode(hex("07"), 0, 1, out), 1); // '0' (00000) + 111 padding
});

test("encoder: repeated fields become one-byte dynamic indices that follow the table as it grows", () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  const base = [":method", "POST", ":scheme", "http", ":path", "/etcdserverpb.KV/Put", ":authority", "127.0.0.1:2379", "content-type", "application/grpc", "te", "trailers"];
  const first = Buffer.from(e.encode(base, ["grpc-timeout", "15S"]));
  assert.deepEqual(decodeAll(d, first).flat(), [...base, "grpc-timeout", "15S"]);
  // Steady state: every field is an index, one byte each.
  const second = Buffer.from(e.encode(base, ["grpc-timeout", "15S"]));
  assert.equal(second.length, 7);
  assert.deepEqual(decodeAll(d, second).flat(), [...base, "grpc-timeout", "15S"]);
  // New entries shift every index by one per entry; the cached block must follow.
  for (let i = 0; i < 5; i++) {
    const block = Buffer.from(e.encode(base, ["grpc-timeout", `${i}m`]));
    assert.deepEqual(decodeAll(d, block).flat(), [...base, "grpc-timeout", `${i}m`], `round ${i}`);
  }
  const again = Buffer.from(e.encode(base, ["grpc-timeout", "15S"]));
  assert.equal(again.length, 7);
  assert.deepEqual(decodeAll(d, again).flat(), [...base, "grpc-timeout", "15S"]);
  assert.deepEqual(e.table.entries(), d.table.entries());
});

test("encoder: fields evicted from a small table are re-sent as literals, staying in step with the decoder", () => {
  const e = new HpackEncoder({ maxTableSize: 200, peerMaxTableSize: 200 });
  const d = new HpackDecoder({ maxTableSize: 200 });
  const base = [":method", "POST", ":path", "/a/b"];
  for (let i = 0; i < 40; i++) {
    const extra = ["x-k", `value-${i % 7}`, "x-other", `v${i % 3}`];
    assert.deepEqual(decodeAll(d, Buffer.from(e.encode(base, extra))).flat(), [...base, ...extra], `round ${i}`);
    assert.deepEqual(e.table.entries(), d.table.entries());
  }
});

test("encoder: a value too large for the table is a literal without indexing, encoded once and cached", () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder({ maxHeaderListSize: 1 << 20 });
  const token = "t".repeat(20 * 1024);
  const a = Buffer.from(e.encode([":path", "/x"], ["token", token]));
  assert.equal(e.table.entries().some(([n]) => n === "token"), false);
  const b = Buffer.from(e.encode([":path", "/x"], ["token", token]));
  assert.ok(b.length < a.length); // :path is an index the second time; the token literal is the same bytes
  assert.deepEqual(decodeAll(d, a).flat(), [":path", "/x", "token", token]);
  assert.deepEqual(decodeAll(d, b).flat(), [":path", "/x", "token", token]);
});

test("encoder: using less than the peer's table is announced in the first block", () => {
  const e = new HpackEncoder({ maxTableSize: 256 });
  const d = new HpackDecoder();
  const block = Buffer.from(e.encode(["a", "1"]));
  assert.equal(block[0], 0x3f); // size update (5-bit prefix, continued)
  assert.deepEqual(decodeAll(d, block).flat(), ["a", "1"]);
  assert.equal(d.table.maxSize, 256);
  assert.equal(Buffer.from(e.encode(["a", "1"])).toString("hex"), "be");
});

test("encoder: a smaller peer table is announced at the start of the next block, and both sides shrink", () => {
  const e = new HpackEncoder();
  const d = new HpackDecoder();
  decodeAll(d, Buffer.from(e.encode(["a", "1", "b", "2"])));
  e.setPeerMaxTableSize(0);
  e.setPeerMaxTableSize(40);
  const block = Buffer.from(e.encode(["a", "1"]));
  assert.equal(block[0], 0x20); // size update to 0 first (the minimum), then 40
  assert.deepEqual(decodeAll(d, block).flat(), ["a", "1"]);
  assert.equal(d.table.maxSize, 40);
  assert.deepEqual(d.table.entries(), e.table.entries());
});

test("encoder: names and values that cannot be sent are refused with InvalidOptionError", async () => {
  const { InvalidOptionError } = await import("../../src/errors.js");
  const e = new HpackEncoder();
  assert.throws(() => e.encode(["Upper", "x"]), InvalidOptionError);
  assert.throws(() => e.encode(["x-a", "line\r\nbreak"]), InvalidOptionError);
  assert.throws(() => e.encode(["x-a", "snow \u2603"]), InvalidOptionError);
  assert.throws(() => e.encode(["odd"]), InvalidOptionError);
});

test("decoder: size updates above our limit, after a field, or more than two are errors", () => {
  const isCompression = (e: unknown): boolean => e instanceof H2Error && e.code === ErrorCode.COMPRESSION_ERROR && e.streamId === 0;
  assert.throws(() => new HpackDecoder({ maxTableSize: 256 }).decode(hex("3fe11f"), []), isCompression); // 4096 > 256
  assert.throws(() => new HpackDecoder().decode(hex("82 20"), []), isCompression); // after a field
  assert.throws(() => new HpackDecoder().decode(hex("20 20 20"), []), isCompression);
  const d = new HpackDecoder();
  d.decode(hex("3f09"), []); // 40: fine
  assert.equal(d.table.maxSize, 40);
});

test("decoder: bad indices, truncation and overlong integers are errors", () => {
  const isCompression = (e: unknown): boolean => e instanceof H2Error && e.code === ErrorCode.COMPRESSION_ERROR;
  for (const b of ["80", "fe", "be", "4003 6162", "41", "1f80 8080 8080 8080 01", "ff80808080808001", "00"]) {
    assert.throws(() => new HpackDecoder().decode(hex(b), []), isCompression, b);
  }
});

test("decoder: an HPACK bomb (one big entry referenced over and over) fails at the header list limit", () => {
  const e = new HpackEncoder({ maxEntryShare: 1, huffman: "never" });
  const big = "x".repeat(3000);
  const first = Buffer.from(e.encode(["x-big", big]));
  const idx = Buffer.from(e.encode(["x-big", big]));
  assert.equal(idx.length, 1);
  // The first block inserts the entry, then 1000 one-byte references: 3 MB of headers from 4 KB.
  const bomb = Buffer.concat([first, Buffer.alloc(1000, idx[0])]);
  const d = new HpackDecoder({ maxHeaderListSize: 64 * 1024 });
  const out: string[] = [];
  assert.throws(() => d.decode(bomb, out), (err: unknown) => err instanceof H2Error && err.code === ErrorCode.ENHANCE_YOUR_CALM);
  assert.ok(out.length < 50, `${out.length / 2} fields were materialised before the limit`);
});

test("decoder: a string announcing more bytes than the block holds fails before allocating", () => {
  const d = new HpackDecoder();
  // Literal, new name of 2^31-2 bytes: must fail on the length check.
  const block = Buffer.from([0x40, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x07]);
  assert.throws(() => d.decode(block, []), (e: unknown) => e instanceof H2Error && e.code === ErrorCode.COMPRESSION_ERROR);
});
