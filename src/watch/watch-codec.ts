/**
 * Hand-written codecs for the Watch stream's two messages, the ones a
 * client with thousands of watchers sends and receives by the thousand:
 * `WatchRequest` encoding and `WatchResponse` decoding. protobuf-es walks
 * descriptors field by field (about 10 µs per small message here); these
 * know the layouts. Both are exact drop-ins, checked against protobuf-es by
 * property tests: on anything unexpected they return `undefined` and the
 * caller uses protobuf-es.
 * @module
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Event, KeyValue } from "../../gen/etcd/api/mvccpb/kv_pb.js";
import type { ResponseHeader, WatchRequestSchema, WatchResponse } from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { BAIL, Reader, header, keyValue } from "../kv/wire-reader.js";

type WatchRequestInit = MessageInitShape<typeof WatchRequestSchema>;

// ---------------------------------------------------------------------------
// Decoding WatchResponse

function event(r: Reader, end: number): Event {
  const ev: Event = { $typeName: "mvccpb.Event", type: 0 };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 8: {
        const t = r.uint32();
        if (t > 1) throw BAIL; // an event type this decoder does not know: let protobuf-es keep it
        ev.type = t;
        break;
      }
      case 18:
        ev.kv = subKeyValue(r, end);
        break;
      case 26:
        ev.prevKv = subKeyValue(r, end);
        break;
      default:
        throw BAIL;
    }
  }
  if (r.pos !== end) throw BAIL;
  return ev;
}

function subKeyValue(r: Reader, outer: number): KeyValue {
  const len = r.uint32();
  const end = r.pos + len;
  if (end > outer) throw BAIL;
  return keyValue(r, end);
}

// Like protobuf-es, refuse strings that are not valid UTF-8 (it throws; so do we, by stepping aside).
const utf8 = new TextDecoder("utf-8", { fatal: true });

function text(bytes: Uint8Array): string {
  if (bytes.length === 0) return "";
  try {
    return utf8.decode(bytes);
  } catch {
    throw BAIL;
  }
}

function bool(r: Reader): boolean {
  const v = r.uint32();
  if (v > 1) throw BAIL; // valid protobuf, but rare enough to leave to protobuf-es
  return v === 1;
}

// The header repeats from response to response (same member, term, often
// revision): reuse the last one decoded when its bytes are the same, which
// saves an object and three 64-bit bigints per response.
let lastHeaderBytes = new Uint8Array(0);
let lastHeader: ResponseHeader | undefined;

function cachedHeader(r: Reader, end: number): ResponseHeader {
  const b = r.buf;
  const start = r.pos;
  const len = end - start;
  const prev = lastHeaderBytes;
  if (lastHeader !== undefined && prev.length === len) {
    let same = true;
    for (let i = 0; i < len; i++) {
      if (prev[i] !== b[start + i]) {
        same = false;
        break;
      }
    }
    if (same) {
      r.pos = end;
      return lastHeader;
    }
  }
  const h = header(r, end);
  lastHeaderBytes = b.slice(start, end);
  lastHeader = Object.freeze(h) as ResponseHeader;
  return lastHeader;
}

/**
 * Decodes a serialized `etcdserverpb.WatchResponse`, or returns undefined
 * when the bytes hold anything this fast path does not handle. Responses
 * may share one (frozen) header object.
 */
export function decodeWatchResponse(bytes: Uint8Array): WatchResponse | undefined {
  const r = new Reader(bytes, bytes.length);
  const res: WatchResponse = {
    $typeName: "etcdserverpb.WatchResponse",
    watchId: 0n,
    created: false,
    canceled: false,
    compactRevision: 0n,
    cancelReason: "",
    fragment: false,
    events: [],
  };
  try {
    while (r.pos < r.end) {
      const tag = r.uint32();
      switch (tag) {
        case 10: {
          const len = r.uint32();
          const end = r.pos + len;
          if (end > r.end) return undefined;
          res.header = cachedHeader(r, end);
          break;
        }
        case 16:
          res.watchId = r.int64(true);
          break;
        case 24:
          res.created = bool(r);
          break;
        case 32:
          res.canceled = bool(r);
          break;
        case 40:
          res.compactRevision = r.int64(true);
          break;
        case 50:
          res.cancelReason = text(r.bytes());
          break;
        case 56:
          res.fragment = bool(r);
          break;
        case 90: {
          const len = r.uint32();
          const end = r.pos + len;
          if (end > r.end) return undefined;
          res.events.push(event(r, end));
          break;
        }
        default:
          return undefined;
      }
    }
  } catch (e) {
    if (e === BAIL) return undefined;
    throw e;
  }
  if (r.pos !== r.end) return undefined;
  return res;
}

// ---------------------------------------------------------------------------
// Encoding WatchRequest

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Bytes of a varint holding `v` (0 <= v < 2^53). */
function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Bytes of an int64 field value (negative values take ten bytes). */
function int64Size(v: bigint): number {
  if (v >= 0n && v <= MAX_SAFE) return varintSize(Number(v));
  if (v < 0n) return 10;
  let n = 1;
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    x >>= 7n;
    n++;
  }
  return n;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  varint(v: number): void {
    const b = this.buf;
    while (v >= 0x80) {
      b[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    b[this.pos++] = v;
  }

  int64(v: bigint): void {
    if (v >= 0n && v <= MAX_SAFE) {
      this.varint(Number(v));
      return;
    }
    let x = BigInt.asUintN(64, v);
    const b = this.buf;
    while (x >= 0x80n) {
      b[this.pos++] = Number(x & 0x7fn) | 0x80;
      x >>= 7n;
    }
    b[this.pos++] = Number(x);
  }

  bytes(v: Uint8Array): void {
    this.varint(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }
}

/** The fields of a create request, checked to be of the types this encoder writes. */
interface CreateFields {
  key: Uint8Array | undefined;
  rangeEnd: Uint8Array | undefined;
  startRevision: bigint | undefined;
  progressNotify: boolean | undefined;
  filters: number[] | undefined;
  prevKv: boolean | undefined;
  watchId: bigint | undefined;
  fragment: boolean | undefined;
}

const CREATE_KEYS = new Set(["$typeName", "key", "rangeEnd", "startRevision", "progressNotify", "filters", "prevKv", "watchId", "fragment"]);

/** The create request's fields when they all have the expected types, else undefined. */
function createFields(v: Record<string, unknown>): CreateFields | undefined {
  for (const k in v) if (!CREATE_KEYS.has(k) && v[k] !== undefined) return undefined;
  const { key, rangeEnd, startRevision, progressNotify, filters, prevKv, watchId, fragment } = v;
  if (key !== undefined && !(key instanceof Uint8Array)) return undefined;
  if (rangeEnd !== undefined && !(rangeEnd instanceof Uint8Array)) return undefined;
  if (startRevision !== undefined && typeof startRevision !== "bigint") return undefined;
  if (watchId !== undefined && typeof watchId !== "bigint") return undefined;
  if (progressNotify !== undefined && typeof progressNotify !== "boolean") return undefined;
  if (prevKv !== undefined && typeof prevKv !== "boolean") return undefined;
  if (fragment !== undefined && typeof fragment !== "boolean") return undefined;
  if (filters !== undefined) {
    if (!Array.isArray(filters)) return undefined;
    for (const f of filters) if (typeof f !== "number" || !Number.isInteger(f) || f < 0 || f > 0x7fffffff) return undefined;
  }
  return { key, rangeEnd, startRevision, progressNotify, filters, prevKv, watchId, fragment } as CreateFields;
}

/** Size of an encoded WatchCreateRequest body. */
function createSize(c: CreateFields, filtersLen: number): number {
  let n = 0;
  if (c.key !== undefined && c.key.length > 0) n += 1 + varintSize(c.key.length) + c.key.length;
  if (c.rangeEnd !== undefined && c.rangeEnd.length > 0) n += 1 + varintSize(c.rangeEnd.length) + c.rangeEnd.length;
  if (c.startRevision !== undefined && c.startRevision !== 0n) n += 1 + int64Size(c.startRevision);
  if (c.progressNotify === true) n += 2;
  if (filtersLen > 0) n += 1 + varintSize(filtersLen) + filtersLen;
  if (c.prevKv === true) n += 2;
  if (c.watchId !== undefined && c.watchId !== 0n) n += 1 + int64Size(c.watchId);
  if (c.fragment === true) n += 2;
  return n;
}

/**
 * Encodes a `WatchRequest` given as an init object, byte for byte as
 * protobuf-es would; returns undefined for anything but the plain create,
 * cancel and progress requests this client builds.
 */
export function encodeWatchRequest(init: WatchRequestInit): Uint8Array | undefined {
  const u = init.requestUnion as { case?: unknown; value?: unknown } | undefined;
  if (u === undefined || (init as { $unknown?: unknown }).$unknown !== undefined) return undefined;
  for (const k in init) if (k !== "requestUnion" && k !== "$typeName") return undefined;
  const value = u.value as Record<string, unknown> | undefined;
  if (typeof value !== "object" || value === null || (value as { $unknown?: unknown }).$unknown !== undefined) return undefined;
  switch (u.case) {
    case "createRequest": {
      const c = createFields(value);
      if (c === undefined) return undefined;
      let filtersLen = 0;
      if (c.filters !== undefined) for (const f of c.filters) filtersLen += varintSize(f);
      const body = createSize(c, filtersLen);
      const w = new Writer(new Uint8Array(1 + varintSize(body) + body));
      w.buf[w.pos++] = 10;
      w.varint(body);
      if (c.key !== undefined && c.key.length > 0) {
        w.buf[w.pos++] = 10;
        w.bytes(c.key);
      }
      if (c.rangeEnd !== undefined && c.rangeEnd.length > 0) {
        w.buf[w.pos++] = 18;
        w.bytes(c.rangeEnd);
      }
      if (c.startRevision !== undefined && c.startRevision !== 0n) {
        w.buf[w.pos++] = 24;
        w.int64(c.startRevision);
      }
      if (c.progressNotify === true) {
        w.buf[w.pos++] = 32;
        w.buf[w.pos++] = 1;
      }
      if (filtersLen > 0) {
        w.buf[w.pos++] = 42;
        w.varint(filtersLen);
        for (const f of c.filters!) w.varint(f);
      }
      if (c.prevKv === true) {
        w.buf[w.pos++] = 48;
        w.buf[w.pos++] = 1;
      }
      if (c.watchId !== undefined && c.watchId !== 0n) {
        w.buf[w.pos++] = 56;
        w.int64(c.watchId);
      }
      if (c.fragment === true) {
        w.buf[w.pos++] = 64;
        w.buf[w.pos++] = 1;
      }
      return w.buf;
    }
    case "cancelRequest": {
      for (const k in value) if (k !== "watchId" && k !== "$typeName" && value[k] !== undefined) return undefined;
      const id = value.watchId;
      if (id !== undefined && typeof id !== "bigint") return undefined;
      const body = id === undefined || id === 0n ? 0 : 1 + int64Size(id);
      const w = new Writer(new Uint8Array(1 + varintSize(body) + body));
      w.buf[w.pos++] = 18;
      w.varint(body);
      if (body > 0) {
        w.buf[w.pos++] = 8;
        w.int64(id!);
      }
      return w.buf;
    }
    case "progressRequest": {
      for (const k in value) if (k !== "$typeName") return undefined;
      return new Uint8Array([26, 0]);
    }
    default:
      return undefined;
  }
}
