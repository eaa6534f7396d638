import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARCHIVE_REMEASURE_MS, ArchiveUsage } from "../../src/storage/archive-usage.ts";

describe("a district's archive usage", () => {
  it("is measured once, then kept as a running total; a full archive is measured again after a while", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rosterdock-archive-"));
    try {
      let now = 1_000_000;
      const usage = new ArchiveUsage(() => dir, () => now);
      await writeFile(join(dir, "a"), Buffer.alloc(600));
      assert.deepEqual(await usage.check(1, 1000), { usedBytes: 600, quotaBytes: 1000, full: false, becameFull: false, freed: false });
      // Written behind its back: not seen, because the archive is not walked again.
      await writeFile(join(dir, "stray"), Buffer.alloc(5000));
      await writeFile(join(dir, "b"), Buffer.alloc(400));
      usage.added(1, "b", 400);
      assert.deepEqual(await usage.check(1, 1000), { usedBytes: 1000, quotaBytes: 1000, full: true, becameFull: true, freed: false });
      assert.equal((await usage.check(1, 1000)).becameFull, false, "logged once");
      // Pruned: seen at the next measure, not before.
      await rm(join(dir, "a"));
      await rm(join(dir, "stray"));
      now += ARCHIVE_REMEASURE_MS - 1;
      assert.equal((await usage.check(1, 1000)).full, true);
      now += 1;
      assert.deepEqual(await usage.check(1, 1000), { usedBytes: 400, quotaBytes: 1000, full: false, becameFull: false, freed: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("counts a file archived while the folder is being measured exactly once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "rosterdock-archive-"));
    try {
      for (let i = 0; i < 50; i++) await writeFile(join(dir, `f${i}`), Buffer.alloc(10));
      const usage = new ArchiveUsage(() => dir);
      const measuring = usage.check(1, 10_000);
      // Both kinds: one already in the listing the measure took, one written after it.
      await writeFile(join(dir, "late"), Buffer.alloc(7));
      usage.added(1, "f0", 10);
      usage.added(1, "late", 7);
      const { usedBytes } = await measuring;
      assert.ok(usedBytes === 507, String(usedBytes));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
