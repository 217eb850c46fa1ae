// The HTTP/2 engine against small node:http2 servers on 127.0.0.1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, exchange, field, requestHeaders, startH2Server } from "./support.js";

test("unary round trip: headers, body, trailers, one close", async () => {
  const server = await startH2Server((stream, headers) => {
    const parts: Buffer[] = [];
    stream.on("data", (c: Buffer) => parts.push(c));
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "x-path": String(headers[":path"]) }));
      stream.end(Buffer.concat([Buffer.from("echo:"), ...parts]));
    });
  });
  const session = await connect(server.port);
  await session.ready;
  const { done } = exchange(session, requestHeaders(server.authority, "/svc/Method"), { body: Buffer.from("hello") });
  const r = await done;
  assert.equal(r.reason, "done");
  assert.equal(field(r.headers, ":status"), "200");
  assert.equal(r.data.toString(), "echo:hello");
  assert.equal(field(r.trailers, "grpc-status"), "0");
  assert.equal(field(r.trailers, "x-path"), "/svc/Method");
  assert.deepEqual(r.events, ["headers", "data", "trailers", "close"]);
  await session.close();
  assert.equal(session.state, "closed");
  await server.close();
});
