// The request queue of one stream attempt: a reader gets what is pushed, a
// second reader (the layer below opened the stream again before the server
// answered) gets everything again, and readers that stop do not end the queue.
import { test } from "node:test";
import assert from "node:assert/strict";
import { RequestQueue } from "../src/watch/request-queue.js";

async function readAvailable(it: AsyncIterator<number>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

test("a reader gets queued and later messages, in order", async () => {
  const q = new RequestQueue<number>();
  q.push(1);
  q.push(2);
  const it = q[Symbol.asyncIterator]();
  assert.deepEqual(await readAvailable(it, 2), [1, 2]);
  const pending = it.next();
  q.push(3);
  assert.deepEqual(await pending, { value: 3, done: false });
  q.end();
  assert.deepEqual(await it.next(), { value: undefined, done: true });
  q.push(4);
  assert.equal(q.pending, 0, "nothing is queued after end()");
});

test("before the server answered, a second reader replays everything and the first one ends", async () => {
  const q = new RequestQueue<number>();
  q.push(1);
  q.push(2);
  const first = q[Symbol.asyncIterator]();
  assert.deepEqual(await readAvailable(first, 2), [1, 2]);
  const stuck = first.next();
  const second = q[Symbol.asyncIterator]();
  assert.deepEqual(await stuck, { value: undefined, done: true }, "the first reader is released");
  q.push(3);
  assert.deepEqual(await readAvailable(second, 3), [1, 2, 3]);
  assert.deepEqual(await first.next(), { value: undefined, done: true }, "the first reader stays done");
});

test("once established, messages read are dropped: a later reader does not replay them", async () => {
  const q = new RequestQueue<number>();
  q.push(1);
  const it = q[Symbol.asyncIterator]();
  assert.deepEqual(await readAvailable(it, 1), [1]);
  q.established();
  q.push(2);
  assert.deepEqual(await readAvailable(it, 1), [2]);
  q.push(3);
  const again = q[Symbol.asyncIterator]();
  assert.deepEqual(await readAvailable(again, 1), [3]);
});

test("a reader that stops (return or throw) ends itself, not the queue", async () => {
  const q = new RequestQueue<number>();
  q.push(1);
  const a = q[Symbol.asyncIterator]();
  assert.deepEqual(await readAvailable(a, 1), [1]);
  const waiting = a.next();
  await a.throw!(new Error("aborted by the transport"));
  assert.deepEqual(await waiting, { value: undefined, done: true });
  assert.deepEqual(await a.next(), { value: undefined, done: true });
  // The layer below opens the stream again: the new reader still gets everything.
  const b = q[Symbol.asyncIterator]();
  q.push(2);
  assert.deepEqual(await readAvailable(b, 2), [1, 2]);
  await b.return!();
  const c = q[Symbol.asyncIterator]();
  assert.deepEqual(await readAvailable(c, 2), [1, 2]);
});
