import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { threadId } from "node:worker_threads";
import { HashPool } from "../../src/security/hash-pool.ts";
import { verifySecret } from "../../src/security/secrets.ts";
import { RosterdockError } from "../../src/errors.ts";

describe("HashPool", () => {
  it("hashes and verifies like scrypt on the threadpool, in constant-time comparison", async () => {
    const pool = new HashPool({ threads: 1, queueLimit: 8 });
    try {
      const encoded = await pool.hash("correct horse");
      assert.match(encoded, /^scrypt\$16384\$8\$1\$/);
      assert.equal(await pool.verify("correct horse", encoded), true);
      assert.equal(await pool.verify("wrong horse", encoded), false);
      assert.equal(await verifySecret("correct horse", encoded), true, "hashes stay readable without the pool");
      assert.equal(await pool.verify("x", "not-a-hash"), false);
      assert.equal(threadId, 0);
    } finally {
      await pool.close();
    }
  });

  it("serves a clean lane before a flood's backlog, and refuses the flood first when full", async () => {
    const pool = new HashPool({ threads: 1, queueLimit: 6, rank: (lane) => (lane === "flood" ? 1 : 0) });
    try {
      const encoded = await pool.hash("secret");
      const order: string[] = [];
      const track = (lane: string, promise: Promise<boolean>) =>
        promise.then(
          () => order.push(lane),
          (error: unknown) => {
            assert.ok(error instanceof RosterdockError && error.code === "ERR_BUSY");
            order.push(`${lane}:refused`);
          },
        );
      const flood = Array.from({ length: 10 }, () => track("flood", pool.verify("guess", encoded, "flood")));
      const clean = track("clean", pool.verify("secret", encoded, "district"));
      await Promise.all([...flood, clean]);
      assert.equal(order.filter((o) => o === "flood:refused").length, 4, order.join(" "));
      const hashed = order.filter((o) => !o.endsWith(":refused"));
      assert.equal(hashed.indexOf("clean"), 1, `only the hash already running goes before the clean lane: ${order.join(" ")}`);
    } finally {
      await pool.close();
    }
  });

  it("lets a clean address in when many failing addresses each fill one place of the queue", async () => {
    const pool = new HashPool({ threads: 1, queueLimit: 6, rank: (lane) => (lane.startsWith("flood") ? 1 : 0) });
    try {
      const encoded = await pool.hash("secret");
      const outcomes = new Map<string, string>();
      const track = (lane: string, promise: Promise<boolean>) =>
        promise.then(
          (ok) => outcomes.set(lane, ok ? "ok" : "wrong"),
          () => outcomes.set(lane, "refused"),
        );
      // Twelve addresses of a flood, one guess each: the queue is full of single-hash lanes.
      const flood = Array.from({ length: 12 }, (_, i) => track(`flood-${i}`, pool.verify("guess", encoded, `flood-${i}`)));
      const clean = track("district", pool.verify("secret", encoded, "district"));
      await Promise.all([...flood, clean]);
      assert.equal(outcomes.get("district"), "ok", [...outcomes].join(" "));
    } finally {
      await pool.close();
    }
  });
});
