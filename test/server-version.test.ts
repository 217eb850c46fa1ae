// Version ordering for "not supported by this server" checks: pure logic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { compareVersions } from "../src/index.js";

test("etcd versions order by major, minor and patch; missing parts are 0; suffixes are ignored", () => {
  const lt = (a: string, b: string) => assert.ok(compareVersions(a, b) < 0 && compareVersions(b, a) > 0, `${a} < ${b}`);
  lt("3.4.23", "3.5");
  lt("3.4.23", "3.5.0");
  lt("3.5.0", "3.5.16");
  lt("3.5.16", "3.6.0-alpha.0");
  lt("3.9.9", "3.10.0"); // numeric, not lexicographic
  lt("2.99.99", "3.0.0");
  assert.equal(compareVersions("3.5", "3.5.0"), 0);
  assert.equal(compareVersions("v3.5.16", "3.5.16"), 0);
  assert.equal(compareVersions("3.6.0-rc.1", "3.6.0"), 0);
});
