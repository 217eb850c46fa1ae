import { test } from "node:test";
import assert from "node:assert/strict";
import { parseEndpoint } from "../src/cluster/endpoint.js";
import { formatEndpointTable } from "../src/cluster/endpoint-status.js";
import { codeFromHttpStatus, decodeGrpcMessage, encodeGrpcTimeout, parseGrpcStatus } from "../src/transport/grpc-status.js";
import { Code } from "@connectrpc/connect";
import { InvalidOptionError } from "../src/errors.js";

test("parseEndpoint accepts host:port and URLs", () => {
  assert.deepEqual(parseEndpoint("127.0.0.1:2379"), {
    address: "127.0.0.1:2379", origin: "http://127.0.0.1:2379", host: "127.0.0.1", port: 2379, secure: false,
  });
  assert.equal(parseEndpoint("https://localhost:23790").origin, "https://localhost:23790");
  assert.equal(parseEndpoint("http://localhost:1/").address, "localhost:1");
  assert.equal(parseEndpoint("localhost:1", true).secure, true);
  assert.equal(parseEndpoint("http://localhost:1", true).secure, false, "an explicit scheme wins");
  assert.equal(parseEndpoint("localhost").port, 2379);
  const v6 = parseEndpoint("[::1]:2379");
  assert.equal(v6.host, "::1");
  assert.equal(v6.origin, "http://[::1]:2379");
});

test("parseEndpoint rejects junk", () => {
  for (const bad of ["", "ftp://x:1", "host:0", "host:99999", "host:abc", "http://host:1/path", "[::1"]) {
    assert.throws(() => parseEndpoint(bad), InvalidOptionError, bad);
  }
});

test("grpc-timeout picks the finest unit that fits 8 digits", () => {
  assert.equal(encodeGrpcTimeout(1500), "1500m");
  assert.equal(encodeGrpcTimeout(0.2), "1m");
  assert.equal(encodeGrpcTimeout(99_999_999), "99999999m");
  assert.equal(encodeGrpcTimeout(100_000_000), "100000S");
});

test("grpc-message is percent-decoded, malformed escapes kept", () => {
  assert.equal(decodeGrpcMessage("etcdserver: key not found"), "etcdserver: key not found");
  assert.equal(decodeGrpcMessage("caf%C3%A9 100%25"), "café 100%");
  assert.equal(decodeGrpcMessage("bad %zz"), "bad %zz");
});

test("status parsing and HTTP fallbacks", () => {
  assert.equal(parseGrpcStatus("0"), 0);
  assert.equal(parseGrpcStatus("11"), Code.OutOfRange);
  assert.equal(parseGrpcStatus("99"), Code.Unknown);
  assert.equal(parseGrpcStatus(undefined), undefined);
  assert.equal(codeFromHttpStatus(503), Code.Unavailable);
  assert.equal(codeFromHttpStatus(404), Code.Unimplemented);
  assert.equal(codeFromHttpStatus(418), Code.Unknown);
});

test("formatEndpointTable: one row per endpoint, pin marker, backoff countdown", () => {
  const table = formatEndpointTable([
    { url: "http://127.0.0.1:2379", state: "connected", pinned: true, failures: 0, memberId: 255n, name: "m1", isLeader: true, version: "3.5.16", raftTerm: 4n, dbSize: 2048n, openStreams: 3, rttMs: 0.5 },
    { url: "http://127.0.0.1:22379", state: "backing-off", pinned: false, failures: 2, retryInSeconds: 1.5, lastError: "127.0.0.1:22379: connection refused" },
  ]);
  const lines = table.split("\n");
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^ENDPOINT\s+STATE\s+NAME\s+ID\s+LEADER/);
  assert.match(lines[1]!, /^\* http:\/\/127\.0\.0\.1:2379\s+connected\s+m1\s+ff\s+yes\s+3\.5\.16\s+4\s+2\.0 KiB\s+3\s+0\.5ms\s+0$/);
  assert.match(lines[2]!, /^ {2}http:\/\/127\.0\.0\.1:22379\s+backing-off 1\.5s\s+.*2\s+127\.0\.0\.1:22379: connection refused$/);
});
