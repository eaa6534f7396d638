import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { it } from "node:test";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import type { Rosterdock } from "../../src/service.ts";
import { brief, forEachBackend, newDistrict, snapshot, startRosterdock, tempDir } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";
import type { RosterSnapshot } from "./helpers.ts";

/** A DEM night of a small district, applied; returns the files to edit for the next night. */
async function appliedNight(rd: Rosterdock): Promise<{ slug: string; files: string[]; before: RosterSnapshot }> {
  const slug = await newDistrict(rd);
  const night = await generateDemoData(await tempDir(), { students: 150, teachers: 10, styles: ["dem"] });
  const first = await rd.syncs.ingest(slug, night.files.dem);
  assert.equal(first.status, "applied");
  return { slug, files: night.files.dem, before: await snapshot(rd, slug) };
}

const fileOf = (files: string[], stem: string) => files.find((f) => basename(f).startsWith(`${stem}_`))!;

/** Rewrites the first data line of `stem`'s file that `match` accepts; returns its spreadsheet row and its fields. */
async function editLine(files: string[], stem: string, match: (fields: string[]) => boolean, edit: (fields: string[]) => string[] | null): Promise<{ row: number; fields: string[] }> {
  const path = fileOf(files, stem);
  const lines = (await readFile(path, "utf8")).split("\r\n");
  for (let i = 1; i < lines.length; i++) {
    if (lines[i] === "") continue;
    const fields = lines[i]!.split(",");
    if (!match(fields.map(unquote))) continue;
    const edited = edit(fields);
    if (edited === null) lines.splice(i, 1);
    else lines[i] = edited.join(",");
    await writeFile(path, lines.join("\r\n"));
    return { row: i + 1, fields: fields.map(unquote) };
  }
  throw new Error(`no line of ${stem} matches`);
}

const unquote = (field: string) => field.replace(/^"|"$/g, "");
/** The most common PowerSchool export mistake: a value holding the delimiter without quotes. */
const extraField = (at: number) => (fields: string[]) => [...fields.slice(0, at), '"Jr"', ...fields.slice(at)];

async function doctor(rd: Rosterdock, slug: string) {
  return (await rd.syncs.doctor(slug)).dangling;
}

forEachBackend(selectedBackends(), "a rejected row never deletes", () => {
  const cases = [
    { what: "teacher", stem: "teachers", entity: "users", at: 5, noun: "teacher" },
    { what: "student", stem: "students", entity: "users", at: 7, noun: "student" },
    { what: "section", stem: "sections", entity: "classes", at: 7, noun: "class" },
    // The extra value before the key: the key is read from the end of the row.
    { what: "enrollment", stem: "cc", entity: "enrollments", at: 0, noun: "student" },
  ] as const;
  for (const c of cases) {
    it(`keeps a live ${c.what} whose row is malformed, and everything that points at it`, async () => {
      const rd = await startRosterdock();
      const { slug, files, before } = await appliedNight(rd);
      const { row, fields } = await editLine(files, c.stem, (f) => c.stem !== "cc" || !f[2]!.startsWith("-"), extraField(c.at));
      const outcome = await rd.syncs.ingest(slug, files);
      assert.equal(outcome.status, "applied");
      assert.deepEqual((await snapshot(rd, slug)), before, "the record, its classes and its enrollments are unchanged");
      assert.equal(outcome.counts[c.entity].kept, 1);
      assert.equal(outcome.counts[c.entity].deleted, 0);
      const shown = await rd.syncs.show(outcome.syncId);
      const rejected = shown.issues.filter((i) => i.row === row && i.code === "WRONG_FIELD_COUNT");
      assert.equal(rejected.length, 1, brief(shown.issues).join("\n"));
      const id = c.stem === "cc" ? fields[1]! : fields[0]!;
      assert.match(rejected[0]!.message, new RegExp(`Kept yesterday's record for ${c.noun} ${id}`));
      assert.deepEqual(
        shown.issues.filter((i) => i.code === "UNKNOWN_REFERENCE" || i.code === "REJECTED_REFERENCE" || i.code === "DEPENDENTS_DELETED").map((i) => i.message),
        [],
      );
      assert.deepEqual(await doctor(rd, slug), []);
      // The next night the row is fixed: nothing changes (the kept record is not taken for a new one).
      await editLine(files, c.stem, (f) => f.length > (c.stem === "cc" ? 0 : 1) && unquote(f[c.at]!) === "Jr", (f) => [...f.slice(0, c.at), ...f.slice(c.at + 1)]);
      const fixed = await rd.syncs.ingest(slug, files);
      assert.equal(fixed.status, "applied", JSON.stringify(fixed.summary?.error ?? fixed.summary?.holdReasons));
      assert.deepEqual((await snapshot(rd, slug)), before);
      assert.equal(fixed.counts[c.entity].created + fixed.counts[c.entity].deleted + fixed.counts[c.entity].updated, 0);
    });
  }

  it("holds the deletions of an entity when a rejected row's key cannot be read", async () => {
    const rd = await startRosterdock();
    const { slug, files, before } = await appliedNight(rd);
    const { row, fields } = await editLine(files, "students", () => true, (f) => ['""', ...f.slice(1)]);
    const held = await rd.syncs.ingest(slug, files);
    assert.equal(held.status, "held");
    const reason = held.summary!.holdReasons.find((r) => r.code === "UNREADABLE_KEYS")!;
    assert.equal(reason.entity, "users");
    assert.match(reason.message, new RegExp(`students_\\d+\\.csv row ${row} \\(Students\\.ID is empty\\)`));
    assert.deepEqual((await snapshot(rd, slug)), before, "a held sync changes nothing");
    // Approved, the student whose row had no id is deleted, with their enrollments: nothing dangles.
    const approved = await rd.syncs.approve(held.syncId, "test");
    assert.equal(approved.status, "applied");
    assert.ok(!(await snapshot(rd, slug)).users!.some((u) => u.user_key === `student-${fields[0]}`));
    assert.deepEqual(await doctor(rd, slug), []);
  });

  it("says why a row points at nothing when the row it points at was rejected", async () => {
    const rd = await startRosterdock();
    const { slug, files } = await appliedNight(rd);
    const teachers = fileOf(files, "teachers");
    const text = await readFile(teachers, "utf8");
    // A new teacher whose row is malformed, and a new section they teach with one student in it.
    await writeFile(teachers, `${text}"9001","79001","9901","New","Teacher","Jr","t9901@district.example.org","101","1"\r\n`);
    const newRow = text.split("\r\n").filter((l) => l !== "").length + 1;
    const sections = fileOf(files, "sections");
    await writeFile(sections, `${await readFile(sections, "utf8")}"29001","101","C1001","9","3600","9001","9(A)","900"\r\n`);
    const cc = fileOf(files, "cc");
    await writeFile(cc, `${await readFile(cc, "utf8")}"99001","1001","29001","101","3600","08/24/2026","06/11/2027"\r\n`);
    const outcome = await rd.syncs.ingest(slug, files);
    assert.equal(outcome.status, "applied");
    const shown = await rd.syncs.show(outcome.syncId);
    const unknown = shown.issues.filter((i) => i.code === "UNKNOWN_REFERENCE");
    assert.deepEqual(unknown, [], "nothing is said to be missing from a file it is in");
    const [section, enrollment] = shown.issues.filter((i) => i.code === "REJECTED_REFERENCE");
    assert.equal(section!.column, "Sections.Teacher");
    assert.match(section!.message, new RegExp(`teachers_\\d+\\.csv row ${newRow}: the row has 9 values but the header has 8 columns`));
    assert.equal(enrollment!.column, "CC.SectionID");
    assert.match(enrollment!.message, /sections_\d+\.csv row \d+: Sections\.Teacher "9001" is a staff member whose row was left out/);
    assert.deepEqual(await doctor(rd, slug), []);
  });
});

forEachBackend(selectedBackends(), "partial deliveries leave no dangling reference", () => {
  it("a students-only delivery deletes the enrollments of the students it removes", async () => {
    const rd = await startRosterdock();
    const { slug, files, before } = await appliedNight(rd);
    const { fields } = await editLine(files, "students", () => true, () => null);
    const gone = before.enrollments!.filter((e) => e.student_id === fields[0]).length;
    assert.ok(gone > 0);
    const outcome = await rd.syncs.ingest(slug, [fileOf(files, "students")]);
    assert.equal(outcome.status, "applied");
    assert.equal(outcome.counts.users.deleted, 1);
    assert.equal(outcome.counts.enrollments.deleted, gone);
    assert.deepEqual(outcome.summary!.cascades, [{ entity: "enrollments", via: "users", column: "student_id", deleted: gone, dropped: 0 }]);
    assert.deepEqual(await doctor(rd, slug), []);
    const shown = await rd.syncs.show(outcome.syncId);
    assert.ok(shown.issues.some((i) => i.code === "DEPENDENTS_DELETED" && i.message.includes(`${gone} enrollments pointed (student_id) at users`)), brief(shown.issues).join("\n"));
    // Rolled back, the student and their enrollments are back.
    await rd.syncs.rollback(outcome.syncId, "test");
    assert.deepEqual((await snapshot(rd, slug)), before);
    assert.deepEqual(await doctor(rd, slug), []);
  });

  it("a teachers-only delivery deletes a departed teacher's classes and their enrollments, and a big cascade is held", async () => {
    const rd = await startRosterdock();
    const { slug, files, before } = await appliedNight(rd);
    // A teacher with one class: removing them takes a class and its students' enrollments with them.
    const teacherOf = new Map<string, number>();
    for (const c of before.classes!) teacherOf.set(String(c.teacher_id), (teacherOf.get(String(c.teacher_id)) ?? 0) + 1);
    const [teacherId] = [...teacherOf].sort((a, b) => a[1] - b[1])[0]!;
    await editLine(files, "teachers", (f) => f[0] === teacherId, () => null);
    const classes = before.classes!.filter((c) => c.teacher_id === teacherId).map((c) => c.class_id);
    const enrollments = before.enrollments!.filter((e) => classes.includes(e.class_id)).length;
    const share = enrollments / before.enrollments!.length;
    const outcome = await rd.syncs.ingest(slug, [fileOf(files, "teachers")]);
    const expectHeld = enrollments >= 20 && share > 0.1;
    assert.equal(outcome.status, expectHeld ? "held" : "applied", `share ${share}`);
    assert.equal(outcome.counts.classes.deleted, classes.length);
    assert.equal(outcome.counts.enrollments.deleted, enrollments);
    if (expectHeld) {
      assert.ok(outcome.summary!.holdReasons.some((r) => r.code === "TOO_MANY_DELETES" && r.entity === "enrollments"));
      assert.deepEqual((await snapshot(rd, slug)), before);
      await rd.syncs.approve(outcome.syncId, "test");
    }
    const after = await snapshot(rd, slug);
    assert.equal(after.classes!.length, before.classes!.length - classes.length);
    assert.deepEqual(await doctor(rd, slug), []);
  });

  it("holds a partial delivery whose cascade takes a large share of the enrollments, whatever the user count", async () => {
    const rd = await startRosterdock();
    const { slug, files, before } = await appliedNight(rd);
    // Two sections' teacher leaves: one user, but a third of the enrollments.
    const byTeacher = new Map<string, number>();
    for (const e of before.enrollments!) {
      const teacher = String(before.classes!.find((c) => c.class_id === e.class_id)!.teacher_id);
      byTeacher.set(teacher, (byTeacher.get(teacher) ?? 0) + 1);
    }
    const [teacherId, count] = [...byTeacher].sort((a, b) => b[1] - a[1])[0]!;
    assert.ok(count / before.enrollments!.length > 0.1, "the busiest teacher holds over 10% of the enrollments");
    await editLine(files, "teachers", (f) => f[0] === teacherId, () => null);
    const held = await rd.syncs.ingest(slug, [fileOf(files, "teachers")]);
    assert.equal(held.status, "held");
    assert.equal(held.counts.users.deleted, 1);
    const reason = held.summary!.holdReasons.find((r) => r.code === "TOO_MANY_DELETES" && r.entity === "enrollments")!;
    assert.match(reason.message, /with the classes they point at/);
    assert.deepEqual((await snapshot(rd, slug)), before);
  });
});

forEachBackend(selectedBackends(), "failures look like failures", () => {
  it("fails a delivery in which no file is a roster file, naming what arrived and what was expected", async () => {
    const rd = await startRosterdock();
    const { slug, files, before } = await appliedNight(rd);
    const dir = await tempDir();
    const misnamed: string[] = [];
    for (const [i, f] of files.entries()) {
      const target = `${dir}/export${i + 1}.csv`;
      await writeFile(target, await readFile(f));
      misnamed.push(target);
    }
    const outcome = await rd.syncs.ingest(slug, misnamed);
    assert.equal(outcome.status, "failed");
    const shown = await rd.syncs.show(outcome.syncId);
    const issue = shown.issues.find((i) => i.code === "NO_ROSTER_FILES")!;
    assert.equal(issue.severity, "error");
    assert.match(issue.message, /export1\.csv, export2\.csv/);
    assert.match(issue.message, /students\.csv/);
    assert.deepEqual((await snapshot(rd, slug)), before);
  });
});
