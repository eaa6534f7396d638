import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { it } from "node:test";
import { sql } from "../../src/db/kysely.ts";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import type { Rosterdock } from "../../src/service.ts";
import { forEachBackend, newDistrict, snapshot, startRosterdock, tempDir, writeFiles } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";

const STUDENTS = 1_300;
const CLASSES = 100;
const CLASSES_PER_STUDENT = 10;

/**
 * A canonical night of one school: 13,000 enrollments, enough for a bulk change. `year` prefixes
 * every class id, as a new school year's sections in PowerSchool get new ids.
 */
function night(year: string): Promise<string> {
  const lines = (header: string, rows: Iterable<string>) => [header, ...rows].join("\n") + "\n";
  const students = Array.from({ length: STUDENTS }, (_, i) => 5000 + i);
  const classes = Array.from({ length: CLASSES }, (_, i) => `${year}${i + 1}`);
  return writeFiles({
    "schools.csv": lines("school_id,school_name", ["101,Lincoln High"]),
    "courses.csv": lines("course_id,course_name", ["ALG,Algebra"]),
    "users.csv": lines("district_user_id,role,first_name,last_name,school_id", [
      "1,teacher,Ada,Teach,101",
      ...students.map((id) => `${id},student,Student,Number ${id},101`),
    ]),
    "classes.csv": lines(
      "class_id,class_name,school_id,course_id,teacher_id",
      classes.map((id) => `${id},Algebra ${id},101,ALG,1`),
    ),
    "enrollments.csv": lines(
      "class_id,student_id,start_date,end_date",
      students.flatMap((id, s) => Array.from({ length: CLASSES_PER_STUDENT }, (_, k) => `${classes[(s + k * 7) % CLASSES]},${id},2026-08-24,2027-06-11`)),
    ),
  });
}

/** A bulk change of enrollments that also tombstones (or revives) as many: both tables' indexes rebuilt. */
const WITH_TOMBSTONES = ["tombstones_enrollments_removed", "roster_enrollments_student"];

/**
 * Every index, with the statement that made it. On PostgreSQL, those of the tables, not of their
 * district partitions (a first load adds one): each partition must hold an index attached to
 * every one of its table's, which `partitionIndexesMissing` checks.
 */
async function indexes(rd: Rosterdock): Promise<string[]> {
  if (rd.database.sqlite) return rd.database.sqlite.prepare("SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name").pluck().all() as string[];
  const { rows } = await sql<{ index: string }>`SELECT indexname || ': ' || indexdef AS index FROM pg_indexes
    WHERE schemaname = 'public' AND tablename NOT IN (SELECT i.inhrelid::regclass::text FROM pg_inherits i) ORDER BY indexname`.execute(rd.database.db);
  const missing = await partitionIndexesMissing(rd);
  assert.deepEqual(missing, [], "every district partition has each of its table's indexes");
  return rows.map((r) => r.index);
}

/** PostgreSQL: `index on partition` for each index of a partitioned table that one of its partitions lacks. */
async function partitionIndexesMissing(rd: Rosterdock): Promise<string[]> {
  const { rows } = await sql<{ missing: string }>`SELECT p.indexrelid::regclass::text || ' on ' || part.inhrelid::regclass::text AS missing
    FROM pg_index p JOIN pg_inherits part ON part.inhparent = p.indrelid
    WHERE NOT EXISTS (SELECT 1 FROM pg_inherits ii JOIN pg_index c ON c.indexrelid = ii.inhrelid WHERE ii.inhparent = p.indexrelid AND c.indrelid = part.inhrelid)
    ORDER BY 1`.execute(rd.database.db);
  return rows.map((r) => r.missing);
}

/** SQLite: every index entry matches its table row (what a rebuild could get wrong). */
function integrity(rd: Rosterdock): string {
  return rd.database.sqlite!.prepare("PRAGMA integrity_check").pluck().get() as string;
}

/** The enrollments of a student, read through the student index, as the API reads them. */
async function classesOf(rd: Rosterdock, slug: string, studentId: string): Promise<string[]> {
  const sqlite = rd.database.sqlite;
  if (sqlite) {
    return sqlite
      .prepare(
        "SELECT e.class_id FROM roster_enrollments e INDEXED BY roster_enrollments_student JOIN districts d ON d.id = e.district_id WHERE d.slug = ? AND e.student_id = ? ORDER BY e.class_id",
      )
      .pluck()
      .all(slug, studentId) as string[];
  }
  const { rows } = await sql<{ class_id: string }>`SELECT e.class_id FROM roster_enrollments e JOIN districts d ON d.id = e.district_id
    WHERE d.slug = ${slug} AND e.student_id = ${studentId} ORDER BY e.class_id COLLATE "C"`.execute(rd.database.db);
  return rows.map((r) => r.class_id);
}

// SQLite drops and rebuilds the indexes of a bulk change; PostgreSQL keeps them (DROP INDEX would
// lock readers out until the apply commits): the same changes, and nothing rebuilt.
forEachBackend(selectedBackends(), "bulk changes rebuild the secondary indexes instead of maintaining them row by row", (backend) => {
  const rebuilds = backend === "sqlite";
  const rebuilt = (names: string[]) => (rebuilds ? names : []);
  const checkIntegrity = (rd: Rosterdock) => {
    if (rebuilds) assert.equal(integrity(rd), "ok");
  };
  it("a school-year rollover replaces every class and enrollment, and is rolled back, with the indexes whole", async () => {
    const rd = await startRosterdock();
    // A neighbour district shares the tables (and their indexes) and must come through untouched.
    const neighbour = await newDistrict(rd);
    const demo = await generateDemoData(await tempDir(), { students: 300, teachers: 24, schools: 3, styles: ["canonical"] });
    assert.equal((await rd.syncs.ingest(neighbour, demo.files.canonical)).status, "applied");
    const neighbourRoster = await snapshot(rd, neighbour, { withSyncIds: true });
    const neighbourClasses = await classesOf(rd, neighbour, "1001");
    assert.ok(neighbourClasses.length > 0);
    const schema = await indexes(rd);

    const slug = await newDistrict(rd);
    const first = await rd.syncs.ingest(slug, [await night("")]);
    assert.equal(first.status, "applied");
    assert.equal(first.counts.enrollments.created, STUDENTS * CLASSES_PER_STUDENT);
    // 13,000 enrollments loaded into a table holding ~1,800: its index is built once afterwards.
    assert.deepEqual(first.summary?.rebuiltIndexes, rebuilds ? ["roster_enrollments_student"] : undefined);
    const lastYear = await snapshot(rd, slug, { withSyncIds: true });

    // The new year: every class and enrollment is new. Held by the safeguards, then approved.
    const nextYear = await night("Y2-");
    const held = await rd.syncs.ingest(slug, [nextYear]);
    assert.equal(held.status, "held");
    const approved = await rd.syncs.approve(held.syncId, "test");
    assert.equal(approved.status, "applied");
    assert.deepEqual(approved.counts.enrollments, { created: 13_000, updated: 0, deleted: 13_000, unchanged: 0 });
    assert.deepEqual(approved.counts.classes, { created: CLASSES, updated: 0, deleted: CLASSES, unchanged: 0 });
    // 26,000 enrollment changes against ~14,800 rows rebuild the student index; 200 class changes do not.
    // Last year's 13,000 enrollments become tombstones, their table's indexes built once afterwards too.
    assert.deepEqual(approved.summary?.rebuiltIndexes, rebuilds ? WITH_TOMBSTONES : undefined);
    checkIntegrity(rd);
    assert.deepEqual(await indexes(rd), schema);
    assert.deepEqual((await rd.syncs.doctor(slug)).dangling, []);
    const fresh = await newDistrict(rd);
    assert.equal((await rd.syncs.ingest(fresh, [nextYear])).status, "applied");
    assert.deepEqual((await snapshot(rd, slug)), (await snapshot(rd, fresh)));
    assert.deepEqual(
      await classesOf(rd, slug, "5000"),
      (await snapshot(rd, slug)).enrollments!.filter((e) => e.student_id === "5000").map((e) => String(e.class_id)).sort(),
    );
    assert.ok((await classesOf(rd, slug, "5000")).every((c) => c.startsWith("Y2-")));

    // Rolling the rollover back, then the first load, rebuilds again and restores each state exactly.
    const undo = await rd.syncs.rollback(approved.syncId, "test");
    assert.deepEqual(undo.changeset.rebuiltIndexes, rebuilt(WITH_TOMBSTONES));
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), lastYear);
    checkIntegrity(rd);
    assert.deepEqual((await rd.syncs.doctor(slug)).dangling, []);
    const unload = await rd.syncs.rollback(first.syncId, "test");
    assert.deepEqual(unload.changeset.rebuiltIndexes, rebuilt(WITH_TOMBSTONES));
    assert.ok(Object.values((await snapshot(rd, slug))).every((rows) => rows.length === 0));
    checkIntegrity(rd);
    assert.deepEqual(await indexes(rd), schema);

    assert.deepEqual((await snapshot(rd, neighbour, { withSyncIds: true })), neighbourRoster);
    assert.deepEqual(await classesOf(rd, neighbour, "1001"), neighbourClasses);
  });

  it("the demo district's next school year has new sections, terms and enrollments: held, then applied", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    const size = { students: 300, teachers: 24, schools: 3, styles: ["dem" as const] };
    const year1 = await generateDemoData(await tempDir(), size);
    assert.equal((await rd.syncs.ingest(slug, year1.files.dem)).status, "applied");
    const before = await snapshot(rd, slug);
    const year2 = await generateDemoData(await tempDir(), { ...size, schoolYear: 2 });
    assert.deepEqual({ ...year2.expected }, { ...year1.expected, enrollments: year2.expected.enrollments, droppedEnrollmentRows: year2.expected.droppedEnrollmentRows });
    assert.ok(year2.files.dem.some((f) => f.endsWith("_20271128.csv")), "a year later");
    const held = await rd.syncs.ingest(slug, year2.files.dem);
    assert.equal(held.status, "held");
    assert.deepEqual(
      (await rd.syncs.show(held.syncId)).summary.holdReasons!.map((r) => `${r.code} ${r.entity}`).sort(),
      // The 9 terms are fewer than the 20 rows a hold needs.
      ["TOO_MANY_CHANGES classes", "TOO_MANY_CHANGES enrollments", "TOO_MANY_DELETES classes", "TOO_MANY_DELETES enrollments"],
    );
    const applied = await rd.syncs.approve(held.syncId, "test");
    assert.equal(applied.status, "applied");
    const after = await snapshot(rd, slug);
    assert.deepEqual(after.users, before.users, "the same people");
    assert.deepEqual(after.courses, before.courses);
    assert.equal(applied.counts.classes.created, year2.expected.classes);
    assert.equal(applied.counts.classes.deleted, year1.expected.classes);
    assert.equal(applied.counts.enrollments.created, year2.expected.enrollments);
    assert.equal(applied.counts.enrollments.deleted, year1.expected.enrollments);
    assert.equal(applied.counts.terms.deleted, 9);
    assert.ok(after.terms!.every((t) => String(t.start_date).startsWith("2027-") || String(t.start_date).startsWith("2028-")));
    assert.ok(after.enrollments!.every((e) => String(e.start_date) >= "2027-08-23"));
    assert.equal(applied.summary?.issueCounts.warning, 0);
  });

  it("a nightly change of a few rows keeps the indexes in place", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    assert.equal((await rd.syncs.ingest(slug, [await night("")])).status, "applied");
    const dir = await night("");
    // One student leaves class 1 for class 2: one enrollment deleted, one created.
    const path = `${dir}/enrollments.csv`;
    const moved = (await readFile(path, "utf8")).replace(/^1,5000,/m, "2,5000,");
    assert.notEqual(moved, await readFile(path, "utf8"));
    await writeFile(path, moved);
    const second = await rd.syncs.ingest(slug, [dir]);
    assert.equal(second.status, "applied");
    assert.deepEqual(second.counts.enrollments, { created: 1, updated: 0, deleted: 1, unchanged: 12_999 });
    assert.equal(second.summary?.rebuiltIndexes, undefined);
    assert.ok((await classesOf(rd, slug, "5000")).includes("2"));
    checkIntegrity(rd);
  });
});
