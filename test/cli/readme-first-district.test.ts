import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { RosterdockHome, ROOT } from "../support/rosterdock-process.ts";
import { requireTool } from "../support/sftp-client.ts";

const run = promisify(execFile);

/** The README's "First district" section, as a new operator follows it. */
describe("the README's First district section", () => {
  it("walks through create, the one-time link, then the guide, and its guide command writes the district's guide", { skip: requireTool("pdftotext", ["-v"]) ?? requireTool("/usr/bin/chromium", ["--version"]) }, async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const start = readme.indexOf("## First district\n");
    assert.ok(start >= 0, "the README has a First district section");
    const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
    const create = section.indexOf("bin/rosterdock district create lincoln");
    const link = section.indexOf("credentialsLink");
    const guide = section.indexOf("bin/rosterdock guide lincoln");
    assert.ok(create >= 0 && link > create && guide > link, "create, then the link, then the guide");
    assert.match(section, /never\s+contains the password/);
    const sendLink = section.indexOf("**Send the link**");
    const sendGuide = section.indexOf("**Send the guide**");
    assert.ok(sendLink > 0 && sendGuide > sendLink, "the steps send the link, then the guide");

    // Its commands, run as written (bin/rosterdock, options and all) against a data folder of this test's.
    const home = await RosterdockHome.create({ ROSTERDOCK_SFTP_PORT: "2222", ROSTERDOCK_PUBLIC_HOST: "sftp.example.org" });
    try {
      const commandAt = (at: number) => section.slice(at, section.indexOf("\n", at)).split("#")[0]!.trim();
      const words = (line: string) => [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!).slice(1);
      const created = await home.cli([...words(commandAt(create)), "--json"]);
      assert.equal(created.code, 0, created.stderr);
      const { sftp, credentialsLink } = JSON.parse(created.stdout);
      assert.match(credentialsLink, /\/handoff\/[A-Za-z0-9_-]{43}$/, "the one-time link the README tells the operator to send");
      const text = await home.cli(["district", "create", "roosevelt", "--name", "Roosevelt"]);
      assert.ok(text.stdout.includes("/handoff/") && text.stdout.includes("rosterdock guide roosevelt"), "text mode shows the link and the guide command");
      const args = words(commandAt(guide)).map((arg) => (arg.endsWith(".pdf") ? join(home.dataDir, arg) : arg));
      const written = await home.cli(args);
      assert.equal(written.code, 0, written.stderr);
      const { stdout } = await run("pdftotext", [join(home.dataDir, "lincoln-setup.pdf"), "-"], { maxBuffer: 16 * 1024 * 1024 });
      assert.ok(stdout.includes("PowerSchool setup for Lincoln Unified"));
      assert.ok(stdout.includes(sftp.username) && stdout.includes("sftp.example.org"));
      assert.equal(stdout.includes(sftp.password), false);
    } finally {
      await home.remove();
    }
  });
});
