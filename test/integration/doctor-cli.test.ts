import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RosterdockHome } from "../support/rosterdock-process.ts";

describe("rosterdock doctor", () => {
  it("finds no dangling reference after a night, and names each one it finds", async () => {
    const home = await RosterdockHome.create();
    try {
      await home.json(["district", "create", "lincoln", "--name", "Lincoln Unified"]);
      const night = `${home.dataDir}/night`;
      assert.equal((await home.cli(["demo-data", night, "--students", "60", "--style", "canonical"])).code, 0);
      const ingest = await home.cli(["ingest", "lincoln", `${night}/canonical`, "--json"]);
      assert.equal(ingest.code, 0, ingest.stderr);
      const clean = await home.cli(["doctor", "lincoln", "--json"]);
      assert.equal(clean.code, 0, clean.stderr);
      assert.deepEqual(JSON.parse(clean.stdout), { district: "lincoln", dangling: [], ok: true });

      // A class removed behind the sync engine's back leaves its enrollments pointing at nothing.
      const { default: Database } = await import("better-sqlite3");
      const db = new Database(`${home.dataDir}/rosterdock.sqlite`);
      const classId = db.prepare("SELECT class_id FROM roster_classes ORDER BY class_id LIMIT 1").pluck().get() as string;
      const enrollments = db.prepare("SELECT count(*) FROM roster_enrollments WHERE class_id = ?").pluck().get(classId) as number;
      db.prepare("DELETE FROM roster_classes WHERE class_id = ?").run(classId);
      db.close();
      const found = await home.cli(["doctor", "lincoln", "--json"]);
      assert.equal(found.code, 1);
      const report = JSON.parse(found.stdout);
      assert.equal(report.ok, false);
      assert.deepEqual(
        report.dangling.map((d: { entity: string; column: string; target: string; count: number }) => [d.entity, d.column, d.target, d.count]),
        [["enrollments", "class_id", "classes", enrollments]],
      );
      assert.equal(report.dangling[0].examples[0].value, classId);
      const text = await home.cli(["doctor", "lincoln"]);
      assert.match(text.stdout, new RegExp(`${enrollments} references point at nothing`));
    } finally {
      await home.remove();
    }
  });
});
