import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { watchEventLoopLag } from "../../src/watch-event-loop-lag.ts";

/** A pino logger writing its JSON lines into an array. */
function capturingLogger() {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}

function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe("event-loop lag", () => {
  it("logs server.event_loop_lag with the lag when the thread was blocked for more than 100 ms", async () => {
    const { logger, lines } = capturingLogger();
    const watch = watchEventLoopLag(logger);
    try {
      await sleep(120);
      blockFor(400);
      await sleep(120);
      // (A busy machine may add a late timer of its own; the block is the one of 300+ ms.)
      const blocked = lines.filter((l) => l.event === "server.event_loop_lag" && l.lagMs >= 300);
      assert.equal(blocked.length, 1, JSON.stringify(lines));
      assert.equal(blocked[0].level, 40);
      assert.ok(blocked[0].lagMs < 1000, `lagMs ${blocked[0].lagMs}`);
    } finally {
      watch.stop();
    }
    // Stopped: no timer left behind, nothing more logged.
    const logged = lines.length;
    blockFor(300);
    await sleep(120);
    assert.equal(lines.length, logged);
  });
});
