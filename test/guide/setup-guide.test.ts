import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { isRosterdockError } from "../../src/errors.ts";
import { powerSchoolFiles } from "../../src/spec/roster-spec.ts";
import { escapeHtml } from "../../src/guide/render-guide-html.ts";
import { requireTool } from "../support/sftp-client.ts";

const run = promisify(execFile);
const missingPdfTools = requireTool("pdftotext", ["-v"]) ?? requireTool("/usr/bin/chromium", ["--version"]);

/** The part of a rendered guide between two markers (a section and the next one). */
function between(text: string, start: string, end: string): string {
  const from = text.indexOf(start);
  assert.ok(from >= 0, `${start} is in the guide`);
  const to = text.indexOf(end, from + start.length);
  assert.ok(to > from, `${end} follows ${start}`);
  return text.slice(from, to);
}

/** Asserts that each string occurs in `text`, in this order. */
function inOrder(text: string, parts: readonly string[], what: string): void {
  let at = 0;
  for (const part of parts) {
    const found = text.indexOf(part, at);
    assert.ok(found >= 0, `${what}: ${part} after position ${at}`);
    at = found + part.length;
  }
}

describe("setup guide", () => {
  let dataDir: string;
  let rd: Rosterdock;
  let password: string;
  let username: string;
  let fingerprints: string[];
  const name = `Lincoln <Unified> & "Sons"`;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "rosterdock-guide-"));
    rd = await createRosterdock(
      loadConfig({ ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_PUBLIC_HOST: "sftp.example.org", ROSTERDOCK_SFTP_PORT: "2022", ROSTERDOCK_QUIET_SECONDS: "420" }),
      { logger: createLogger("silent") },
    );
    const created = await rd.districts.create({ slug: "lincoln", name, allowIps: [] }, "test");
    password = created.password;
    username = created.district.sftpUsername;
    fingerprints = (await rd.hostKeys()).flatMap((k) => [k.sha256, k.md5]);
    assert.equal(fingerprints.length, 6);
  });

  after(async () => {
    await rd.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("gives every spec column's PowerSchool field, in order, for Data Export Manager and for AutoSend (HTML)", async () => {
    const html = (await rd.guides.render("lincoln", "html")).body.toString("utf8");
    const dem = between(html, '<section id="dem">', '<section id="autosend">');
    const autoSend = between(html, '<section id="autosend">', '<section id="schedule">');
    for (const file of powerSchoolFiles()) {
      const fields = file.export.fields.flatMap((f) => ("dem" in f ? [f] : []));
      assert.ok(fields.length > 0);
      const demTemplate = between(dem, `<section id="dem-${file.stem}"`, "</section>");
      inOrder(demTemplate, [file.export.fileNames.dem, ...fields.map((f) => `<code>${escapeHtml(f.dem)}</code>`)], `Data Export Manager ${file.stem}`);
      const autoSendTemplate = between(autoSend, `<section id="autosend-${file.stem}"`, "</section>");
      const autoSendName = file.export.fileNames.autoSend ?? file.export.fileNames.dem;
      inOrder(autoSendTemplate, [autoSendName, ...fields.map((f) => `<code>${escapeHtml(f.autoSend ?? f.dem)}</code>`)], `AutoSend ${file.stem}`);
      if (file.export.autoSendData !== null) assert.ok(autoSendTemplate.includes(file.export.autoSendData), `${file.stem}: AutoSend's Data to Send`);
      else assert.match(autoSendTemplate, /Data Export Manager/, `${file.stem}: AutoSend has no such data`);
    }
  });

  it("gives the same fields in Markdown", async () => {
    const md = (await rd.guides.render("lincoln", "md")).body.toString("utf8");
    const dem = between(md, "### 3a.", "### 3b.");
    const autoSend = between(md, "### 3b.", "## 4.");
    for (const file of powerSchoolFiles()) {
      const fields = file.export.fields.flatMap((f) => ("dem" in f ? [f] : []));
      inOrder(between(`${dem}\n#### `, `#### ${file.export.fileNames.dem}`, "\n#### "), fields.map((f) => `\`${f.dem}\``), `Data Export Manager ${file.stem}`);
      const autoSendName = file.export.fileNames.autoSend ?? file.export.fileNames.dem;
      inOrder(between(`${autoSend}\n#### `, `#### ${autoSendName}`, "\n#### "), fields.map((f) => `\`${f.autoSend ?? f.dem}\``), `AutoSend ${file.stem}`);
    }
  });

  it("shows the district's host, port, username, every fingerprint and quiet period, never its password, and escapes its name", async () => {
    for (const format of ["html", "md"] as const) {
      const text = (await rd.guides.render("lincoln", format)).body.toString("utf8");
      assert.ok(text.includes("sftp.example.org"), format);
      assert.ok(text.includes("2022"), format);
      assert.ok(text.includes(`${format === "html" ? "<code>" : "`"}${username}${format === "html" ? "</code>" : "`"}`), format);
      for (const fingerprint of fingerprints) assert.ok(text.includes(fingerprint), `${format}: ${fingerprint}`);
      assert.ok(text.includes("7 minutes"), `${format}: the quiet period`);
      const path = "System > System Settings > Plugin Management Configuration > Remote Connection Manager";
      assert.ok(text.includes(format === "html" ? escapeHtml(path) : path.replaceAll(">", "\\>")), `${format}: where the Remote Connection Manager is`);
      for (const section of ["What Rosterdock is", "Remote Connection Manager", "Export templates", "nightly schedule", "test export", "Troubleshooting"]) {
        assert.ok(text.includes(section), `${format}: ${section}`);
      }
      for (const problem of ["Host key changed", "Authentication failed", "Wrong delimiter", "Missing column", "Dropped enrollments"]) assert.ok(text.includes(problem), `${format}: ${problem}`);
      assert.equal(text.includes(password), false, `${format} holds no password`);
      assert.equal(text.includes("<Unified>"), false, `${format}: the name is escaped`);
    }
    const html = (await rd.guides.render("lincoln", "html")).body.toString("utf8");
    assert.ok(html.includes("Lincoln &#60;Unified&#62; &#38; &#34;Sons&#34;"));
    assert.doesNotMatch(html, /<script|<link|<img|src=|@import|url\(/i, "one self-contained page");
    assert.match(html, /@page/);
    assert.match(html, /break-inside: avoid/);
    assert.match(html, /code \{[^}]*white-space: nowrap/);
  });

  it("prints a text-searchable PDF: pdftotext finds the username and every fingerprint unbroken, and no password", { skip: missingPdfTools }, async () => {
    const pdf = await rd.guides.render("lincoln", "pdf");
    assert.equal(pdf.contentType, "application/pdf");
    assert.equal(pdf.body.subarray(0, 5).toString("latin1"), "%PDF-");
    const file = join(dataDir, "guide.pdf");
    await writeFile(file, pdf.body);
    for (const mode of [[], ["-layout"]]) {
      const { stdout } = await run("pdftotext", [...mode, file, "-"], { maxBuffer: 16 * 1024 * 1024 });
      assert.ok(stdout.includes(username), `${mode.join("")}: username`);
      assert.ok(stdout.includes("sftp.example.org"));
      for (const fingerprint of fingerprints) assert.ok(stdout.includes(fingerprint), `${mode.join("")}: ${fingerprint} unbroken`);
      for (const file of powerSchoolFiles()) for (const f of file.export.fields) if ("dem" in f) assert.ok(stdout.includes(f.dem), f.dem);
      assert.equal(stdout.includes(password), false);
    }
  });

  it("fails a PDF with a clear error naming Debian's chromium package when Chromium is missing", async () => {
    const other = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_CHROMIUM_PATH: join(dataDir, "no-chromium-here") }), { logger: createLogger("silent") });
    try {
      await assert.rejects(other.guides.render("lincoln", "pdf"), (error) => {
        assert.ok(isRosterdockError(error));
        assert.equal(error.code, "ERR_CHROMIUM_MISSING");
        assert.match(error.message, /no-chromium-here/);
        assert.match(error.message, /Debian's `chromium` package/);
        return true;
      });
      // HTML and Markdown need no browser.
      assert.ok((await other.guides.render("lincoln", "html")).body.length > 0);
    } finally {
      await other.close();
    }
  });

  it("says which district is unknown", async () => {
    await assert.rejects(rd.guides.render("nowhere", "html"), (error) => isRosterdockError(error) && error.code === "ERR_DISTRICT_NOT_FOUND");
  });
});
