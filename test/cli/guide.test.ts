import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { RosterdockHome } from "../support/rosterdock-process.ts";
import { requireTool } from "../support/sftp-client.ts";

const run = promisify(execFile);
const missingPdfTools = requireTool("pdftotext", ["-v"]) ?? requireTool("/usr/bin/chromium", ["--version"]);

describe("rosterdock guide", () => {
  it("writes the district's guide as HTML, Markdown and PDF, with its connection and fingerprints and without its password", { skip: missingPdfTools }, async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_SFTP_PORT: "2222", ROSTERDOCK_PUBLIC_HOST: "sftp.example.org" });
    try {
      const created = await home.json(["district", "create", "lincoln", "--name", "Lincoln Unified"]);
      const fingerprints: string[] = created.hostKeys.flatMap((k: { sha256: string; md5: string }) => [k.sha256, k.md5]);

      const html = await home.cli(["guide", "lincoln"]);
      assert.equal(html.code, 0, html.stderr);
      assert.match(html.stdout, /^<!DOCTYPE html>/);
      const md = await home.cli(["guide", "lincoln", "--format", "md"]);
      assert.equal(md.code, 0, md.stderr);
      assert.match(md.stdout, /^# PowerSchool setup for Lincoln Unified/);
      for (const text of [html.stdout, md.stdout]) {
        assert.ok(text.includes("sftp.example.org") && text.includes("2222") && text.includes(created.sftp.username));
        for (const fingerprint of fingerprints) assert.ok(text.includes(fingerprint), fingerprint);
        assert.equal(text.includes(created.sftp.password), false);
      }

      const pdfFile = join(home.dataDir, "lincoln-guide.pdf");
      const written = await home.json(["guide", "lincoln", "--format", "pdf", "--out", pdfFile]);
      assert.deepEqual({ ...written, bytes: undefined }, { slug: "lincoln", format: "pdf", file: pdfFile, bytes: undefined });
      const pdf = await readFile(pdfFile);
      assert.equal(written.bytes, pdf.length);
      assert.equal(pdf.subarray(0, 5).toString("latin1"), "%PDF-");
      const { stdout } = await run("pdftotext", [pdfFile, "-"], { maxBuffer: 16 * 1024 * 1024 });
      assert.ok(stdout.includes(created.sftp.username));
      for (const fingerprint of fingerprints) assert.ok(stdout.includes(fingerprint), `${fingerprint} unbroken in the PDF`);
      assert.equal(stdout.includes(created.sftp.password), false);

      const text = await home.cli(["guide", "lincoln", "--format", "html", "--out", join(home.dataDir, "g.html")]);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /Wrote lincoln's setup guide \(html, \d+ bytes\)/);
      assert.match(await readFile(join(home.dataDir, "g.html"), "utf8"), /^<!DOCTYPE html>/);
    } finally {
      await home.remove();
    }
  });

  it("needs --out for a PDF, a known format and a known district, and names the chromium package when Chromium is missing", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_CHROMIUM_PATH: "/nonexistent/chromium" });
    try {
      await home.json(["district", "create", "lincoln", "--name", "Lincoln Unified"]);
      const noOut = await home.cli(["guide", "lincoln", "--format", "pdf"]);
      assert.equal(noOut.code, 2);
      assert.match(noOut.stderr, /needs --out FILE/);
      const format = await home.cli(["guide", "lincoln", "--format", "docx"]);
      assert.equal(format.code, 2);
      assert.match(format.stderr, /--format must be one of html, pdf, md/);
      const unknown = await home.cli(["guide", "nowhere"]);
      assert.equal(unknown.code, 3);
      const missing = await home.cli(["guide", "lincoln", "--format", "pdf", "--out", join(home.dataDir, "g.pdf")]);
      assert.equal(missing.code, 7);
      assert.match(missing.stderr, /there is none at \/nonexistent\/chromium: install Debian's `chromium` package/);
      assert.match(missing.stderr, /ERR_CHROMIUM_MISSING/);
      assert.equal(missing.stdout, "");
    } finally {
      await home.remove();
    }
  });
});
