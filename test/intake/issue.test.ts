import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ISSUE_CODES, MAX_ISSUE_MESSAGE, MAX_ISSUE_VALUE, MemoryIssueSink, makeIssue } from "../../src/intake/issue.ts";
import type { IssueCode } from "../../src/intake/issue.ts";

describe("MemoryIssueSink", () => {
  it("keeps a bounded number of issues per file and code, and counts them all", () => {
    const persisted: Array<number | null> = [];
    const sink = new MemoryIssueSink({ maxPerFileAndCode: 3, onKept: (issue) => persisted.push(issue.row) });
    for (let row = 2; row < 100_002; row++) sink.add(makeIssue("MISSING_VALUE", { file: "cc.csv", row, column: "StudentID", value: "" }));
    sink.add(makeIssue("MISSING_VALUE", { file: "students.csv", row: 2, column: "ID", value: "" }));
    sink.add(makeIssue("UNUSED_COLUMN", { file: "cc.csv", count: 1, value: "CC.ID" }));
    assert.equal(sink.kept.length, 5);
    assert.deepEqual(persisted, [2, 3, 4, 2, null]);
    assert.deepEqual(sink.counts, { error: 0, warning: 100_001, info: 1 });
    assert.equal(sink.countOf("MISSING_VALUE"), 100_001);
    assert.equal(sink.countOf("MISSING_VALUE", "cc.csv"), 100_000);
    assert.equal(sink.omitted("MISSING_VALUE", "cc.csv"), 99_997);
  });
});

describe("ISSUE_CODES", () => {
  it("builds a message naming the file for every code's example", () => {
    for (const code of Object.keys(ISSUE_CODES) as IssueCode[]) {
      const issue = makeIssue(code, ISSUE_CODES[code].example);
      assert.equal(issue.code, code);
      assert.equal(issue.severity, ISSUE_CODES[code].severity);
      assert.ok(issue.message.includes(ISSUE_CODES[code].example.file), code);
      assert.doesNotMatch(issue.message, /undefined|NaN|\[object/, code);
    }
  });
});

describe("makeIssue", () => {
  it("caps what an issue keeps: the value cut and marked, the message bounded", () => {
    const header = Array.from({ length: 100_000 }, (_, i) => `Column${i}`).join(", ");
    const issue = makeIssue("UNUSED_COLUMN", { file: "students.csv", count: 100_000, value: header });
    assert.ok(issue.value!.length < MAX_ISSUE_VALUE + 60);
    assert.match(issue.value!, /… \[cut: [\d,]+ characters in all\]$/);
    assert.ok(issue.message.length < MAX_ISSUE_MESSAGE + 60);
    assert.match(issue.message, /^students\.csv: 100,000 columns/);
  });
});
