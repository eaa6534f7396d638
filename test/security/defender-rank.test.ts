import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startRosterdock } from "../sync/helpers.ts";

describe("Defender.rank", () => {
  it("puts an address a district logged in from ahead of unknown ones, and a failing one behind", async () => {
    const rd = await startRosterdock();
    assert.equal(rd.defender.rank("192.0.2.10"), 0, "unknown");
    const good = rd.defender.begin("192.0.2.10", "lincoln", "ssh");
    assert.ok(good.ok);
    good.attempt.succeed();
    assert.equal(rd.defender.rank("192.0.2.10"), -1, "a district logged in from it");
    const bad = rd.defender.begin("198.51.100.7", "lincoln", "ssh");
    assert.ok(bad.ok);
    bad.attempt.fail("bad_password");
    assert.equal(rd.defender.rank("198.51.100.7"), 1, "recent failures");
  });
});
