import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { ISSUE_CODES } from "../../src/intake/issue.ts";
import { renderFileFormatDoc } from "../../src/spec/render-file-format-doc.ts";
import { ENTITY_NAMES, columnLabels, entitySpec } from "../../src/spec/roster-spec.ts";

describe("docs/file-format.md", () => {
  it("is generated from the current spec (run `npm run docs` when this fails)", async () => {
    const committed = await readFile(new URL("../../docs/file-format.md", import.meta.url), "utf8");
    assert.equal(committed, renderFileFormatDoc());
  });

  it("documents every issue code, entity, column and alias", () => {
    const doc = renderFileFormatDoc();
    for (const code of Object.keys(ISSUE_CODES)) assert.ok(doc.includes(`| \`${code}\` |`), code);
    for (const entity of ENTITY_NAMES) {
      assert.ok(doc.includes(`## ${entity}\n`), entity);
      for (const column of entitySpec(entity).columns) {
        for (const label of columnLabels(column)) assert.ok(doc.includes(`\`${label}\``), `${entity}.${column.name}: ${label}`);
      }
    }
  });
});
