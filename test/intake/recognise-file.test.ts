import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryIssueSink } from "../../src/intake/issue.ts";
import { recogniseDelivery, recogniseFile } from "../../src/intake/recognise-file.ts";

describe("recogniseFile", () => {
  it("recognises stems in any case, ignoring what follows _ or -", () => {
    const cases: Array<[string, string | null, Record<string, string>]> = [
      ["students_20261128.csv", "users", { role: "student" }],
      ["CC-export.txt", "enrollments", {}],
      ["Teachers.TSV", "users", { role: "teacher" }],
      ["staff.csv", "users", { role: "teacher" }],
      ["night.zip/sections.csv", "classes", {}],
      ["users.csv", "users", {}],
      ["terms_2026-27.csv", "terms", {}],
      ["students.xlsx", null, {}],
      ["mystudents.csv", null, {}],
      ["students.20261128.csv", null, {}],
    ];
    for (const [name, entity, implied] of cases) {
      const file = recogniseFile(name);
      assert.equal(file?.entity ?? null, entity, name);
      if (file !== null) assert.deepEqual(file.implied, implied, name);
    }
  });
});

describe("recogniseDelivery", () => {
  it("ignores unrecognised files with a warning and fails two files of the same stem", () => {
    const sink = new MemoryIssueSink();
    const recognised = recogniseDelivery([{ name: "students_20261127.csv" }, { name: "export1.csv" }, { name: "students_20261128.csv" }, { name: "teachers.csv" }], sink);
    assert.deepEqual(recognised.map((r) => r.source.name), ["students_20261127.csv", "teachers.csv"]);
    assert.deepEqual(sink.kept.map((i) => [i.severity, i.code, i.file, i.value]), [
      ["warning", "UNRECOGNISED_FILE", "export1.csv", null],
      ["error", "DUPLICATE_FILE", "students_20261128.csv", "students_20261127.csv"],
    ]);
    assert.match(sink.kept[0]!.message, /export1\.csv was ignored: its name does not say which table it holds\. Name it after the table, for example schools\.csv, users\.csv, students\.csv/);
  });
});
