import assert from "node:assert/strict";
import { it } from "node:test";
import { DistrictFileGate, FILE_OPERATIONS_PER_DISTRICT } from "../../src/sftp/district-file-gate.ts";

it("runs one district's file operations a few at a time, and never makes another district wait behind them", async () => {
  const gate = new DistrictFileGate();
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let running = 0;
  let most = 0;
  const flood = Array.from({ length: 200 }, () =>
    gate.run(1, async () => {
      running++;
      most = Math.max(most, running);
      await held;
      running--;
    }),
  );
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(running, FILE_OPERATIONS_PER_DISTRICT, "the flooding district has its few operations running, the rest queued");

  // Another district's operation runs at once while all of district 1's are still queued or held.
  const other = await gate.run(2, async () => "done");
  assert.equal(other, "done");
  assert.equal(running, FILE_OPERATIONS_PER_DISTRICT);

  release();
  await Promise.all(flood);
  assert.equal(most, FILE_OPERATIONS_PER_DISTRICT);
  assert.equal(running, 0);
});
