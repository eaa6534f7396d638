import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { renderErrorDoc } from "../../src/render-error-doc.ts";
import { ERROR_CATALOGUE } from "../../src/errors.ts";
import { SETTINGS } from "../../src/config.ts";
import { withConfigurationTable } from "../../scripts/generate-docs.ts";

const read = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), "utf8");

describe("generated docs (run `npm run docs` when these fail)", () => {
  it("docs/errors.md lists every error code", async () => {
    const doc = await read("docs/errors.md");
    assert.equal(doc, renderErrorDoc());
    for (const code of Object.keys(ERROR_CATALOGUE)) assert.ok(doc.includes(`\`${code}\``), code);
  });

  it("the README's configuration table lists every setting", async () => {
    const readme = await read("README.md");
    assert.equal(readme, withConfigurationTable(readme));
    for (const setting of SETTINGS) assert.ok(readme.includes(`\`${setting.env}\``), setting.env);
  });
});
