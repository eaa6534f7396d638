import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { MAX_FILTER_PREDICATES, filterFields, parseFilter } from "../../src/api/oneroster/oneroster-filter.ts";
import { RosterdockError } from "../../src/errors.ts";

const invalid = (text: string, pattern: RegExp) =>
  assert.throws(
    () => parseFilter(text),
    (error: unknown) => error instanceof RosterdockError && error.code === "ERR_ONEROSTER_INVALID_FILTER" && pattern.test(error.message),
  );

describe("OneRoster filter parser", () => {
  it("parses every operator, with or without spaces around it", () => {
    for (const op of ["=", "!=", ">", ">=", "<", "<=", "~"] as const) {
      assert.deepEqual(parseFilter(`familyName${op}'Peña'`), { kind: "predicate", field: "familyName", op, value: "Peña" });
      assert.deepEqual(parseFilter(`  familyName ${op} 'Peña'  `), { kind: "predicate", field: "familyName", op, value: "Peña" });
    }
  });

  it("keeps values verbatim: spaces, operators, AND/OR and doubled quotes inside quotes", () => {
    assert.equal((parseFilter("title='Algebra AND Geometry >= 2'") as { value: string }).value, "Algebra AND Geometry >= 2");
    assert.equal((parseFilter("familyName='O''Brien'") as { value: string }).value, "O'Brien");
    assert.equal((parseFilter("familyName=''") as { value: string }).value, "");
  });

  it("joins predicates with AND and OR, AND binding tighter", () => {
    const parsed = parseFilter("role='student' AND familyName='Peña' OR givenName~'zo'");
    assert.deepEqual(parsed, {
      kind: "or",
      clauses: [
        {
          kind: "and",
          clauses: [
            { kind: "predicate", field: "role", op: "=", value: "student" },
            { kind: "predicate", field: "familyName", op: "=", value: "Peña" },
          ],
        },
        { kind: "predicate", field: "givenName", op: "~", value: "zo" },
      ],
    });
    assert.deepEqual(filterFields(parsed), ["role", "familyName", "givenName"]);
    assert.equal(parseFilter("a='1' and b='2'").kind, "and");
  });

  it("accepts dotted field names", () => {
    assert.equal((parseFilter("school.sourcedId='101'") as { field: string }).field, "school.sourcedId");
  });

  it("rejects malformed filters with the position and a clear message", () => {
    invalid("", /empty/);
    invalid("familyName=Peña", /at character 12: the value for familyName must be in single quotes/);
    invalid("familyName='Peña", /not closed/);
    invalid("familyName 'Peña'", /expected an operator/);
    invalid("='x'", /expected a field name/);
    invalid("(a='1')", /parentheses/);
    invalid("a='1' b='2'", /expected AND or OR/);
    invalid("a='1' AND", /expected AND or OR|expected a field name/);
    invalid("a='1' XOR b='2'", /expected AND or OR/);
    const tooMany = Array.from({ length: MAX_FILTER_PREDICATES + 1 }, (_, i) => `f${i}='x'`).join(" OR ");
    invalid(tooMany, /at most/);
  });
});
