import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Rosterdock } from "../../src/service.ts";
import { RosterdockHome } from "../support/rosterdock-process.ts";
import { brief, forEachBackend, newDistrict, snapshot, startRosterdock, writeFiles } from "./helpers.ts";
import { selectedBackends } from "../support/backends.ts";

/**
 * Dates are read one way per column of a file (DD/MM or MM/DD, from the column's values or the
 * district's setting), and a bad optional value keeps yesterday's. Nights are small districts:
 * a teacher, students 1…STUDENTS with a date of birth and an email, one class, their enrollments.
 */

const STUDENTS = 30;
const NO_HOLDS = { safeguards: { maxDeleteShare: 1, maxTouchShare: 1 } };

interface Night {
  /** A student's date of birth (default: none). */
  birth?: (s: number) => string;
  email?: (s: number) => string;
  /** A student's enrollment start date (default 2026-08-24). */
  start?: (s: number) => string;
  students?: number;
  /** terms.csv's data lines (no terms file when absent). */
  terms?: string[];
}

function files(night: Night): Record<string, string> {
  const students = Array.from({ length: night.students ?? STUDENTS }, (_, i) => i + 1);
  const user = (s: number) => `${s},student,First${s},Last${s},1,${night.email?.(s) ?? `s${s}@example.org`},${night.birth?.(s) ?? ""}`;
  return {
    "schools.csv": "school_id,school_name\n1,North High\n",
    "users.csv": ["district_user_id,role,first_name,last_name,school_id,email,birth_date", "900,teacher,Ada,Lovelace,1,ada@example.org,", ...students.map(user), ""].join("\n"),
    "classes.csv": "class_id,class_name,school_id,course_id,teacher_id\n101,Math,1,M1,900\n",
    "enrollments.csv": ["class_id,student_id,start_date,end_date", ...students.map((s) => `101,${s},${night.start?.(s) ?? "2026-08-24"},`), ""].join("\n"),
    ...(night.terms ? { "terms.csv": ["term_id,term_name,start_date,end_date", ...night.terms, ""].join("\n") } : {}),
  };
}

async function ingest(rd: Rosterdock, slug: string, night: Night) {
  const outcome = await rd.syncs.ingest(slug, [await writeFiles(files(night))]);
  const shown = await rd.syncs.show(outcome.syncId);
  return { outcome, shown, issues: brief(shown.issues).sort() };
}

async function column(rd: Rosterdock, slug: string, entity: "users" | "enrollments", name: string): Promise<Record<string, unknown>> {
  const rows = (await snapshot(rd, slug))[entity]!;
  return Object.fromEntries(rows.filter((r) => r.scope !== "staff").map((r) => [String(r.district_user_id ?? r.student_id), r[name]]));
}

const pad = (n: number) => String(n).padStart(2, "0");

forEachBackend(selectedBackends(), "a file's date columns are read one way", () => {
  it("reads a DD/MM file day first throughout, rows whose day is 12 or less included", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd, NO_HOLDS);
    // Days 1…30 of March 2010: only days over 12 show the file is day first.
    const run = await ingest(rd, slug, { birth: (s) => `${pad(s)}/03/2010`, start: (s) => (s === 20 ? "14/09/2026" : "01/09/2026") });
    assert.equal(run.outcome.status, "applied", run.issues.join("\n"));
    const births = (await column(rd, slug, "users", "birth_date"));
    assert.equal(births["5"], "2010-03-05");
    assert.equal(births["12"], "2010-03-12");
    assert.equal(births["25"], "2010-03-25");
    assert.deepEqual(new Set(Object.values((await column(rd, slug, "enrollments", "start_date")))), new Set(["2026-09-01", "2026-09-14"]));
    assert.deepEqual(run.issues, ["info DATE_FORMAT_DAY_FIRST@-:birth_date=-", "info DATE_FORMAT_DAY_FIRST@-:start_date=-"]);
    const message = run.shown.issues.find((i) => i.column === "birth_date")!.message;
    assert.match(message, /users\.csv: column birth_date was read as DD\/MM\/YYYY \(day first\) throughout.*for example 13\/03\/2010 in row 15/);
  });

  it("reads a US file's dates month first, as before", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd, NO_HOLDS);
    const run = await ingest(rd, slug, { birth: (s) => `03/${pad(s)}/2010`, start: () => "01/09/2026" });
    assert.deepEqual(run.issues, []);
    assert.equal((await column(rd, slug, "users", "birth_date"))["5"], "2010-03-05");
    assert.equal((await column(rd, slug, "enrollments", "start_date"))["5"], "2026-01-09");
  });

  it("takes none of the dates of a column that mixes both forms: optional ones keep yesterday's", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd, NO_HOLDS);
    await ingest(rd, slug, { birth: (s) => `03/${pad(s)}/2010` });
    const before = (await column(rd, slug, "users", "birth_date"));
    // Tonight: student 2 day first, student 3 month first, every other date fits both; student 31 is new.
    const mixed = (s: number) => (s === 2 ? "25/03/2010" : s === 3 ? "03/26/2010" : `04/${pad(Math.min(s, 12))}/2011`);
    const run = await ingest(rd, slug, { birth: mixed, students: STUDENTS + 1, email: (s) => `new${s}@example.org` });
    assert.equal(run.outcome.status, "applied", run.issues.join("\n"));
    assert.deepEqual(run.issues, ["warning AMBIGUOUS_DATE_FORMAT@-:birth_date=-"]);
    assert.match(run.shown.issues[0]!.message, /25\/03\/2010 in row 4 can only be day first \(DD\/MM\/YYYY\), 03\/26\/2010 in row 5 only month first/);
    const after = (await column(rd, slug, "users", "birth_date"));
    assert.deepEqual({ ...after, 31: undefined }, { ...before, 31: undefined }, "yesterday's dates of birth");
    assert.equal(after["31"], null, "a new student has no yesterday");
    // The rows themselves were taken.
    assert.equal((await column(rd, slug, "users", "email"))["7"], "new7@example.org");
    assert.equal(run.shown.summary.files!.find((f) => f.name === "users.csv")!.badRows, 0);
  });

  it("rejects the rows of a required date column that mixes both forms: the terms stay as they were", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd, NO_HOLDS);
    await ingest(rd, slug, { terms: ["1,Fall,08/24/2026,12/20/2026", "2,Spring,01/05/2027,06/30/2027"] });
    const before = (await snapshot(rd, slug)).terms;
    const run = await ingest(rd, slug, { terms: ["1,Fall,25/08/2026,12/20/2026", "2,Spring,01/25/2027,06/30/2027"] });
    // Two bad rows never fail a file; the rejected rows keep their live terms, as any rejected row does.
    assert.equal(run.outcome.status, "applied");
    assert.deepEqual(run.issues, ["warning AMBIGUOUS_DATE_FORMAT@-:start_date=-"]);
    assert.equal(run.outcome.counts.terms.kept, 2);
    assert.equal(run.outcome.counts.terms.deleted, 0);
    assert.match(run.shown.issues.find((i) => i.code === "AMBIGUOUS_DATE_FORMAT")!.message, /2 rows were left out of tonight's sync/);
    const terms = run.shown.summary.files!.find((f) => f.name === "terms.csv")!;
    assert.deepEqual([terms.rows, terms.records, terms.badRows], [2, 0, 2]);
    assert.deepEqual((await snapshot(rd, slug)).terms, before);
  });
});

forEachBackend(selectedBackends(), "a district's date format", () => {
  it("reads every date its way: with dmy, an undecidable date is day first and a month-first one is bad", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd, NO_HOLDS);
    assert.equal((await rd.districts.show(slug)).dateFormat, "auto");
    assert.equal((await rd.districts.setDateFormat(slug, "dmy", "test")).dateFormat, "dmy");
    const first = await ingest(rd, slug, { birth: () => "05/03/2010" });
    assert.deepEqual(first.issues, []);
    assert.equal((await column(rd, slug, "users", "birth_date"))["1"], "2010-03-05");
    const second = await ingest(rd, slug, { birth: (s) => (s === 1 ? "03/25/2010" : "05/03/2010") });
    assert.deepEqual(second.issues, ["warning BAD_DATE@3:birth_date=03/25/2010"]);
    assert.match(second.shown.issues[0]!.message, /Use DD\/MM\/YYYY .*the date format set for this district.*Kept yesterday's value 2010-03-05/);
    await rd.districts.setDateFormat(slug, "mdy", "test");
    const third = await ingest(rd, slug, { birth: (s) => (s === 1 ? "25/03/2010" : "05/03/2010") });
    assert.deepEqual(third.issues, ["warning BAD_DATE@3:birth_date=25/03/2010"]);
    assert.equal((await column(rd, slug, "users", "birth_date"))["2"], "2010-05-03");
    await assert.rejects(rd.districts.setDateFormat(slug, "ymd", "test"), { code: "ERR_INVALID_ARGUMENT" });
    assert.equal((await rd.districts.setDateFormat(slug, "auto", "test")).dateFormat, "auto");
  });
});

// The CLI's own processes, on the SQLite of their data folder: in the SQLite run only.
if (selectedBackends().some((b) => b.name === "sqlite")) describe("rosterdock district settings", () => {
  it("shows and sets the district's date format, and `rosterdock ingest` then reads its dates that way", async () => {
    const home = await RosterdockHome.create();
    try {
      await home.createDistrict("lincoln");
      assert.deepEqual(await home.json(["district", "settings", "lincoln"]), { slug: "lincoln", dateFormat: "auto", safeguards: {} });
      assert.deepEqual(await home.json(["district", "settings", "lincoln", "--date-format", "dmy"]), { slug: "lincoln", dateFormat: "dmy", safeguards: {} });
      const text = await home.cli(["district", "settings", "lincoln"]);
      assert.match(text.stdout, /Date format {2}dmy \(DD\/MM\/YYYY\)/);
      const bad = await home.cli(["district", "settings", "lincoln", "--date-format", "ymd"]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /The date format must be one of auto, mdy, dmy, got "ymd"/);

      const ingested = await home.json(["ingest", "lincoln", await writeFiles(files({ birth: () => "05/03/2010" }))]);
      assert.equal(ingested.status, "applied");
      const { default: Database } = await import("better-sqlite3");
      const db = new Database(join(home.dataDir, "rosterdock.sqlite"), { readonly: true });
      try {
        assert.deepEqual(db.prepare("SELECT DISTINCT birth_date FROM roster_users WHERE scope = 'student'").pluck().all(), ["2010-03-05"]);
      } finally {
        db.close();
      }
    } finally {
      await home.remove();
    }
  });
});

forEachBackend(selectedBackends(), "a bad optional value keeps yesterday's", () => {
  it("keeps the live record's value and names it in the warning; a new record's is left empty", async () => {
    const rd = await startRosterdock();
    const slug = await newDistrict(rd, NO_HOLDS);
    // 60 students: three bad values stay under the 5% of bad rows that fails a file.
    await ingest(rd, slug, { students: 60, birth: (s) => `03/${pad(s % 28 + 1)}/2010` });
    const night2: Night = {
      students: 61,
      birth: (s) => (s === 5 || s === 61 ? "02/30/2010" : `03/${pad(s % 28 + 1)}/2010`),
      email: (s) => (s === 6 ? "s6@" : `s${s}@example.org`),
      start: (s) => (s === 7 ? "13/13/2026" : "2026-08-24"),
    };
    const run = await ingest(rd, slug, night2);
    assert.equal(run.outcome.status, "applied", run.issues.join("\n"));
    assert.deepEqual(run.issues, [
      "warning BAD_DATE@63:birth_date=02/30/2010",
      "warning BAD_DATE@7:birth_date=02/30/2010",
      "warning BAD_DATE@8:start_date=13/13/2026",
      "warning BAD_VALUE@8:email=s6@",
    ]);
    const message = (code: string, row: number) => run.shown.issues.find((i) => i.code === code && i.row === row)!.message;
    assert.match(message("BAD_DATE", 7), /"02\/30\/2010" is not a valid date\. .* Kept yesterday's value 2010-03-06; the row was kept\.$/);
    assert.match(message("BAD_VALUE", 8), /"s6@" is not an email address\. Kept yesterday's value s6@example\.org; the row was kept\.$/);
    assert.match(message("BAD_DATE", 8), /Kept yesterday's value 2026-08-24; the row was kept\.$/);
    assert.match(message("BAD_DATE", 63), /There was no value yesterday, so it was left empty; the row was kept\.$/);
    assert.equal((await column(rd, slug, "users", "birth_date"))["5"], "2010-03-06");
    assert.equal((await column(rd, slug, "users", "birth_date"))["61"], null);
    assert.equal((await column(rd, slug, "users", "email"))["6"], "s6@example.org");
    assert.equal((await column(rd, slug, "enrollments", "start_date"))["7"], "2026-08-24");
    assert.deepEqual(run.outcome.counts.users, { created: 1, updated: 0, deleted: 0, unchanged: 61 });
    assert.deepEqual(run.outcome.counts.enrollments, { created: 1, updated: 0, deleted: 0, unchanged: 60 });

    // The next night, read against the digests, reads those lines again (they had issues): the same warnings, the same values.
    const again = await ingest(rd, slug, night2);
    assert.deepEqual(again.shown.summary.digests!.map((d) => d.delta), [true, true]);
    assert.deepEqual(again.issues, run.issues);
    assert.match(again.shown.issues.find((i) => i.code === "BAD_DATE" && i.row === 7)!.message, /Kept yesterday's value 2010-03-06/);
    assert.equal((await column(rd, slug, "users", "email"))["6"], "s6@example.org");
    assert.deepEqual(again.outcome.counts.users, { created: 0, updated: 0, deleted: 0, unchanged: 62 });
  });
});

forEachBackend(selectedBackends(), "second nights read against line digests read dates as a full read does", () => {
  /** Night 1 into two districts, night 2 into both, district B without its digests (read in full). */
  async function bothWays(night1: Night, night2: Night) {
    const rd = await startRosterdock();
    const delta = await newDistrict(rd, NO_HOLDS);
    const full = await newDistrict(rd, NO_HOLDS);
    for (const slug of [delta, full]) assert.equal((await ingest(rd, slug, night1)).outcome.status, "applied");
    await rm(join(rd.config.dataDir, "districts", String((await rd.districts.show(full)).id), "digests"), { recursive: true, force: true });
    const a = await ingest(rd, delta, night2);
    const b = await ingest(rd, full, night2);
    assert.deepEqual(b.shown.summary.digests!.map((d) => d.delta), [false, false]);
    assert.equal(a.outcome.status, b.outcome.status);
    assert.deepEqual(a.outcome.counts, b.outcome.counts);
    assert.deepEqual(a.issues, b.issues);
    assert.deepEqual((await snapshot(rd, delta)), (await snapshot(rd, full)));
    return { rd, delta, a, b, usedDigests: a.shown.summary.digests!.map((d) => d.delta) };
  }

  // Students 20 and over start on 14 September: the column is day first.
  const dayFirst = (s: number) => (s >= 20 ? "14/09/2026" : "01/09/2026");

  it("reads tonight's changed lines as last night did: day first", async () => {
    const run = await bothWays({ start: dayFirst, birth: (s) => `${pad(s)}/03/2010` }, { start: (s) => (s === 3 ? "02/09/2026" : dayFirst(s)), birth: (s) => (s === 4 ? "04/05/2011" : `${pad(s)}/03/2010`) });
    assert.deepEqual(run.usedDigests, [true, true]);
    assert.equal((await column(run.rd, run.delta, "enrollments", "start_date"))["3"], "2026-09-02");
    assert.equal((await column(run.rd, run.delta, "users", "birth_date"))["4"], "2011-05-04");
    assert.deepEqual(run.a.issues, ["info DATE_FORMAT_DAY_FIRST@-:birth_date=-", "info DATE_FORMAT_DAY_FIRST@-:start_date=-"]);
  });

  it("reads in full when tonight's changed lines show a column is day first after all", async () => {
    const run = await bothWays({ start: () => "01/09/2026" }, { start: dayFirst });
    assert.deepEqual(run.usedDigests, [false, false]);
    assert.equal((await column(run.rd, run.delta, "enrollments", "start_date"))["1"], "2026-09-01");
  });

  it("reads in full when the only day-first line changed: the lines skipped no longer show the column is day first", async () => {
    const run = await bothWays({ start: (s) => (s === 20 ? "14/09/2026" : "01/09/2026") }, { start: () => "01/09/2026" });
    assert.deepEqual(run.usedDigests, [false, false]);
    assert.equal((await column(run.rd, run.delta, "enrollments", "start_date"))["1"], "2026-01-09");
  });

  it("keeps an ambiguous column's values night after night, read against the digest or not", async () => {
    const mixed = (s: number) => (s <= 5 ? "25/08/2026" : s <= 10 ? "08/26/2026" : "08/24/2026");
    const run = await bothWays({ start: mixed }, { start: (s) => (s === 9 ? "09/09/2026" : mixed(s)) });
    assert.deepEqual(run.usedDigests, [true, true]);
    assert.deepEqual(run.a.issues, ["warning AMBIGUOUS_DATE_FORMAT@-:start_date=-"]);
    assert.equal((await column(run.rd, run.delta, "enrollments", "start_date"))["9"], null, "never taken: no value yesterday");
  });
});
