import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";
import type { Rosterdock } from "../../src/service.ts";
import { brief, forEachBackend, newDistrict, snapshot, startRosterdock, writeFiles } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";

/**
 * A second night read against the first night's line digest (only changed enrollment lines are
 * read) must end exactly as a full read of the same night: same roster, counts and issues.
 * Each case runs the same two nights into two districts; district B's digests are removed
 * before night 2, so B reads night 2 in full.
 */

const STUDENTS = 40;
const CLASSES = ["101", "102", "103"];
const NO_HOLDS = { safeguards: { maxDeleteShare: 1, maxTouchShare: 1 } };

interface Night {
  students?: number[];
  /** The users file's data lines, instead of those made from `students`. */
  users?: string[];
  schools?: string[];
  enrollments: string[];
  enrollmentsHeader?: string;
  classes?: string[];
}

function enrollmentLines(): string[] {
  const lines: string[] = [];
  for (let s = 1; s <= STUDENTS; s++) for (const c of CLASSES) lines.push(`${c},${s},2026-08-20,2027-06-01`);
  return lines;
}

/** A teacher, then students; students above 30 are at school 2. */
function userLines(students: number[]): string[] {
  return ["900,teacher,Ada,Lovelace,1", ...students.map((s) => `${s},student,First${s},Last${s},${s > 30 ? 2 : 1}`)];
}

function files(night: Night): Record<string, string> {
  const students = night.students ?? Array.from({ length: STUDENTS }, (_, i) => i + 1);
  const classes = night.classes ?? CLASSES;
  return {
    "schools.csv": ["school_id,school_name", ...(night.schools ?? ["1,North High", "2,South High"]), ""].join("\n"),
    "courses.csv": "course_id,course_name\nM1,Math\n",
    "users.csv": ["district_user_id,role,first_name,last_name,school_id", ...(night.users ?? userLines(students)), ""].join("\n"),
    "classes.csv": ["class_id,class_name,school_id,course_id,teacher_id", ...classes.map((c) => `${c},Math ${c},1,M1,900`), ""].join("\n"),
    "enrollments.csv": [night.enrollmentsHeader ?? "class_id,student_id,start_date,end_date", ...night.enrollments, ""].join("\n"),
  };
}

async function ingest(rd: Rosterdock, slug: string, night: Night) {
  const dir = await writeFiles(files(night));
  const outcome = await rd.syncs.ingest(slug, [dir]);
  const shown = await rd.syncs.show(outcome.syncId);
  return { outcome, shown, issues: brief(shown.issues).sort() };
}

async function bothWays(night2: Night, env: NodeJS.ProcessEnv = {}, night1: Night = { enrollments: enrollmentLines() }) {
  const rd = await startRosterdock(env);
  const delta = await newDistrict(rd, NO_HOLDS);
  const full = await newDistrict(rd, NO_HOLDS);
  for (const slug of [delta, full]) assert.equal((await ingest(rd, slug, night1)).outcome.status, "applied");
  const fullId = (await rd.districts.show(full)).id;
  await rm(join(rd.config.dataDir, "districts", String(fullId), "digests"), { recursive: true, force: true });
  const a = await ingest(rd, delta, night2);
  const b = await ingest(rd, full, night2);
  return { rd, delta, full, a, b };
}

function enrollmentsDigest(run: Awaited<ReturnType<typeof ingest>>) {
  return run.shown.summary.digests!.find((d) => d.file === "enrollments.csv")!;
}

async function assertSame(run: Awaited<ReturnType<typeof bothWays>>, aUsedDigests = true) {
  const { rd, delta, full, a, b } = run;
  assert.deepEqual(
    a.shown.summary.digests?.map((d) => [d.file, d.delta]),
    [["users.csv", aUsedDigests], ["enrollments.csv", aUsedDigests]],
    `district A read night 2 ${aUsedDigests ? "against the digests" : "in full"}`,
  );
  assert.deepEqual(b.shown.summary.digests?.map((d) => [d.file, d.delta]), [["users.csv", false], ["enrollments.csv", false]], "district B read night 2 in full");
  assert.equal(a.outcome.status, b.outcome.status);
  assert.deepEqual(a.outcome.counts, b.outcome.counts);
  assert.deepEqual(a.issues, b.issues);
  assert.deepEqual((await snapshot(rd, delta)), (await snapshot(rd, full)));
  const files = (s: typeof a) => s.shown.summary.files!.map((f) => [f.name, f.rows, f.records, f.badRows, f.orphans]);
  assert.deepEqual(files(a), files(b));
}

forEachBackend(selectedBackends(), "second nights read against a line digest", () => {
  it("reads only changed lines and ends as a full read: edits, additions, removals", async () => {
    const lines = enrollmentLines();
    lines[4] = lines[4]!.replace("2027-06-01", "2027-01-15"); // an edited line: an update
    lines.splice(10, 2); // two lines gone: deletes
    lines.push("103,41,2026-08-20,2027-06-01"); // a new student's enrollment
    const run = await bothWays({ students: [...Array.from({ length: STUDENTS }, (_, i) => i + 1), 41], enrollments: lines });
    await assertSame(run);
    const digest = enrollmentsDigest(run.a);
    assert.equal(digest.unchanged, STUDENTS * CLASSES.length - 3);
    assert.equal(digest.removed, 3);
    assert.deepEqual(run.a.outcome.counts.enrollments, { created: 1, updated: 1, deleted: 2, unchanged: STUDENTS * CLASSES.length - 3 });
  });

  it("drops unchanged lines whose student or class is gone, with the full read's warnings and rows", async () => {
    const students = Array.from({ length: STUDENTS }, (_, i) => i + 1).filter((s) => s !== 5 && s !== 6);
    const run = await bothWays({ students, classes: ["101", "102"], enrollments: enrollmentLines() });
    await assertSame(run);
    assert.ok(run.a.issues.some((i) => /UNKNOWN_REFERENCE@\d+:student_id=5/.test(i)));
    assert.ok(run.a.issues.some((i) => /UNKNOWN_REFERENCE@\d+:class_id=103/.test(i)));
    assert.equal(run.a.shown.summary.files!.find((f) => f.name === "enrollments.csv")!.orphans, 2 * 3 + (STUDENTS - 2));
  });

  it("reads in full when more unchanged lines lost their class than it looks at again in memory (a truncated classes file)", async () => {
    // 80 unchanged lines point at classes gone tonight; the limit is 50.
    const run = await bothWays({ classes: ["101"], enrollments: enrollmentLines() }, { ROSTERDOCK_DIGEST_REVISIT_LIMIT: "50" });
    await assertSame(run, false);
    assert.equal(run.a.shown.summary.files!.find((f) => f.name === "enrollments.csv")!.orphans, 2 * STUDENTS);
    // Under the limit, the same night is read against the digests.
    await assertSame(await bothWays({ classes: ["101"], enrollments: enrollmentLines() }, { ROSTERDOCK_DIGEST_REVISIT_LIMIT: "80" }));
  });

  it("reads in full when more changed lines repeat unchanged keys than it looks at again in memory", async () => {
    const lines = enrollmentLines();
    const repeats = lines.slice(0, 6).map((l) => l.replace("2026-08-20", "2026-09-01"));
    const run = await bothWays({ enrollments: [...lines, ...repeats] }, { ROSTERDOCK_DIGEST_REVISIT_LIMIT: "5" });
    await assertSame(run, false);
    assert.equal(run.a.issues.filter((i) => i.includes("DUPLICATE_KEY")).length, 6);
  });

  it("reads in full when more unchanged students lost their school than it looks at again in memory", async () => {
    const run = await bothWays({ schools: ["1,North High"], enrollments: enrollmentLines() }, { ROSTERDOCK_DIGEST_REVISIT_LIMIT: String(STUDENTS - 31) });
    await assertSame(run, false);
    assert.equal(run.a.outcome.counts.users.deleted, STUDENTS - 30);
  });

  it("reads in full when more of last night's lines fail to come back than it looks at again (a column renumbered every night)", async () => {
    const header = "cc_id,class_id,student_id,start_date,end_date";
    const numbered = (lines: string[]) => lines.map((l, i) => `${i + 1},${l}`);
    const lines = enrollmentLines();
    // One line gone at the top: every later line's cc_id changes, so no line comes back as it was.
    const night2 = { enrollmentsHeader: header, enrollments: numbered(lines.slice(1)) };
    const run = await bothWays(night2, { ROSTERDOCK_DIGEST_REVISIT_LIMIT: "50" }, { enrollmentsHeader: header, enrollments: numbered(lines) });
    await assertSame(run, false);
    assert.deepEqual(run.a.outcome.counts.enrollments, { created: 0, updated: 0, deleted: 1, unchanged: lines.length - 1 });
  });

  it("finds a changed line repeating an unchanged line's key, before or after it", async () => {
    const lines = enrollmentLines();
    lines.push(lines[0]!); // an exact copy, later: the copy is the duplicate
    lines.push("102,7,2026-09-01,2027-06-01"); // same key as an unchanged line above, different dates
    lines.unshift("103,9,2026-09-01,2027-06-01"); // same key as an unchanged line below: that line is the duplicate
    const run = await bothWays({ enrollments: lines });
    await assertSame(run);
    assert.equal(run.a.issues.filter((i) => i.includes("DUPLICATE_KEY")).length, 3);
  });

  it("students: edits, additions, removals, a renamed teacher and a repeated student id", async () => {
    const users = userLines(Array.from({ length: STUDENTS }, (_, i) => i + 1));
    users[0] = "900,teacher,Ada,King,1"; // staff are read every night
    users[3] = "3,student,Third,Changed,1"; // an edited student
    users.splice(20, 1); // student 20 gone: their unchanged enrollment lines become orphans
    users.push("41,student,New,Student,1"); // a new student
    users.push("7,student,Seven,Again,1"); // a later line repeating student 7
    users.unshift("8,student,Eight,First,1"); // an earlier line repeating student 8: the unchanged line is the duplicate
    const run = await bothWays({ users, enrollments: enrollmentLines() });
    await assertSame(run);
    assert.equal(run.a.issues.filter((i) => i.includes("DUPLICATE_KEY")).length, 2);
    assert.equal(run.a.issues.filter((i) => /UNKNOWN_REFERENCE@\d+:student_id=20$/.test(i)).length, CLASSES.length);
    assert.deepEqual(run.a.outcome.counts.users, { created: 1, updated: 3, deleted: 1, unchanged: STUDENTS + 1 - 4 });
  });

  it("drops unchanged students of a school that is gone, and then their enrollments", async () => {
    const run = await bothWays({ schools: ["1,North High"], enrollments: enrollmentLines() });
    await assertSame(run);
    assert.equal(run.a.issues.filter((i) => /UNKNOWN_REFERENCE@\d+:school_id=2$/.test(i)).length, STUDENTS - 30);
    assert.equal(run.a.outcome.counts.users.deleted, STUDENTS - 30);
    assert.equal(run.a.outcome.counts.enrollments.deleted, (STUDENTS - 30) * CLASSES.length);
  });

  it("reads in full, and applies, when the previous digest is damaged", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd, NO_HOLDS);
    const lines = enrollmentLines();
    const first = await ingest(rd, slug, { enrollments: lines });
    const dir = join(rd.config.dataDir, enrollmentsDigest(first).dir);
    await writeFile(join(dir, "keys.bin"), "truncated");
    const second = await ingest(rd, slug, { enrollments: lines.slice(1) });
    assert.equal(second.outcome.status, "applied", JSON.stringify(second.shown.summary).slice(0, 600) + JSON.stringify(second.issues));
    assert.equal(enrollmentsDigest(second).delta, false);
    assert.deepEqual(second.outcome.counts.enrollments, { created: 0, updated: 0, deleted: 1, unchanged: lines.length - 1 });
  });

  it("reads in full when the header changed or the last sync was rolled back", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd, NO_HOLDS);
    const lines = enrollmentLines();
    await ingest(rd, slug, { enrollments: lines });
    const reordered = await ingest(rd, slug, { enrollmentsHeader: "class_id,student_id,start_date,end_date,note", enrollments: lines.map((l) => `${l},`) });
    assert.equal(enrollmentsDigest(reordered).delta, false);
    assert.equal(reordered.outcome.counts.enrollments.unchanged, lines.length);
    const again = await ingest(rd, slug, { enrollmentsHeader: "class_id,student_id,start_date,end_date,note", enrollments: lines.map((l) => `${l},`) });
    assert.equal(enrollmentsDigest(again).delta, true);
    await rd.syncs.rollback(again.outcome.syncId, "test");
    const afterRollback = await ingest(rd, slug, { enrollmentsHeader: "class_id,student_id,start_date,end_date,note", enrollments: lines.map((l) => `${l},`) });
    assert.equal(enrollmentsDigest(afterRollback).delta, false);
    assert.equal(afterRollback.outcome.counts.enrollments.unchanged, lines.length);
  });
});
