import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { INVALID, TYPE_RULES, parseDate, parseRole } from "../../src/intake/normalise.ts";

describe("parseDate", () => {
  it("accepts MM/DD/YYYY, M/D/YY and YYYY-MM-DD", () => {
    assert.equal(parseDate("08/24/2026"), "2026-08-24");
    assert.equal(parseDate("8/4/2026"), "2026-08-04");
    assert.equal(parseDate("8/24/26"), "2026-08-24");
    assert.equal(parseDate("8/24/98"), "1998-08-24");
    assert.equal(parseDate("2026-08-24"), "2026-08-24");
    assert.equal(parseDate("2/29/2028"), "2028-02-29");
  });

  it("reads PowerSchool's empty dates as null", () => {
    for (const empty of ["0/0/0", "00/00/0000", "01/01/1900", "1/1/1900", "1900-01-01"]) assert.equal(parseDate(empty), null, empty);
  });

  it("rejects impossible and ambiguous dates", () => {
    for (const bad of ["13/01/2026", "02/29/2027", "31/08/2026", "8/24/026", "2026/08/24", "24.08.2026", "tomorrow", "1/1/1850"]) {
      assert.equal(parseDate(bad), INVALID, bad);
    }
  });
});

describe("value types", () => {
  it("reads roles in any case", () => {
    assert.equal(parseRole("Teacher"), "teacher");
    assert.equal(parseRole("AIDE"), "aide");
    assert.equal(parseRole("principal"), INVALID);
  });

  it("checks grades, integers, emails and text", () => {
    assert.equal(TYPE_RULES.grade.parse("-1"), "-1");
    assert.equal(TYPE_RULES.grade.parse("KG"), "KG");
    assert.equal(TYPE_RULES.grade.parse("Grade 5"), INVALID);
    assert.equal(TYPE_RULES.integer.parse("-2"), -2);
    assert.equal(TYPE_RULES.integer.parse("2.5"), INVALID);
    assert.equal(TYPE_RULES.email.parse("a@b.org"), "a@b.org");
    assert.equal(TYPE_RULES.email.parse("a@b"), INVALID);
    assert.equal(TYPE_RULES.string.parse("x".repeat(256)), INVALID);
    assert.equal(TYPE_RULES.string.parse("a\u0000b"), INVALID);
  });
});
