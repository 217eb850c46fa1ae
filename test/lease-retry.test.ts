// Grant and revoke are writes: a fake gRPC server applies a request and then
// resets the stream (the answer is lost), and the lease layer must neither
// create a second lease nor report an error for work that was done.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import {
  LeaseGrantRequestSchema,
  LeaseGrantResponseSchema,
  LeaseRevokeRequestSchema,
  LeaseRevokeResponseSchema,
  LeaseTimeToLiveRequestSchema,
  LeaseTimeToLiveResponseSchema,
} from "../gen/etcd/api/etcdserverpb/rpc_pb.js";
import { encodeFrame } from "../src/transport/grpc-frame.js";
import { LeaseExistsError, LeaseNotFoundError, OutcomeUnknownError, type Etcd } from "../src/index.js";
import { client, transportUnderTest } from "./support.js";

/** A Lease service in memory, with faults on request. */
class FakeLeaseServer {
  readonly leases = new Map<bigint, bigint>();
  /** Every grant request received, in order. */
  readonly grants: bigint[] = [];
  readonly revokes: bigint[] = [];
  /** Apply the next N grants (or revokes), then reset the stream instead of answering. */
  resetGrants = 0;
  resetRevokes = 0;
  /** Answer the next grant "already exists", as if another client held its ID with this TTL. */
  collideNextGrant: bigint | undefined;
  private server = http2.createServer();
  endpoint = "";

  async start(): Promise<void> {
    this.server.on("stream", (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("error", () => {});
      stream.on("end", () => this.handle(stream, String(headers[":path"]), Buffer.concat(chunks).subarray(5)));
    });
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.endpoint = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  reset(): void {
    this.leases.clear();
    this.grants.length = 0;
    this.revokes.length = 0;
    this.resetGrants = 0;
    this.resetRevokes = 0;
    this.collideNextGrant = undefined;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private handle(stream: http2.ServerHttp2Stream, path: string, body: Buffer): void {
    switch (path) {
      case "/etcdserverpb.Lease/LeaseGrant": {
        const req = fromBinary(LeaseGrantRequestSchema, body);
        this.grants.push(req.ID);
        if (this.collideNextGrant !== undefined) {
          this.leases.set(req.ID, this.collideNextGrant);
          this.collideNextGrant = undefined;
        }
        if (this.leases.has(req.ID)) return fail(stream, Code.FailedPrecondition, "etcdserver: lease already exists");
        this.leases.set(req.ID, req.TTL);
        if (this.resetGrants > 0) {
          this.resetGrants--;
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          return;
        }
        return ok(stream, LeaseGrantResponseSchema, { ID: req.ID, TTL: req.TTL });
      }
      case "/etcdserverpb.Lease/LeaseTimeToLive": {
        const req = fromBinary(LeaseTimeToLiveRequestSchema, body);
        const ttl = this.leases.get(req.ID);
        return ok(stream, LeaseTimeToLiveResponseSchema, ttl === undefined ? { ID: req.ID, TTL: -1n } : { ID: req.ID, TTL: ttl, grantedTTL: ttl });
      }
      case "/etcdserverpb.Lease/LeaseRevoke": {
        const req = fromBinary(LeaseRevokeRequestSchema, body);
        this.revokes.push(req.ID);
        if (!this.leases.delete(req.ID)) return fail(stream, Code.NotFound, "etcdserver: requested lease not found");
        if (this.resetRevokes > 0) {
          this.resetRevokes--;
          stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
          return;
        }
        return ok(stream, LeaseRevokeResponseSchema, {});
      }
      default:
        return fail(stream, Code.Unimplemented, `unknown method ${path}`);
    }
  }
}

function ok<T extends DescMessage>(stream: http2.ServerHttp2Stream, schema: T, msg: MessageInitShape<T>): void {
  stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.end(encodeFrame(toBinary(schema, create(schema, msg))));
}

function fail(stream: http2.ServerHttp2Stream, code: Code, message: string): void {
  stream.respond({ ":status": 200, "content-type": "application/grpc+proto", "grpc-status": String(code), "grpc-message": encodeURIComponent(message) }, { endStream: true });
}

const server = new FakeLeaseServer();
let etcd: Etcd;

before(async () => {
  await server.start();
  etcd = client(server.endpoint, { requestTimeoutMs: 5000 });
});
after(async () => {
  etcd?.close();
  await server.close();
});
beforeEach(() => server.reset());

// connect-node's transport reports a stream reset after the request went out as "never sent"
// and resends it itself (issue 7, item 2); the lease layer cannot see that resend.
const connectNodeResends = transportUnderTest === "connect-node" ? "connect-node resends a reset write itself (issue 7 #2)" : false;

describe("grant and revoke are safe to retry", () => {
  test("a grant applied but unanswered is retried with the same ID and confirmed: one lease, and success", async () => {
    server.resetGrants = 1;
    const g = await etcd.lease.grant(7);
    assert.equal(server.grants.length, 2, "sent twice");
    assert.equal(server.grants[0], server.grants[1], "with the same ID");
    assert.equal(server.leases.size, 1, "one lease exists");
    assert.deepEqual([...server.leases.keys()], [g.id]);
    assert.equal(g.ttl, 7);
  });

  test("a random ID taken by someone else's lease: a new ID, and the other lease is left alone", async () => {
    server.collideNextGrant = 999n;
    const g = await etcd.lease.grant(7);
    assert.equal(server.grants.length, 2);
    assert.notEqual(server.grants[0], server.grants[1]);
    assert.equal(g.id, server.grants[1]);
    assert.equal(server.leases.get(server.grants[0]!), 999n, "the other lease is untouched");
    assert.equal(server.leases.get(g.id), 7n);
  });

  test("with the caller's own ID, 'exists' after an unanswered attempt cannot be told apart: OutcomeUnknownError", { todo: connectNodeResends }, async () => {
    server.resetGrants = 1;
    await assert.rejects(etcd.lease.grant(7, { id: 42n }), (e: unknown) => e instanceof OutcomeUnknownError && e.cause instanceof LeaseExistsError);
    assert.equal(server.grants.length, 2, "one retry, then the answer");
    assert.equal(server.leases.size, 1);
  });

  test("with the caller's own ID taken from the start: LeaseExistsError, no retry", async () => {
    server.leases.set(42n, 5n);
    await assert.rejects(etcd.lease.grant(7, { id: 42n }), LeaseExistsError);
    assert.equal(server.grants.length, 1);
  });

  test("a revoke applied but unanswered is retried; 'not found' then means done", { todo: connectNodeResends }, async () => {
    server.leases.set(42n, 5n);
    server.resetRevokes = 1;
    await etcd.lease.revoke(42n);
    assert.deepEqual(server.revokes, [42n, 42n]);
    assert.equal(server.leases.size, 0);
  });

  test("revoking a lease that never existed is LeaseNotFoundError, sent once", async () => {
    await assert.rejects(etcd.lease.revoke(42n), LeaseNotFoundError);
    assert.deepEqual(server.revokes, [42n]);
  });

  test("create() after an unanswered grant keeps the one lease", async () => {
    server.resetGrants = 1;
    const lease = await etcd.lease.create(7);
    assert.equal(server.leases.size, 1);
    assert.equal(lease.id, [...server.leases.keys()][0]);
    lease.stop();
  });
});
