// The lease schedule is pure logic: one timer, items woken in slots, never a deadline early.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Schedule } from "../src/lease/schedule.js";
import { FakeClock } from "./fake-clock.js";

interface Item {
  name: string;
  wakeSlot: number;
}
const item = (name: string): Item => ({ name, wakeSlot: -1 });

function setup(slotMs = 100) {
  const clock = new FakeClock();
  const woken: Array<{ at: number; names: string[] }> = [];
  const s = new Schedule<Item>(slotMs, (items, now) => woken.push({ at: now, names: items.map((i) => i.name).sort() }), clock);
  return { clock, woken, s };
}

test("items due in the same slot wake together, on one timer", () => {
  const { clock, woken, s } = setup();
  const t = clock.now();
  for (let i = 0; i < 50; i++) s.at(item(`a${i}`), t + 510 + i, "early");
  s.at(item("b"), t + 720, "early");
  assert.equal(clock.pending, 1, "one timer for every item");
  clock.advance(1000);
  assert.equal(woken.length, 2);
  assert.equal(woken[0]!.names.length, 50);
  assert.deepEqual(woken[1]!.names, ["b"]);
});

test("early wakes at most one slot before the time; late never before it and at most one slot after", () => {
  const { clock, woken, s } = setup();
  const t = clock.now();
  s.at(item("refresh"), t + 555, "early");
  s.at(item("deadline"), t + 555, "late");
  clock.advance(2000);
  const at = (n: string) => woken.find((w) => w.names.includes(n))!.at;
  assert.ok(at("refresh") <= t + 555 && at("refresh") > t + 555 - 100, `refresh at ${at("refresh") - t}`);
  assert.ok(at("deadline") >= t + 555 && at("deadline") < t + 555 + 100, `deadline at ${at("deadline") - t}`);
});

test("rescheduling replaces the earlier wake-up; cancel forgets it", () => {
  const { clock, woken, s } = setup();
  const t = clock.now();
  const a = item("a");
  const b = item("b");
  s.at(a, t + 300, "early");
  s.at(b, t + 300, "early");
  s.at(a, t + 900, "early");
  s.cancel(b);
  clock.advance(2000);
  assert.equal(woken.length, 1);
  assert.deepEqual(woken[0]!.names, ["a"]);
  assert.ok(woken[0]!.at >= t + 800);
});

test("items scheduled from the wake-up handler, and earlier than the armed timer, are honoured", () => {
  const clock = new FakeClock();
  const woken: string[] = [];
  const t = clock.now();
  const s: Schedule<Item> = new Schedule<Item>(
    100,
    (items) => {
      for (const i of items) {
        woken.push(i.name);
        if (i.name === "first") s.at(item("chained"), clock.now() + 250, "early");
      }
    },
    clock,
  );
  s.at(item("late"), t + 5000, "early");
  s.at(item("first"), t + 200, "early");
  clock.advance(1000);
  assert.deepEqual(woken, ["first", "chained"]);
  clock.advance(5000);
  assert.deepEqual(woken, ["first", "chained", "late"]);
  assert.equal(clock.pending, 0);
});

test("clear stops the timer", () => {
  const { clock, woken, s } = setup();
  s.at(item("a"), clock.now() + 300, "early");
  s.clear();
  assert.equal(clock.pending, 0);
  clock.advance(1000);
  assert.equal(woken.length, 0);
});
