import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { renderErrorDoc } from "../../src/render-error-doc.ts";
import { ERROR_CATALOGUE, INGEST_EXIT_CODES } from "../../src/errors.ts";
import { SETTINGS } from "../../src/config.ts";
import { withConfigurationTable } from "../../scripts/generate-docs.ts";

const read = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), "utf8");

describe("generated docs (run `npm run docs` when these fail)", () => {
  it("docs/errors.md lists every error code", async () => {
    const doc = await read("docs/errors.md");
    assert.equal(doc, renderErrorDoc());
    for (const code of Object.keys(ERROR_CATALOGUE)) assert.ok(doc.includes(`\`${code}\``), code);
  });

  it("docs/errors.md gives rosterdock ingest's exit code for each outcome", async () => {
    const doc = await read("docs/errors.md");
    for (const [status, code] of Object.entries(INGEST_EXIT_CODES)) assert.match(doc, new RegExp(`^\\| \`${status}\` \\| ${code} \\|`, "m"), status);
  });

  it("the README's configuration table lists every setting", async () => {
    const readme = await read("README.md");
    assert.equal(readme, withConfigurationTable(readme));
    for (const setting of SETTINGS) assert.ok(readme.includes(`\`${setting.env}\``), setting.env);
  });
});
