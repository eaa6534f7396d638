import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { join } from "node:path";
import { LineHasher } from "../../src/intake/line-hash.ts";
import {
  DamagedDigestError,
  DigestMatcher,
  DigestScanner,
  DigestTracker,
  DigestWriter,
  digestIdentity,
  removedKeys,
  sealDigest,
  writeExcludedRows,
} from "../../src/sync/line-digest.ts";
import type { DigestRef, MatchSizes } from "../../src/sync/line-digest.ts";
import { tempDir } from "./helpers.ts";

const hasher = new LineHasher();
function hash(line: string): [number, number] {
  hasher.hash(line, 0, line.length);
  return [hasher.hi, hasher.lo];
}

/** Last night: lines L0…L99 at rows 2…101, keyed k0…k99; `excluded` rows did not become live rows. */
async function lastNight(excluded: number[] = []): Promise<DigestRef> {
  const dir = join(await tempDir(), "last");
  const writer = new DigestWriter(dir);
  for (let i = 0; i < 100; i++) {
    const [hi, lo] = i === 7 ? [0, 0] : hash(`L${i}`); // line 7 had an issue: never recognised
    writer.add(hi, lo, i + 2, `k${i}`);
  }
  writer.close();
  writeExcludedRows(dir, excluded);
  const meta = { identity: digestIdentity("enrollments", "enrollments", ["a"], ",", "utf-8", "auto"), entries: 100, keyBytes: writer.keyBytes, dates: {} };
  sealDigest(dir, meta);
  return { dir, meta };
}

/** Tonight's lines through a matcher: which were recognised, what was removed, what tonight's digest holds. */
async function tonight(ref: DigestRef, lines: string[], sizes: MatchSizes, removedLimit?: number) {
  const out = join(await tempDir(), "tonight");
  const writer = new DigestWriter(out);
  const matcher = new DigestMatcher(ref, writer, out, sizes, removedLimit);
  const recognised: string[] = [];
  lines.forEach((line, i) => {
    const [hi, lo] = hash(line);
    if (matcher.take(hi, lo, i + 2)) recognised.push(line);
  });
  const removed = matcher.finish();
  writer.close();
  const carried = new Map<string, number>();
  const scanner = new DigestScanner(out);
  while (scanner.next()) carried.set(scanner.key(), scanner.row);
  scanner.close();
  return { recognised, removed, removedKeys: [...removedKeys(out)].flat().sort(), carried };
}

describe("DigestMatcher", () => {
  const lines = Array.from({ length: 100 }, (_, i) => `L${i}`);
  // L10 gone, a new line, L20 and L21 swapped, L50 moved to the end (far out of order).
  const moved = lines.filter((l) => l !== "L10" && l !== "L50");
  moved.splice(moved.indexOf("L20"), 2, "L21", "L20");
  moved.splice(30, 0, "X");
  moved.push("L50");

  for (const sizes of [
    { window: 4, ringBits: 4, tableBits: 6 },
    { window: 4, ringBits: 3, tableBits: 4 }, // a ring smaller than the window's span: entries leave early
    { window: 1000, ringBits: 11, tableBits: 12 },
  ]) {
    it(`recognises lines near where they were, carries their keys with tonight's rows (${JSON.stringify(sizes)})`, async () => {
      const result = await tonight(await lastNight(), moved, sizes);
      const farOff = sizes.window < 50 ? ["L50"] : [];
      const expected = lines.filter((l) => l !== "L10" && l !== "L7" && !farOff.includes(l));
      if (sizes.ringBits === 3) {
        // Entries may leave before their line comes; each one is then removed, never lost.
        assert.ok(result.recognised.length >= 90 && result.recognised.every((l) => expected.includes(l)));
      } else assert.deepEqual([...result.recognised].sort(), [...expected].sort());
      // Every entry is either carried (with tonight's row) or removed, exactly once.
      const keys = [...result.carried.keys()];
      assert.equal(keys.length + result.removedKeys.length, 100);
      assert.equal(new Set([...keys, ...result.removedKeys]).size, 100);
      for (const line of result.recognised) assert.equal(result.carried.get(`k${line.slice(1)}`), moved.indexOf(line) + 2, line);
      assert.ok(result.removedKeys.includes("k10") && result.removedKeys.includes("k7"));
      assert.equal(result.removed, result.removedKeys.length);
    });
  }

  it("refuses a digest whose files are not what its meta says", async () => {
    const ref = await lastNight();
    const out = join(await tempDir(), "tonight");
    const writer = new DigestWriter(out);
    assert.throws(() => new DigestMatcher({ ...ref, meta: { ...ref.meta, entries: 99 } }, writer, out), DamagedDigestError);
    assert.throws(() => new DigestMatcher({ ...ref, meta: { ...ref.meta, keyBytes: ref.meta.keyBytes - 1 } }, writer, out), DamagedDigestError);
    writer.close();
  });

  it("leaves excluded entries out: neither recognised, carried nor removed", async () => {
    const result = await tonight(await lastNight([5 + 2, 40 + 2]), lines, { window: 8, ringBits: 5, tableBits: 7 });
    assert.ok(!result.recognised.includes("L40"));
    assert.ok(!result.carried.has("k40") && !result.removedKeys.includes("k40"));
    assert.ok(!result.carried.has("k5") && !result.removedKeys.includes("k5"));
    assert.deepEqual(result.removedKeys, ["k7"]);
    assert.equal(result.carried.size, 97);
  });

  it("gives up when the lines removed pass the limit (at the end of a file)", async () => {
    const ref = await lastNight();
    // Every line renumbered: none comes back, all 99 recognisable entries are removed.
    await assert.rejects(tonight(ref, lines.map((l) => `${l}'`), { window: 1000, ringBits: 11, tableBits: 12 }, 50), { name: "DigestRevisitLimitError" });
    const kept = await tonight(ref, lines.slice(20), { window: 1000, ringBits: 11, tableBits: 12 }, 50);
    assert.equal(kept.removed, 20); // L0…L19 (L7, which had an issue, is looked at again every night)
  });
});

describe("DigestTracker", () => {
  it("reads changed lines' dates as last night's digest says, and refuses a digest that does not say", async () => {
    const ref = await lastNight();
    const plan = (dates: unknown) => ({
      outDir: join(ref.dir, "..", `tonight-${Math.random()}`),
      previous: { dir: ref.dir, meta: { ...ref.meta, dates } as DigestRef["meta"] },
      removedLimit: 1000,
      dateFormat: "auto" as const,
    });
    const memory = { reading: "dmy", rows: 100, lines: { dayFirst: [60, 60], monthFirst: [0, 0], isoLowDay: [0, 0] }, examples: {} };
    const tracker = new DigestTracker("enrollments", "enrollments", plan({ start_date: memory }));
    tracker.begin(["a"], ",", "utf-8");
    assert.deepEqual(tracker.previousDates(), { start_date: memory });
    tracker.abandon();
    const damaged = new DigestTracker("enrollments", "enrollments", plan({ start_date: { reading: "dmy" } }));
    damaged.begin(["a"], ",", "utf-8");
    assert.throws(() => damaged.previousDates(), DamagedDigestError);
    damaged.abandon();
    // Another date format setting: not last night's reading at all, so nothing is skipped.
    const other = new DigestTracker("enrollments", "enrollments", { ...plan({ start_date: memory }), dateFormat: "dmy" });
    other.begin(["a"], ",", "utf-8");
    assert.equal(other.previousDates(), null);
    other.abandon();
  });

  it("gives up early when fewer than half of a big file's lines are in last night's digest", async () => {
    const n = 150_000;
    const dir = join(await tempDir(), "last");
    const writer = new DigestWriter(dir);
    for (let i = 0; i < n; i++) writer.add(...hash(`${i},C${i % 9},S${i}`), i + 2, `k${i}`);
    writer.close();
    writeExcludedRows(dir, []);
    const identity = digestIdentity("enrollments", "cc", ["id", "class_id", "student_id"], ",", "utf-8", "auto");
    sealDigest(dir, { identity, entries: n, keyBytes: writer.keyBytes, dates: {} });
    const read = async (renumber: number) => {
      const tracker = new DigestTracker("enrollments", "cc", { outDir: join(await tempDir(), "tonight"), previous: { dir, meta: { identity, entries: n, keyBytes: writer.keyBytes, dates: {} } }, removedLimit: n, dateFormat: "auto" });
      tracker.begin(["id", "class_id", "student_id"], ",", "utf-8");
      let known = 0;
      try {
        for (let i = 0; i < n; i++) {
          // A leading row number shifted by `renumber` from line 10 on: the lines no longer match.
          const line = `${i < 10 ? i : i + renumber},C${i % 9},S${i}`;
          if (tracker.known(line, 0, line.length, i + 2)) known++;
        }
      } finally {
        tracker.abandon();
      }
      return known;
    };
    assert.equal(await read(0), n, "the same file: every line is known");
    await assert.rejects(read(1), (error: Error) => error.name === "DigestMismatchError" && /of the first 100000 lines/.test(error.message));
  });
});
