import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { matchHeaders, normaliseLabel } from "../../src/intake/match-headers.ts";
import { ENTITY_NAMES, ROSTER_SPEC, entitySpec, recordColumns } from "../../src/spec/roster-spec.ts";

describe("ROSTER_SPEC", () => {
  it("is consistent: keys, references and rules name real columns", () => {
    for (const entity of ENTITY_NAMES) {
      const spec = entitySpec(entity);
      const names = new Set(spec.columns.map((c) => c.name));
      for (const key of spec.key) assert.ok(key === "scope" || names.has(key), `${entity} key ${key}`);
      for (const ref of spec.references) {
        for (const column of ref.columns) assert.ok(names.has(column), `${entity} reference ${column}`);
        const target = new Set(entitySpec(ref.entity).columns.map((c) => c.name));
        for (const column of ref.targetColumns) assert.ok(target.has(column), `${entity} → ${ref.entity}.${column}`);
      }
      for (const rule of spec.rules) assert.ok(names.has(rule.column), `${entity} rule ${rule.kind}`);
      for (const stem of spec.fileStems) for (const column of Object.keys(stem.implied ?? {})) assert.ok(names.has(column));
    }
    for (const column of Object.keys(ROSTER_SPEC.commonAliases)) {
      assert.ok(ENTITY_NAMES.some((e) => entitySpec(e).columns.some((c) => c.name === column)), column);
    }
  });

  it("binds every column name to its column, except the one documented PowerSchool overlap", () => {
    for (const entity of ENTITY_NAMES) {
      const file = { entity, stem: entity, implied: {} };
      for (const column of entitySpec(entity).columns) {
        const match = matchHeaders([column.name], file);
        // PowerSchool's Schools.School_Number is the schools file's school_id when school_id is absent.
        const expected = entity === "schools" && column.name === "school_number" ? "school_id" : column.name;
        assert.equal(match.bindings.get(expected)?.index, 0, `${entity}.${column.name}`);
      }
    }
    const both = matchHeaders(["school_id", "school_number"], { entity: "schools", stem: "schools", implied: {} });
    assert.deepEqual([both.bindings.get("school_id")?.index, both.bindings.get("school_number")?.index], [0, 1]);
  });

  it("keeps input-only columns out of records and adds scope to users", () => {
    assert.ok(!recordColumns("users").includes("enroll_status"));
    assert.equal(recordColumns("users").at(-1), "scope");
    assert.deepEqual(recordColumns("enrollments"), ["class_id", "student_id", "start_date", "end_date"]);
  });

  it("normalises labels the way PowerSchool varies them", () => {
    for (const label of ["TeacherNumber", "[05]TeacherNumber", "Teachers.TeacherNumber", " teacher_number ", "\uFEFFTEACHER NUMBER"]) {
      assert.equal(normaliseLabel(label), "teachernumber", label);
    }
  });
});
