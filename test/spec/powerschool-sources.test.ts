import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { matchHeaders } from "../../src/intake/match-headers.ts";
import { recogniseFile } from "../../src/intake/recognise-file.ts";
import { ENTITY_NAMES, entitySpec, powerSchoolFiles } from "../../src/spec/roster-spec.ts";

describe("PowerSchool sources in the roster spec", () => {
  it("name a PowerSchool export for every table a district sends", () => {
    const exported = new Set(powerSchoolFiles().map((file) => file.entity));
    assert.deepEqual([...exported].sort(), [...ENTITY_NAMES].sort());
    assert.deepEqual(
      powerSchoolFiles().map((file) => [file.stem, file.export.table, file.export.autoSendData]),
      [
        ["schools", "Schools", null],
        ["students", "Students", "Students"],
        ["teachers", "Teachers", "Teachers"],
        ["sections", "Sections", "Sections"],
        ["cc", "CC", "Student Schedules"],
        ["courses", "Courses", "Courses"],
        ["terms", "Terms", null],
      ],
    );
  });

  it("give every column of every PowerSchool file its field for both tools, or say why there is none", () => {
    for (const file of powerSchoolFiles()) {
      const columns = entitySpec(file.entity).columns.map((c) => c.name);
      const listed = file.export.fields.map((f) => f.column);
      assert.deepEqual([...listed].sort(), [...columns].sort(), `${file.stem}: each column exactly once`);
      for (const field of file.export.fields) {
        if ("none" in field) {
          assert.ok(field.none.length > 10, `${file.stem}.${field.column} says why`);
          const column = entitySpec(file.entity).columns.find((c) => c.name === field.column)!;
          assert.ok(!column.required || column.name in (entitySpec(file.entity).fileStems.find((s) => s.stem === file.stem)?.implied ?? {}), `${file.stem}.${field.column} is required`);
          continue;
        }
        assert.ok(field.dem.startsWith(`${file.export.table}.`), `${field.dem} is labelled Table.Field as Data Export Manager does`);
        if (file.export.autoSendData === null) assert.equal(field.autoSend, null, field.dem);
        else assert.match(field.autoSend ?? "", /^(\[\d{2}\])?[A-Za-z_]+$/, field.dem);
      }
      assert.equal(file.export.fileNames.autoSend === null, file.export.autoSendData === null, file.stem);
    }
  });

  it("prescribe headers and file names that the intake recognises as the right columns and table", () => {
    for (const file of powerSchoolFiles()) {
      const sourced = file.export.fields.filter((f) => "dem" in f);
      const tools = [
        { tool: "Data Export Manager", name: file.export.fileNames.dem, labels: sourced.map((f) => ("dem" in f ? f.dem : "")) },
        ...(file.export.fileNames.autoSend === null ? [] : [{ tool: "AutoSend", name: file.export.fileNames.autoSend, labels: sourced.map((f) => ("dem" in f ? (f.autoSend ?? "") : "")) }]),
      ];
      for (const { tool, name, labels } of tools) {
        const recognised = recogniseFile(name);
        assert.ok(recognised, `${tool} ${name} is recognised`);
        assert.equal(recognised.entity, file.entity);
        assert.equal(recognised.stem, file.stem);
        const match = matchHeaders(labels, recognised);
        assert.deepEqual(match.unused, [], `${tool} ${name}: every prescribed label is read`);
        assert.deepEqual(match.duplicates, [], `${tool} ${name}`);
        assert.deepEqual(match.missing, [], `${tool} ${name}: no required column missing`);
        sourced.forEach((field, index) => assert.equal(match.bindings.get(field.column)?.index, index, `${tool} ${name}: ${labels[index]} is ${field.column}`));
      }
    }
  });
});
