// The HTTP/2 engine against a real etcd (ETCD_BIN: 3.4 or 3.5): raw gRPC
// Put, Range and Txn calls with the hand codecs and with protobuf-es, a
// trailers-only error answer, TLS with ALPN h2 (on 3.4 that is Go's net/http
// server, a second HTTP/2 implementation), PINGs, and the member stopping under an open stream.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import * as net from "node:net";
import * as tls from "node:tls";
import { create, create as createMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  PutRequestSchema,
  PutResponseSchema,
  RangeRequestSchema,
  RangeResponseSchema,
  TxnRequestSchema,
  TxnResponseSchema,
  WatchRequestSchema,
  Compare_CompareResult,
  Compare_CompareTarget,
} from "../../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { EndpointUnavailableError } from "../../src/errors.js";
import { encodePutRequest } from "../../src/kv/put-request-encoder.js";
import { decodePutResponse } from "../../src/kv/put-response-decoder.js";
import { decodeRangeResponse } from "../../src/kv/range-decoder.js";
import { encodeRangeRequest } from "../../src/kv/range-request-encoder.js";
import { decodeTxnResponse } from "../../src/kv/txn-response-decoder.js";
import { H2Session } from "../../src/transport/h2/session.js";
import { makeCerts, startEtcd, type EtcdMember, type TestCerts } from "../harness/index.js";
import { GrpcCallError, grpcFrame, grpcHeaders, grpcUnary } from "./grpc-unary.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function plainSession(member: EtcdMember): Promise<H2Session> {
  const [host, port] = member.endpoint.split(":") as [string, string];
  const socket = net.connect({ host, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const session = new H2Session(socket, { address: member.endpoint, handshakeTimeoutMs: 5000 });
  await session.ready;
  return session;
}

describe("raw gRPC over the engine against etcd", () => {
  let member: EtcdMember;
  let certs: TestCerts;
  let tlsMember: EtcdMember;
  before(async () => {
    certs = makeCerts();
    [member, tlsMember] = await Promise.all([startEtcd(), startEtcd({ tls: certs })]);
  });
  after(async () => {
    await Promise.all([member?.stop(), tlsMember?.stop()]);
    rmSync(certs.dir, { recursive: true, force: true });
  });

  test("Put and Range with the hand codecs, and the same with protobuf-es", async () => {
    const session = await plainSession(member);
    const put = grpcHeaders(member.endpoint, "/etcdserverpb.KV/Put");
    const range = grpcHeaders(member.endpoint, "/etcdserverpb.KV/Range");
    const key = enc.encode(`h2/${process.pid}/a`);
    const pr = decodePutResponse(await grpcUnary(session, put, encodePutRequest({ key, value: enc.encode("one") })!))!;
    assert.ok(pr.header!.revision > 0n);
    const rr = decodeRangeResponse(await grpcUnary(session, range, encodeRangeRequest({ key })!))!;
    assert.equal(dec.decode(rr.kvs[0]!.value), "one");
    assert.equal(rr.kvs[0]!.modRevision, pr.header!.revision);
    // protobuf-es on both sides, and prevKv back.
    const pr2 = fromBinary(PutResponseSchema, await grpcUnary(session, put, toBinary(PutRequestSchema, create(PutRequestSchema, { key, value: enc.encode("two"), prevKv: true }))));
    assert.equal(dec.decode(pr2.prevKv!.value), "one");
    const rr2 = fromBinary(RangeResponseSchema, await grpcUnary(session, range, toBinary(RangeRequestSchema, create(RangeRequestSchema, { key }))));
    assert.equal(dec.decode(rr2.kvs[0]!.value), "two");
    // 200 calls in flight on the one connection.
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) => grpcUnary(session, put, encodePutRequest({ key: enc.encode(`h2/${process.pid}/m${i}`), value: enc.encode(String(i)) })!)),
    );
    assert.equal(many.length, 200);
    const all = decodeRangeResponse(await grpcUnary(session, range, encodeRangeRequest({ key: enc.encode(`h2/${process.pid}/m`), rangeEnd: enc.encode(`h2/${process.pid}/n`), countOnly: true })!))!;
    assert.equal(all.count, 200n);
    await session.close();
  });

  test("Txn decoded by the hand decoder equals protobuf-es", async () => {
    const session = await plainSession(member);
    const key = enc.encode(`h2/${process.pid}/txn`);
    const req = toBinary(
      TxnRequestSchema,
      create(TxnRequestSchema, {
        compare: [{ key, result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.VERSION, targetUnion: { case: "version", value: 0n } }],
        success: [{ request: { case: "requestPut", value: { key, value: enc.encode("v") } } }, { request: { case: "requestRange", value: { key } } }],
        failure: [{ request: { case: "requestRange", value: { key } } }],
      }),
    );
    const bytes = await grpcUnary(session, grpcHeaders(member.endpoint, "/etcdserverpb.KV/Txn"), req);
    const fast = decodeTxnResponse(bytes);
    assert.deepStrictEqual(fast, fromBinary(TxnResponseSchema, bytes));
    assert.equal(fast!.succeeded, true);
    assert.equal(fast!.responses[1]!.response.case, "responseRange");
    await session.close();
  });

  test("an error answer (trailers-only) comes through with its grpc-status", async () => {
    const session = await plainSession(member);
    const err = await grpcUnary(session, grpcHeaders(member.endpoint, "/etcdserverpb.KV/Put"), encodePutRequest({ value: enc.encode("no key") })!).catch((e: unknown) => e);
    assert.ok(err instanceof GrpcCallError);
    assert.equal(err.status, 3);
    assert.match(err.message, /key is not provided/);
    assert.equal(session.state, "ready");
    await session.close();
  });

  test("TLS with ALPN h2", async () => {
    const [host, port] = tlsMember.endpoint.split(":") as [string, string];
    const socket = tls.connect({ host, port: Number(port), ca: certs.ca, ALPNProtocols: ["h2"] });
    const session = new H2Session(socket, { address: tlsMember.endpoint, handshakeTimeoutMs: 5000 });
    await session.ready;
    const key = enc.encode(`h2/${process.pid}/tls`);
    await grpcUnary(session, grpcHeaders(tlsMember.endpoint, "/etcdserverpb.KV/Put", "https"), encodePutRequest({ key, value: enc.encode("secure") })!);
    const rr = decodeRangeResponse(await grpcUnary(session, grpcHeaders(tlsMember.endpoint, "/etcdserverpb.KV/Range", "https"), encodeRangeRequest({ key })!))!;
    assert.equal(dec.decode(rr.kvs[0]!.value), "secure");
    await session.close();
  });

  test("PING round trip with a call open", async () => {
    const session = await plainSession(member);
    const call = grpcUnary(session, grpcHeaders(member.endpoint, "/etcdserverpb.KV/Range"), encodeRangeRequest({ key: enc.encode("x") })!);
    const rtt = await session.ping();
    assert.ok(rtt >= 0 && rtt < 5000);
    await call;
    await session.close();
  });

  test("the member stopping under an open watch stream: the stream is 'lost', the session closes with the endpoint's error", async () => {
    const doomed = await startEtcd();
    try {
      const session = await plainSession(doomed);
      const got: string[] = [];
      let closed!: (v: [string, Error | undefined]) => void;
      const ended = new Promise<[string, Error | undefined]>((r) => (closed = r));
      const watch = session.request(grpcHeaders(doomed.endpoint, "/etcdserverpb.Watch/Watch"), {
        onHeaders: () => got.push("headers"),
        onData: (c) => c.length > 0 && got.push("data"),
        onTrailers: () => got.push("trailers"),
        onClose: (reason, _code, error) => closed([reason, error]),
      });
      const create = toBinary(WatchRequestSchema, createMessage(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: enc.encode("k") } } }));
      watch.write(grpcFrame(create));
      // The created event arrives: the stream is live.
      for (let i = 0; i < 200 && !got.includes("data"); i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(got, ["headers", "data"]);
      const sessionClosed = new Promise<Error | undefined>((r) => session.once("close", r));
      await doomed.stop();
      const [reason, error] = await ended;
      assert.equal(reason, "lost");
      assert.ok(error instanceof EndpointUnavailableError);
      assert.equal(error.endpoint, doomed.endpoint);
      assert.equal(await sessionClosed, error);
      assert.equal(session.acceptsRequests, false);
    } finally {
      await doomed.stop();
    }
  });
});
