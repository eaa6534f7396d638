import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { describe, it } from "node:test";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import type { DemoDataResult } from "../../src/demo/generate-demo-data.ts";
import { DuplicateKeyTracker } from "../../src/intake/duplicate-keys.ts";
import { MemoryIssueSink } from "../../src/intake/issue.ts";
import type { IssueCode } from "../../src/intake/issue.ts";
import { recogniseDelivery } from "../../src/intake/recognise-file.ts";
import { unpackDelivery } from "../../src/intake/unpack.ts";
import type { CanonicalRecord, EntityName, UserRecord } from "../../src/spec/roster-spec.ts";
import { readSource, tempDir } from "./helpers.ts";

interface Intake {
  records: Record<EntityName, CanonicalRecord[]>;
  codes: Set<IssueCode>;
  errors: number;
}

async function intake(paths: string[]): Promise<Intake> {
  const sink = new MemoryIssueSink();
  const { sources, close } = await unpackDelivery(paths.map((path) => ({ name: basename(path), path })), sink);
  const records = { schools: [], users: [], classes: [], enrollments: [], courses: [], terms: [] } as Record<EntityName, CanonicalRecord[]>;
  const duplicates = new DuplicateKeyTracker();
  for (const { source, file } of recogniseDelivery(sources, sink)) {
    const result = await readSource(source, { duplicates }, sink);
    records[file.entity].push(...result.records);
  }
  await close();
  return { records, codes: new Set(sink.kept.map((i) => i.code)), errors: sink.counts.error };
}

function counts(records: Intake["records"]) {
  const users = records.users as UserRecord[];
  return {
    schools: records.schools.length,
    students: users.filter((u) => u.scope === "student").length,
    staff: users.filter((u) => u.scope === "staff").length,
    classes: records.classes.length,
    enrollments: new Set(records.enrollments.map((e) => JSON.stringify([(e as { class_id: string }).class_id, (e as { student_id: string }).student_id]))).size,
    courses: records.courses.length,
    terms: records.terms.length,
  };
}

function expectedCounts(result: DemoDataResult) {
  const { schools, students, staff, classes, enrollments, courses, terms } = result.expected;
  return { schools, students, staff, classes, enrollments, courses, terms };
}

describe("generateDemoData", () => {
  it("writes three styles that all read into the same roster", async () => {
    const dir = await tempDir();
    const result = await generateDemoData(dir, { students: 200, teachers: 12, schools: 3 });
    const expected = expectedCounts(result);
    assert.ok(result.expected.droppedEnrollmentRows > 0 && result.expected.inactiveStudents > 0);

    const dem = await intake(result.files.dem);
    const autosend = await intake(result.files.autosend);
    const canonical = await intake(result.files.canonical);
    for (const [style, read] of Object.entries({ dem, autosend, canonical })) {
      assert.equal(read.errors, 0, style);
      assert.deepEqual(counts(read.records), expected, style);
    }
    assert.ok(dem.codes.has("DROPPED_ENROLLMENTS") && dem.codes.has("INACTIVE_STUDENTS_SKIPPED") && dem.codes.has("UNUSED_COLUMN"));
    assert.ok(autosend.codes.has("WINDOWS_1252_DECODED"));
    // Same people, whatever the style; class names come from the canonical file only.
    const users = (read: Intake) => read.records.users.map((u) => JSON.stringify(u)).sort();
    assert.deepEqual(users(dem), users(autosend));
    const demUsers = dem.records.users as UserRecord[];
    assert.ok(demUsers.some((u) => u.first_name === 'Mary "Mae"' && u.last_name === "O'Neil, Jr."));
    assert.ok(demUsers.some((u) => /[éëñüöø]/i.test(u.first_name + u.last_name)));
    const shared = demUsers.filter((u) => demUsers.some((o) => o.scope !== u.scope && o.district_user_id === u.district_user_id));
    assert.ok(shared.length >= 2, "a student and a teacher share an id");
    const teacherNumbers = demUsers.filter((u) => u.scope === "staff").map((u) => u.teacher_number);
    assert.equal(new Set(teacherNumbers).size, teacherNumbers.length - 1, "one teacher works at two schools");
  });

  it("writes DEM files as PowerSchool does: BOM, CRLF, Table.Field labels, dated names", async () => {
    const dir = await tempDir();
    const result = await generateDemoData(dir, { styles: ["dem"], students: 20, teachers: 3, schools: 2, firstNightDate: "2026-11-28", night: 2 });
    assert.deepEqual((await readdir(join(dir, "dem"))).sort(), ["cc_20261129.csv", "courses_20261129.csv", "schools_20261129.csv", "sections_20261129.csv", "students_20261129.csv", "teachers_20261129.csv", "terms_20261129.csv"]);
    const students = await readFile(result.files.dem.find((p) => p.includes("students"))!);
    assert.deepEqual([...students.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
    assert.match(students.toString("utf8"), /^\uFEFF"Students\.ID","Students\.DCID","Students\.Student_Number"[^\n]*\r\n/);
  });

  it("is deterministic, and a second night changes about 1%", async () => {
    const [a, b, c] = [await tempDir(), await tempDir(), await tempDir()];
    const size = { students: 2000, teachers: 60, schools: 4, styles: ["canonical"] as const };
    const first = await generateDemoData(a, size);
    const again = await generateDemoData(b, size);
    assert.deepEqual(await readFile(first.files.canonical[0]!), await readFile(again.files.canonical[0]!));
    const second = await generateDemoData(c, { ...size, night: 2 });
    const night1 = await intake(first.files.canonical);
    const night2 = await intake(second.files.canonical);
    const ids = (read: Intake) => new Set((read.records.users as UserRecord[]).filter((u) => u.scope === "student").map((u) => u.district_user_id));
    const [ids1, ids2] = [ids(night1), ids(night2)];
    const removed = [...ids1].filter((id) => !ids2.has(id)).length;
    const added = [...ids2].filter((id) => !ids1.has(id)).length;
    assert.ok(removed > 0 && removed < 20, `removed ${removed}`);
    assert.ok(added > 0 && added < 20, `added ${added}`);
    const enrollments = (read: Intake) => new Set(read.records.enrollments.map((e) => JSON.stringify(e)));
    const [e1, e2] = [enrollments(night1), enrollments(night2)];
    const changed = [...e2].filter((e) => !e1.has(e)).length;
    assert.ok(changed > 0 && changed < e1.size * 0.03, `changed ${changed} of ${e1.size}`);
  });
});
