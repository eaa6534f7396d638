import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { renderFileFormatDoc } from "../src/spec/render-file-format-doc.ts";

/** Writes docs/file-format.md from the spec; test/spec/file-format-doc.test.ts fails when it is stale. */
const FILE_FORMAT_DOC_PATH = fileURLToPath(new URL("../docs/file-format.md", import.meta.url));

await writeFile(FILE_FORMAT_DOC_PATH, renderFileFormatDoc());
console.log(`wrote ${FILE_FORMAT_DOC_PATH}`);
