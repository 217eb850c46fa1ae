// Flow-control windows, without a socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ErrorCode, H2Error } from "../../src/transport/h2/errors.js";
import { ReceiveWindow, growSendWindow } from "../../src/transport/h2/flow-control.js";

test("ReceiveWindow: the peer may not send beyond what we granted", () => {
  const w = new ReceiveWindow(1000);
  assert.equal(w.receive(600), true);
  assert.equal(w.receive(401), false);
  assert.equal(w.available, 400);
  assert.equal(w.receive(400), true);
  assert.equal(w.receive(1), false);
});

test("ReceiveWindow: released bytes are announced in batches of a quarter window, never lost", () => {
  const w = new ReceiveWindow(1000);
  w.receive(1000);
  assert.equal(w.release(100), 0);
  assert.equal(w.release(100), 0);
  assert.equal(w.release(50), 250); // 250 >= 1000/4
  assert.equal(w.available, 250);
  assert.equal(w.release(10), 0);
  assert.equal(w.flush(), 10);
  assert.equal(w.flush(), 0);
  assert.equal(w.available, 260);
});

test("ReceiveWindow: the connection starts at 65535 until our first WINDOW_UPDATE", () => {
  const w = new ReceiveWindow(16 << 20, 65535);
  assert.equal(w.receive(65536), false);
  assert.equal(w.receive(65535), true);
});

test("growSendWindow: past 2^31-1 is a FLOW_CONTROL_ERROR on that stream (or the connection); negative is allowed", () => {
  assert.equal(growSendWindow(-60, 100, 1), 40);
  assert.equal(growSendWindow(100, -160, 1), -60);
  assert.throws(() => growSendWindow(2 ** 31 - 10, 10, 3), (e: unknown) => e instanceof H2Error && e.code === ErrorCode.FLOW_CONTROL_ERROR && e.streamId === 3);
  assert.throws(() => growSendWindow(2 ** 31 - 10, 10, 0), (e: unknown) => e instanceof H2Error && e.streamId === 0);
  assert.equal(growSendWindow(2 ** 31 - 11, 10, 0), 2 ** 31 - 1);
});
