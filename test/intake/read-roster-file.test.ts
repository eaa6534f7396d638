import assert from "node:assert/strict";
import { describe, it } from "node:test";
import iconv from "iconv-lite";
import { DuplicateKeyTracker } from "../../src/intake/duplicate-keys.ts";
import { awaitsKeptValue } from "../../src/intake/issue.ts";
import { badRowLimitIssue } from "../../src/intake/read-roster-file.ts";
import { KEPT_VALUE } from "../../src/intake/validate-row.ts";
import { brief, readContent } from "./helpers.ts";

const STUDENT_1001 = {
  district_user_id: "1001",
  first_name: "José",
  last_name: "Peña",
  role: "student",
  middle_name: null,
  email: null,
  username: null,
  school_id: "101",
  grade: null,
  student_number: null,
  teacher_number: null,
  state_id: null,
  birth_date: null,
  gender: null,
  scope: "student",
};

const UTF8_TEXT = "ID,First_Name,Last_Name,SchoolID\r\n1001,José,Peña,101\r\n";

describe("readRosterFile: encodings", () => {
  it("reads UTF-8 with a BOM", async () => {
    const result = await readContent("students.csv", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(UTF8_TEXT)]));
    assert.deepEqual(result.records, [STUDENT_1001]);
    assert.equal(result.stats.encoding, "utf-8");
    assert.deepEqual(brief(result.issues), []);
  });

  it("reads UTF-8 without a BOM", async () => {
    const result = await readContent("students.csv", UTF8_TEXT);
    assert.deepEqual(result.records, [STUDENT_1001]);
    assert.deepEqual(brief(result.issues), []);
  });

  it("reads Windows-1252 and says so", async () => {
    const result = await readContent("students.csv", iconv.encode(UTF8_TEXT, "windows-1252"));
    assert.deepEqual(result.records, [STUDENT_1001]);
    assert.equal(result.stats.encoding, "windows-1252");
    assert.deepEqual(brief(result.issues), ["info WINDOWS_1252_DECODED@-:-=-"]);
    // "ID,First_Name,Last_Name,SchoolID\r\n1001,Jos" is 42 bytes: é is byte 43.
    assert.match(result.issues[0]!.message, /students\.csv is not UTF-8.*byte 43\)/);
  });

  it("finds a Windows-1252 byte far into the file, past the first chunks", async () => {
    const filler = Array.from({ length: 60_000 }, (_, i) => `${i + 2000},Ann,Lee,101\r\n`).join("");
    const bytes = Buffer.concat([Buffer.from(`ID,First_Name,Last_Name,SchoolID\r\n${filler}`), iconv.encode("1001,José,Peña,101\r\n", "windows-1252")]);
    const result = await readContent("students.csv", bytes);
    assert.equal(result.stats.encoding, "windows-1252");
    assert.deepEqual(result.records.at(-1), STUDENT_1001);
  });

  it("validates UTF-8 sequences split across chunks", async () => {
    // 1 MiB chunks: put "é" (2 bytes) across the first boundary.
    const head = "ID,First_Name,Last_Name,SchoolID\n";
    const pad = "x".repeat(1024 * 1024 - head.length - "1,".length - 1);
    const result = await readContent("students.csv", `${head}1,${pad}é,Lee,101\n`);
    assert.equal(result.stats.encoding, "utf-8");
    assert.equal(result.records.length, 0); // the name is over 255 characters
    assert.deepEqual(brief(result.issues).map((b) => b.split("=")[0]), ["warning BAD_VALUE@2:First_Name"]);
  });

  it("reads UTF-16LE with a BOM", async () => {
    const result = await readContent("students.csv", Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(UTF8_TEXT, "utf16le")]));
    assert.deepEqual(result.records, [STUDENT_1001]);
    assert.equal(result.stats.encoding, "utf-16le");
  });

  it("reads UTF-16BE with a BOM", async () => {
    const le = Buffer.from(UTF8_TEXT, "utf16le");
    const be = Buffer.from(le).swap16();
    const result = await readContent("students.csv", Buffer.concat([Buffer.from([0xfe, 0xff]), be]));
    assert.deepEqual(result.records, [STUDENT_1001]);
  });

  it("fails a binary file named students.csv", async () => {
    const bytes = Buffer.from([0x00, 0x01, 0x02, 0x03, 0x49, 0x44, 0x00, 0x00, 0x10, 0x20, 0xff, 0x00]);
    const result = await readContent("students.csv", bytes);
    assert.deepEqual(result.records, []);
    assert.equal(result.stats.failed, "BINARY_FILE");
    assert.deepEqual(brief(result.issues), ["error BINARY_FILE@-:-=-"]);
    assert.match(result.issues[0]!.message, /students\.csv is not a text file \(it contains NUL bytes\)/);
  });

  it("fails a PDF named students.csv, saying it is a PDF", async () => {
    const result = await readContent("students.csv", "%PDF-1.7\n%âãÏÓ\n1 0 obj\n");
    assert.deepEqual(brief(result.issues), ["error BINARY_FILE@-:-=-"]);
    assert.match(result.issues[0]!.message, /it is a PDF document/);
  });

  it("fails an empty file", async () => {
    const result = await readContent("students.csv", "");
    assert.equal(result.stats.failed, "EMPTY_FILE");
    assert.deepEqual(brief(result.issues), ["error EMPTY_FILE@-:-=-"]);
  });
});

describe("readRosterFile: layout", () => {
  it("reads AutoSend: tab, LF, a trailing tab on every line, [NN] labels", async () => {
    const text = "ID\tFirst_Name\tLast_Name\tSchoolID\t[39]Abbreviation\t\n1001\tJosé\tPeña\t101\tLE\t\n";
    const result = await readContent("students.txt", text);
    assert.deepEqual(result.records, [STUDENT_1001]);
    assert.equal(result.stats.delimiter, "\t");
    assert.deepEqual(result.stats.header, ["ID", "First_Name", "Last_Name", "SchoolID", "[39]Abbreviation"]);
    assert.deepEqual(brief(result.issues), ["info UNUSED_COLUMN@-:-=[39]Abbreviation"]);
  });

  it("reads pipe and semicolon files with CR line endings", async () => {
    for (const d of ["|", ";"]) {
      const result = await readContent("students.csv", `ID${d}First_Name${d}Last_Name${d}SchoolID\r1001${d}José${d}Peña${d}101\r`);
      assert.deepEqual(result.records, [STUDENT_1001], d);
    }
  });

  it("matches Table. prefixes, any case, spaces and a BOM", async () => {
    const text = "\uFEFF Students.ID ,STUDENTS.FIRST_NAME,students.last_name, Students.SchoolID\n1001,José,Peña,101\n";
    const result = await readContent("students_20261128.csv", text);
    assert.deepEqual(result.records, [STUDENT_1001]);
    assert.deepEqual(brief(result.issues), []);
  });

  it("counts blank lines in row numbers and skips them", async () => {
    const text = "ID,First_Name,Last_Name\n\n1001,A,B\n,,\n\n1002,C,\n";
    const result = await readContent("students.csv", text);
    assert.deepEqual(result.rows, [3]);
    assert.deepEqual(brief(result.issues), ["warning MISSING_VALUE@6:Last_Name="]);
    assert.deepEqual({ rows: result.stats.rows, blank: result.stats.blank, badRows: result.stats.badRows }, { rows: 2, blank: 1, badRows: 1 });
  });

  it("reports a row with the wrong number of values", async () => {
    const result = await readContent("students.csv", "ID,First_Name,Last_Name\n1001,A,B,extra\n1002,C\n1003,D,E,,\n");
    assert.deepEqual(brief(result.issues), ["warning WRONG_FIELD_COUNT@2:-=-", "warning WRONG_FIELD_COUNT@3:-=-"]);
    assert.deepEqual(result.rows, [4]);
    assert.match(result.issues[0]!.message, /row 2: the row has 4 values but the header has 3 columns/);
  });

  it("fails a file without a header row, saying what to turn on", async () => {
    const result = await readContent("students.txt", "1001\t200001\tJosé\tPeña\n1002\t200002\tAnn\tLee\n");
    assert.equal(result.stats.failed, "NO_HEADER_ROW");
    assert.deepEqual(result.records, []);
    assert.deepEqual(brief(result.issues), ["error NO_HEADER_ROW@1:-=1001 | 200001 | José | Peña"]);
    assert.match(result.issues[0]!.message, /has no header row: its first row looks like data \(it contains "1001"\).*Include Column Headers/);
  });

  it("fails a file whose header names no known column", async () => {
    const result = await readContent("students.csv", "Foo,Bar\nx,y\n");
    assert.equal(result.stats.failed, "NO_HEADER_ROW");
    assert.match(result.issues[0]!.message, /matches no known column name/);
  });

  it("fails a file missing a required column and names the labels to add", async () => {
    const result = await readContent("sections.csv", "ID,SchoolID,Course_Number\n20001,101,C1001\n");
    assert.equal(result.stats.failed, "MISSING_REQUIRED_COLUMN");
    assert.deepEqual(brief(result.issues), ["error MISSING_REQUIRED_COLUMN@-:teacher_id=-"]);
    assert.match(result.issues[0]!.message, /sections\.csv has no teacher_id column\. Add one of the fields teacher_id, Teacher to the export/);
  });

  it("fails a file with an unclosed quote", async () => {
    const result = await readContent("students.csv", 'ID,First_Name,Last_Name\n1001,"A,B\n1002,C,D\n');
    assert.equal(result.stats.failed, "UNCLOSED_QUOTE");
    assert.deepEqual(brief(result.issues), ["error UNCLOSED_QUOTE@2:-=-"]);
  });

  it("warns about a header-only file", async () => {
    const result = await readContent("students.csv", "ID,First_Name,Last_Name\r\n");
    assert.equal(result.stats.failed, null);
    assert.deepEqual(brief(result.issues), ["warning NO_DATA_ROWS@-:-=-"]);
  });
});

describe("readRosterFile: values and rules", () => {
  it("normalises dates: MM/DD/YYYY, M/D/YY, ISO; 0/0/0 and 01/01/1900 are empty", async () => {
    const text = ["StudentID,SectionID,DateEnrolled,DateLeft", "1,10,08/24/2026,6/11/27", "2,10,2026-08-24,0/0/0", "3,10,01/01/1900,00/00/0000", "4,10,8/24/2026,"].join("\n");
    const result = await readContent("cc.csv", text);
    assert.deepEqual(
      result.records.map((r) => [(r as { start_date: string | null }).start_date, (r as { end_date: string | null }).end_date]),
      [
        ["2026-08-24", "2027-06-11"],
        ["2026-08-24", null],
        [null, null],
        ["2026-08-24", null],
      ],
    );
  });

  it("reports a bad optional date, keeps the row and counts it bad; the value stands for yesterday's", async () => {
    const result = await readContent("cc.csv", "StudentID,SectionID,DateEnrolled\n1,10,13/13/2026\n2,10,02/30/2026\n");
    assert.deepEqual(brief(result.issues), ["warning BAD_DATE@2:DateEnrolled=13/13/2026", "warning BAD_DATE@3:DateEnrolled=02/30/2026"]);
    assert.deepEqual(
      result.records.map((r) => (r as { start_date: string | null }).start_date),
      [KEPT_VALUE, KEPT_VALUE],
    );
    assert.equal(result.stats.badRows, 2);
    assert.deepEqual(result.stats.keptValues, { start_date: 2 });
    assert.match(result.issues[0]!.message, /cc\.csv, row 2, column DateEnrolled: "13\/13\/2026" is not a valid date\. Use MM\/DD\/YYYY/);
    assert.ok(awaitsKeptValue(result.issues[0]!), "the sync names the value kept");
  });

  it("leaves a bad optional id empty: it would name another record", async () => {
    const result = await readContent("students.csv", `ID,First_Name,Last_Name,SchoolID\n1,A,B,${"9".repeat(300)}\n`);
    assert.equal((result.records[0] as { school_id: string | null }).school_id, null);
    assert.match(result.issues[0]!.message, /The value was left empty; the row was kept\.$/);
  });

  it("reports a bad required date and skips the row", async () => {
    const result = await readContent("terms.csv", "ID,Name,FirstDay,LastDay\n3600,2026-2027,8/24/2026,13/13/2027\n");
    assert.deepEqual(result.records, []);
    assert.deepEqual(brief(result.issues), ["warning BAD_DATE@2:LastDay=13/13/2027"]);
  });

  it("drops CC rows with a negative SectionID and reports the count once", async () => {
    const text = "CC.ID,CC.StudentID,CC.SectionID,CC.DateEnrolled,CC.DateLeft\n1,1001,-20001,08/24/2026,09/04/2026\n2,1001,20001,08/24/2026,06/11/2027\n3,1002,-20002,08/24/2026,09/04/2026\n";
    const result = await readContent("cc.csv", text);
    assert.deepEqual(result.records, [{ class_id: "20001", student_id: "1001", start_date: "2026-08-24", end_date: "2027-06-11" }]);
    assert.deepEqual(result.rows, [3]);
    assert.equal(result.stats.dropped, 2);
    assert.deepEqual(brief(result.issues), ["info UNUSED_COLUMN@-:-=CC.ID", "info DROPPED_ENROLLMENTS@-:CC.SectionID=-"]);
    assert.match(result.issues[1]!.message, /2 dropped enrollments \(negative CC\.SectionID\)/);
  });

  it("skips students whose Enroll_Status is not 0", async () => {
    const text = "ID,First_Name,Last_Name,SchoolID,Enroll_Status\n1001,José,Peña,101,0\n1002,A,B,101,2\n1003,C,D,101,-1\n1004,E,F,101,\n";
    const result = await readContent("students.csv", text);
    assert.deepEqual(result.rows, [2, 5]);
    assert.equal(result.stats.skipped, 2);
    assert.deepEqual(brief(result.issues), ["info INACTIVE_STUDENTS_SKIPPED@-:Enroll_Status=-"]);
  });

  it("scopes users: a student and a teacher may share an id", async () => {
    const duplicates = new DuplicateKeyTracker();
    const students = await readContent("students.csv", UTF8_TEXT, { duplicates });
    const teachers = await readContent("teachers.csv", "ID,TeacherNumber,First_Name,Last_Name,Email_Addr,SchoolID\n1001,5001,Ann,Lee,alee@example.org,101\n", { duplicates });
    assert.deepEqual(brief([...students.issues, ...teachers.issues]), []);
    assert.deepEqual(teachers.records, [
      { district_user_id: "1001", first_name: "Ann", last_name: "Lee", role: "teacher", middle_name: null, email: "alee@example.org", username: null, school_id: "101", grade: null, student_number: null, teacher_number: "5001", state_id: null, birth_date: null, gender: null, scope: "staff" },
    ]);
  });

  it("finds duplicate keys within a file and across files of a delivery", async () => {
    const duplicates = new DuplicateKeyTracker();
    const users = await readContent("users.csv", "district_user_id,role,first_name,last_name\n7,Teacher,A,B\n7,student,C,D\n7,TEACHER,E,F\n", { duplicates });
    assert.deepEqual(brief(users.issues), ["warning DUPLICATE_KEY@4:district_user_id=7"]);
    assert.match(users.issues[0]!.message, /staff id "7" already appears in row 2\. The earlier row was kept/);
    const staff = await readContent("staff.csv", "ID,First_Name,Last_Name\n7,G,H\n", { duplicates });
    assert.deepEqual(brief(staff.issues), ["warning DUPLICATE_KEY@2:ID=7"]);
    assert.match(staff.issues[0]!.message, /in users\.csv, row 2/);
    assert.equal(users.stats.badRows, 1);
  });

  it("checks roles and reports every problem of a row", async () => {
    const result = await readContent("users.csv", "district_user_id,role,first_name,last_name\n8,principal,,B\n");
    assert.deepEqual(brief(result.issues), ["warning MISSING_VALUE@2:first_name=", "warning BAD_ROLE@2:role=principal"]);
    assert.equal(result.stats.badRows, 1);
  });

  it("takes School_Number as the schools file's school_id", async () => {
    const result = await readContent("schools.csv", "Schools.ID,Schools.School_Number,Schools.Name\n1,101,Lincoln Elementary\n");
    assert.deepEqual(result.records, [{ school_id: "101", school_name: "Lincoln Elementary", school_number: null, state_id: null, low_grade: null, high_grade: null }]);
    assert.deepEqual(brief(result.issues), ["info UNUSED_COLUMN@-:-=Schools.ID"]);
  });

  it("maps PowerSchool sections (the expression is the period), leaving class_name for the courses to fill", async () => {
    const text = '"Sections.ID","Sections.SchoolID","Sections.Course_Number","Sections.Section_Number","Sections.TermID","Sections.Teacher","Sections.Expression","Sections.Room"\r\n"20001","101","C1001","1","3600","1001","1(A)","104"\r\n';
    const result = await readContent("sections_20261128.csv", text);
    assert.deepEqual(result.records, [{ class_id: "20001", class_name: null, school_id: "101", course_id: "C1001", teacher_id: "1001", term_id: "3600", section_number: "1", period: "1(A)", room: "104" }]);
  });
});

describe("badRowLimitIssue", () => {
  it("fails a file with more than 5% bad rows", () => {
    assert.equal(badRowLimitIssue("cc.csv", { rows: 100, badRows: 5 }), null);
    const issue = badRowLimitIssue("cc.csv", { rows: 100, badRows: 6 });
    assert.equal(issue?.code, "TOO_MANY_BAD_ROWS");
    assert.equal(issue?.severity, "error");
    assert.match(issue!.message, /cc\.csv: 6 rows of 100 are bad \(6\.0%, the limit is 5%\)/);
    assert.equal(badRowLimitIssue("cc.csv", { rows: 100, badRows: 6 }, { maxShare: 0.1, minRows: 5 }), null);
  });
});

describe("readRosterFile: line tracking", () => {
  it("lets an error of the caller's line tracking through, instead of blaming the file", async () => {
    class GiveUp extends Error {
      override readonly name = "GiveUp";
    }
    let seen = 0;
    const lines = {
      begin: () => undefined,
      known: () => {
        if (++seen === 2) throw new GiveUp("the tracker gives up");
        return false;
      },
      accepted: () => undefined,
    };
    await assert.rejects(readContent("students.csv", `${UTF8_TEXT}1002,Ana,Ruiz,101\r\n1003,Bo,Li,101\r\n`, { lines }), { name: "GiveUp" });
  });
});
