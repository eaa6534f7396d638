import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { it } from "node:test";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import type { Rosterdock } from "../../src/service.ts";
import { brief, forEachBackend, newDistrict, rowCount, snapshot, startRosterdock, tempDir, writeFiles, zipBytes } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";
import type { RosterSnapshot } from "./helpers.ts";

/** A small canonical district: 3 schools, 2 teachers, 40 students, 4 classes, 120 enrollments. */
function canonical(options: { students?: number; users?: (lines: string[]) => string[]; enrollments?: (lines: string[]) => string[] } = {}) {
  const students = options.students ?? 40;
  const users = ["district_user_id,role,first_name,last_name,school_id,teacher_number"];
  users.push("1,teacher,Ana,Núñez,101,T1", "2,teacher,Liam,Smith,102,T2");
  for (let i = 1; i <= students; i++) users.push(`${1000 + i},student,Zoë,Student ${i},10${1 + (i % 3)},`);
  const enrollments = ["class_id,student_id,start_date,end_date"];
  for (let i = 1; i <= students; i++) for (const c of [1, 2, 3]) enrollments.push(`C${((i + c) % 4) + 1},${1000 + i},08/24/2026,`);
  return {
    "schools.csv": "school_id,school_name\n101,Lincoln\n102,Roosevelt\n103,Jefferson\n",
    "users.csv": `${(options.users ? options.users(users) : users).join("\n")}\n`,
    "classes.csv": "class_id,class_name,school_id,course_id,teacher_id\nC1,Algebra,101,A,1\nC2,Biology,101,B,1\nC3,Chemistry,102,C,2\nC4,Drama,102,D,2\n",
    "enrollments.csv": `${(options.enrollments ? options.enrollments(enrollments) : enrollments).join("\n")}\n`,
  };
}

async function loaded(rd: Rosterdock): Promise<{ slug: string; before: RosterSnapshot }> {
  const slug = await newDistrict(rd);
  const first = await rd.syncs.ingest(slug, [await writeFiles(canonical())]);
  assert.equal(first.status, "applied");
  return { slug, before: await snapshot(rd, slug, { withSyncIds: true }) };
}

async function ingestFiles(rd: Rosterdock, slug: string, files: Record<string, string | Buffer>) {
  const outcome = await rd.syncs.ingest(slug, [await writeFiles(files)]);
  const shown = await rd.syncs.show(outcome.syncId);
  return { outcome, shown, issues: brief(shown.issues) };
}

forEachBackend(selectedBackends(), "safeguards", () => {
  it("holds a truncated students file, leaves the roster alone, and applies it once approved", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    const night = await generateDemoData(await tempDir(), { students: 400, teachers: 24, styles: ["dem"] });
    assert.equal((await rd.syncs.ingest(slug, night.files.dem)).status, "applied");
    const before = await snapshot(rd, slug, { withSyncIds: true });
    const students = night.files.dem.find((f) => basename(f).startsWith("students"))!;
    const text = await readFile(students, "utf8");
    await writeFile(students, text.slice(0, Math.floor(text.length / 2)).replace(/\r\n[^\r\n]*$/, "\r\n"));
    const held = await rd.syncs.ingest(slug, night.files.dem);
    assert.equal(held.status, "held");
    const reasons = held.summary!.holdReasons.map((r) => `${r.code} ${r.entity}`);
    assert.ok(reasons.includes("TOO_MANY_DELETES users") && reasons.includes("TOO_MANY_DELETES enrollments"), reasons.join(", "));
    assert.ok(held.counts.users.deleted > 150 && held.counts.enrollments.deleted > 900);
    const shown = await rd.syncs.show(held.syncId);
    assert.equal(shown.status, "held");
    assert.ok(shown.issues.some((i) => i.code === "UNKNOWN_REFERENCE" && i.column === "CC.StudentID" && i.row !== null));
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), before, "a held sync never changes the roster");

    const approved = await rd.syncs.approve(held.syncId, "test");
    assert.equal(approved.status, "applied");
    assert.equal((await snapshot(rd, slug)).users!.length, rowCount({ u: before.users! }) - held.counts.users.deleted);
    await assert.rejects(rd.syncs.approve(held.syncId, "test"), /only a held sync/);
  });

  it("holds a header-only file; discard drops the sync and the roster stays", async () => {
    const rd = await startRosterdock();
    const { slug, before } = await loaded(rd);
    const files = canonical();
    files["enrollments.csv"] = "class_id,student_id,start_date,end_date\n";
    const { outcome, shown, issues } = await ingestFiles(rd, slug, files);
    assert.equal(outcome.status, "held");
    assert.deepEqual(outcome.summary!.holdReasons.map((r) => r.code), ["EMPTY_FILE", "TOO_MANY_DELETES", "TOO_MANY_CHANGES"]);
    assert.ok(issues.includes("warning NO_DATA_ROWS@-:-=-"));
    assert.equal(shown.counts.enrollments!.deleted, 120);
    await rd.syncs.discard(outcome.syncId, "test");
    assert.equal((await rd.syncs.show(outcome.syncId)).status, "discarded");
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), before);
  });

  it("never holds a district's first sync for size, and a missing file deletes nothing", async () => {
    const rd = await startRosterdock();
    const { slug, before } = await loaded(rd);
    const { "enrollments.csv": _absent, ...partial } = canonical();
    const { outcome } = await ingestFiles(rd, slug, partial);
    assert.equal(outcome.status, "applied");
    assert.deepEqual(outcome.counts.enrollments, { created: 0, updated: 0, deleted: 0, unchanged: 120 });
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), before, "nothing changed, nothing deleted");
  });

  it("uses per-district thresholds, as an operator sets them", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    const set = await rd.districts.setSafeguards(slug, { deletePercent: 1, deleteMinRows: 1, changePercent: 1, changeMinRows: 1 }, "test");
    assert.deepEqual(set.safeguards, { deletePercent: 1, deleteMinRows: 1, changePercent: 1, changeMinRows: 1 });
    assert.equal((await rd.syncs.ingest(slug, [await writeFiles(canonical())])).status, "applied");
    const { outcome } = await ingestFiles(rd, slug, canonical({ students: 38 }));
    assert.equal(outcome.status, "held");
    assert.ok(outcome.summary!.holdReasons.some((r) => r.code === "TOO_MANY_DELETES" && r.entity === "users" && r.count === 2));

    // Back to the server's thresholds, which let 2 of 40 students go.
    const reset = await rd.districts.setSafeguards(slug, { deletePercent: null, deleteMinRows: null, changePercent: null, changeMinRows: null }, "test");
    assert.deepEqual(reset.safeguards, {});
    assert.equal((await ingestFiles(rd, slug, canonical({ students: 38 }))).outcome.status, "applied");
    await assert.rejects(rd.districts.setSafeguards(slug, { deletePercent: 120 }, "test"), { code: "ERR_INVALID_ARGUMENT" });
  });

  it("keeps a sample of the rows a held sync would delete, update and create", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    await rd.districts.setSafeguards(slug, { deletePercent: 1, deleteMinRows: 1, changePercent: 1, changeMinRows: 1 }, "test");
    assert.equal((await rd.syncs.ingest(slug, [await writeFiles(canonical())])).status, "applied");
    const users = (lines: string[]) => [...lines.map((l) => (l.startsWith("1005,") ? l.replace("Student 5", "Renamed 5") : l)), "2001,student,Nova,New,101,"];
    const { outcome, shown } = await ingestFiles(rd, slug, canonical({ students: 38, users }));
    assert.equal(outcome.status, "held");
    assert.deepEqual(
      shown.summary.files!.map((f) => [f.name, f.stem, f.headerStyle, f.delimiter]).sort(),
      [
        ["classes.csv", "classes", "rosterdock", ","],
        ["enrollments.csv", "enrollments", "rosterdock", ","],
        ["schools.csv", "schools", "rosterdock", ","],
        ["users.csv", "users", "rosterdock", ","],
      ],
    );
    const preview = shown.summary.preview!;
    const sample = preview.find((p) => p.entity === "users")!;
    assert.deepEqual(sample.deleted.map((u) => u.user_key).sort(), ["student-1039", "student-1040"]);
    assert.equal(sample.deleted[0]!.role, "student");
    assert.deepEqual(sample.created.map((u) => [u.user_key, u.first_name, u.last_name]), [["student-2001", "Nova", "New"]]);
    assert.deepEqual(sample.updated, [{ key: { user_key: "student-1005" }, changes: [{ column: "last_name", before: "Student 5", after: "Renamed 5" }] }]);
    // At most a few rows of each kind: the two students' six enrollments go, five are shown.
    const enrollments = preview.find((p) => p.entity === "enrollments")!;
    assert.equal(shown.counts.enrollments!.deleted, 6);
    assert.equal(enrollments.deleted.length, 5);
    assert.ok(enrollments.deleted.every((e) => e.student_id === "1039" || e.student_id === "1040"));
    assert.equal(preview.find((p) => p.entity === "schools"), undefined, "entities without a change are left out");
  });

  it("uses the server's thresholds from its configuration", async () => {
    const rd = await startRosterdock({ ROSTERDOCK_HOLD_DELETE_PERCENT: "1", ROSTERDOCK_HOLD_DELETE_MIN_ROWS: "1" });
    const slug = await newDistrict(rd);
    assert.equal((await rd.syncs.ingest(slug, [await writeFiles(canonical())])).status, "applied");
    const { outcome } = await ingestFiles(rd, slug, canonical({ students: 38 }));
    assert.equal(outcome.status, "held");
  });
});

forEachBackend(selectedBackends(), "bad deliveries fail or lose only their bad rows, with the issue a person needs", () => {
  it("duplicate ids: the repeat is skipped with its row; too many fail the delivery", async () => {
    const rd = await startRosterdock();
    const { slug, before } = await loaded(rd);
    const few = await ingestFiles(rd, slug, canonical({ users: (l) => [...l, "1005,student,Dup,Licate,101,"] }));
    assert.equal(few.outcome.status, "applied");
    assert.ok(few.issues.includes("warning DUPLICATE_KEY@44:district_user_id=1005"), few.issues.join("\n"));
    assert.match(few.shown.issues.find((i) => i.code === "DUPLICATE_KEY")!.message, /in row 8/);
    assert.equal((await snapshot(rd, slug)).users!.find((u) => u.user_key === "student-1005")!.first_name, "Zoë");

    const enrolDup = await ingestFiles(rd, slug, canonical({ enrollments: (l) => [...l, ...l.slice(1, 21)] }));
    assert.equal(enrolDup.outcome.status, "failed");
    assert.ok(enrolDup.issues.includes("warning DUPLICATE_KEY@122:class_id=C3 + 1001"), enrolDup.issues.slice(0, 5).join("\n"));
    assert.ok(enrolDup.issues.includes("error TOO_MANY_BAD_ROWS@-:-=-"));
    assert.equal(few.outcome.counts.users.updated, 0);
    assert.deepEqual((await snapshot(rd, slug)).enrollments, (await snapshot(rd, slug)).enrollments && before.enrollments!.map(({ last_sync_id: _s, ...e }) => e));
  });

  it("an export that repeats its rows (a template joined to the wrong table): every repeat counted, a page at a time; the roster stays", async () => {
    const rd = await startRosterdock();
    const { slug, before } = await loaded(rd);
    // 6,000 students, each listed three times: 12,000 repeats, more than one page of them.
    const tripled = await ingestFiles(rd, slug, canonical({ students: 6000, users: (l) => [...l, ...l.slice(3), ...l.slice(3)] }));
    assert.equal(tripled.outcome.status, "failed");
    const users = tripled.shown.summary.files!.find((f) => f.name === "users.csv")!;
    assert.equal(users.badRows, 12_000);
    assert.equal(users.records, 6002);
    assert.ok(tripled.issues.includes("warning DUPLICATE_KEY@6004:district_user_id=1001"), tripled.issues.slice(0, 5).join("\n"));
    assert.ok(tripled.issues.includes("error TOO_MANY_BAD_ROWS@-:-=-"));
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), before);
  });

  it("orphans: rows pointing at something absent are dropped with a warning, and their dependants too", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    const files = canonical({
      users: (l) => [...l, "1999,student,No,School,999,"],
      enrollments: (l) => [...l, "C9,1001,,", "C1,4242,,", "C1,1999,,"],
    });
    files["classes.csv"] += "C5,Ghost,101,A,77\n";
    const { outcome, issues, shown } = await ingestFiles(rd, slug, files);
    assert.equal(outcome.status, "applied");
    for (const expected of [
      "warning UNKNOWN_REFERENCE@44:school_id=999",
      "warning UNKNOWN_REFERENCE@6:teacher_id=77",
      "warning UNKNOWN_REFERENCE@122:class_id=C9",
      "warning UNKNOWN_REFERENCE@123:student_id=4242",
      "warning REJECTED_REFERENCE@124:student_id=1999",
    ]) {
      assert.ok(issues.includes(expected), `${expected} in\n${issues.join("\n")}`);
    }
    // The student is in users.csv: the enrollment says why it is missing, not that it is absent.
    assert.match(shown.issues.find((i) => i.value === "1999" && i.row === 124)!.message, /users\.csv row 44: school_id "999" is not a school in schools\.csv/);
    assert.match(shown.issues.find((i) => i.value === "4242")!.message, /not a student in .*users\.csv/);
    assert.equal(outcome.counts.enrollments.created, 120);
    assert.equal(outcome.counts.users.created, 42);
  });

  it("a missing required column fails the delivery", async () => {
    const rd = await startRosterdock();
    const { slug, before } = await loaded(rd);
    const files = canonical();
    files["classes.csv"] = files["classes.csv"].replace("teacher_id", "instructor");
    const { outcome, issues } = await ingestFiles(rd, slug, files);
    assert.equal(outcome.status, "failed");
    assert.ok(issues.includes("error MISSING_REQUIRED_COLUMN@-:teacher_id=-"), issues.join("\n"));
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), before);
  });

  it("bad dates: a few are warnings on their row and column; too many fail", async () => {
    const rd = await startRosterdock();
    const { slug, before } = await loaded(rd);
    const one = await ingestFiles(rd, slug, canonical({ enrollments: (l) => l.map((line, i) => (i === 3 ? line.replace("08/24/2026", "02/30/2026") : line)) }));
    assert.equal(one.outcome.status, "applied");
    assert.ok(one.issues.some((i) => i.startsWith("warning BAD_DATE@4:start_date=02/30/2026")), one.issues.join("\n"));
    const many = await ingestFiles(rd, slug, canonical({ enrollments: (l) => l.map((line, i) => (i % 10 === 1 ? line.replace("08/24/2026", "2026-13-01") : line)) }));
    assert.equal(many.outcome.status, "failed");
    assert.ok(many.issues.includes("error TOO_MANY_BAD_ROWS@-:-=-"));
    assert.equal((await snapshot(rd, slug)).enrollments!.length, before.enrollments!.length);
  });

  it("a binary file named students.csv fails the delivery", async () => {
    const rd = await startRosterdock();
    const { slug, before } = await loaded(rd);
    const binary = Buffer.concat([Buffer.from("PK\u0003\u0004"), Buffer.alloc(2000, 0), Buffer.from([0xff, 0xfe, 0x00, 0x01])]);
    const { outcome, issues } = await ingestFiles(rd, slug, { ...canonical(), "students.csv": Buffer.concat([Buffer.from([0x00, 0x01, 0x02]), binary]) });
    assert.equal(outcome.status, "failed");
    assert.ok(issues.some((i) => i.startsWith("error BINARY_FILE@")), issues.join("\n"));
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), before);
  });

  it("a zip with ../ entries and a zip bomb are rejected whole", async () => {
    const rd = await startRosterdock();
    const { slug, before } = await loaded(rd);
    const entries = Object.entries(canonical()).map(([name, content]) => ({ name, content }));
    const safe = await zipBytes([...entries, { name: "xx/evil.csv", content: "x" }]);
    const unsafe = Buffer.from(safe.toString("latin1").replaceAll("xx/evil.csv", "../evil.csv"), "latin1");
    const traversal = await ingestFiles(rd, slug, { "roster.zip": unsafe });
    assert.equal(traversal.outcome.status, "failed");
    assert.ok(traversal.issues.includes("error UNSAFE_ZIP_ENTRY@-:-=../evil.csv"), traversal.issues.join("\n"));

    const bomb = await zipBytes([...entries, { name: "terms.csv", content: Buffer.alloc(8 * 1024 * 1024, 0x61) }]);
    const bombed = await ingestFiles(rd, slug, { "roster.zip": bomb });
    assert.equal(bombed.outcome.status, "failed");
    assert.ok(bombed.issues.includes("error ZIP_BOMB@-:-=terms.csv"), bombed.issues.join("\n"));
    assert.deepEqual((await snapshot(rd, slug, { withSyncIds: true })), before);
  });

  it("lists a sync's issues in `syncs` output and as a CSV for Excel", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd);
    const { outcome } = await ingestFiles(rd, slug, canonical({ users: (l) => [...l, '1999,student,"Quote ""Me"", Please",=cmd,999,'] }));
    const listed = await rd.syncs.list(slug);
    assert.equal(listed[0]!.id, outcome.syncId);
    assert.deepEqual(Object.keys(listed[0]!).sort(), ["counts", "createdAt", "files", "id", "issues", "status"]);
    assert.ok(listed[0]!.issues.length > 0 && listed[0]!.issues.length <= 100);
    const { issuesCsv } = await import("../../src/sync/issues-csv.ts");
    const csv = issuesCsv(await rd.syncs.issues(outcome.syncId));
    assert.ok(csv.startsWith("\uFEFFseverity,code,file,row,column,value,message\r\n"));
    assert.ok(csv.includes(",users.csv,44,school_id,999,"), csv);
  });
});
