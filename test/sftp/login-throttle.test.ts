import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { LoginThrottle } from "../../src/sftp/login-throttle.ts";

describe("LoginThrottle", () => {
  it("blocks an address after repeated failures until the window passes", () => {
    let now = 0;
    const throttle = new LoginThrottle(3, 1000, () => now);
    for (let i = 0; i < 3; i++) {
      assert.equal(throttle.isBlocked("192.0.2.1"), false);
      throttle.recordFailure("192.0.2.1");
    }
    assert.equal(throttle.isBlocked("192.0.2.1"), true);
    assert.equal(throttle.isBlocked("192.0.2.2"), false);
    now = 1001;
    assert.equal(throttle.isBlocked("192.0.2.1"), false);
  });

  it("forgets failures after a successful login", () => {
    const throttle = new LoginThrottle(2, 1000, () => 0);
    throttle.recordFailure("a");
    throttle.recordSuccess("a");
    throttle.recordFailure("a");
    assert.equal(throttle.isBlocked("a"), false);
  });
});
