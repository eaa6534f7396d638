import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { RosterdockHome } from "../support/rosterdock-process.ts";

/** OWASP's CSV injection payloads, and terminal escapes: what a district's file may carry. */
const FORMULAS = ["=1+1", "+1+1", "-1+1+cmd|' -C notepad'!A0", "@SUM(1+1)", "\t=1+1", "\r=1+1", "=HYPERLINK(\"http://x.example\",\"y\")"];
const FORGED_NAME = "students_\u001b[31mred\r\n\u202eforged line.csv";

describe("output a district can reach", () => {
  it("keeps formulas inert in the issues CSV and control characters out of the terminal", async () => {
    const home = await RosterdockHome.create();
    try {
      await home.createDistrict("lincoln");
      const dir = join(home.dataDir, "night");
      await mkdir(dir);
      const rows = ["district_user_id,first_name,last_name,email,grade"];
      // Every payload in a value the validator reports (an email that is not one, a grade that is not one).
      FORMULAS.forEach((payload, i) => rows.push(`${1000 + i},Ana,Lee,"${payload.replaceAll('"', '""')}",`));
      FORMULAS.forEach((payload, i) => rows.push(`${2000 + i},Ben,Ray,,"${payload.replaceAll('"', '""')}"`));
      for (let i = 0; i < 200; i++) rows.push(`${3000 + i},Cy,Good,,5`);
      await writeFile(join(dir, FORGED_NAME), `${rows.join("\r\n")}\r\n`);
      const ingest = await home.cli(["ingest", "lincoln", dir, "--json"]);
      const sync = JSON.parse(ingest.stdout) as { id: number };

      const csv = await home.cli(["sync", "issues", String(sync.id), "--csv"]);
      assert.equal(csv.code, 0, csv.stderr);
      const values = csv.stdout.split("\r\n").slice(1).filter(Boolean);
      assert.ok(values.length >= FORMULAS.length * 2, csv.stdout);
      // No cell of any line begins with a formula character: every such cell starts with an apostrophe.
      for (const line of values) {
        for (const cell of line.match(/("([^"]|"")*"|[^,]*)(,|$)/g) ?? []) {
          const text = cell.replace(/,$/, "").replace(/^"|"$/g, "").replaceAll('""', '"');
          assert.doesNotMatch(text, /^[=+\-@\t\r]/, `cell ${JSON.stringify(text)} of ${JSON.stringify(line)}`);
        }
      }
      // Values arrive trimmed (a tab or CR around a value is not part of it), then prefixed.
      for (const payload of FORMULAS) assert.ok(csv.stdout.includes(`'${payload.trim().replaceAll('"', '""')}`), payload);

      for (const args of [["syncs", "lincoln"], ["sync", "show", String(sync.id)], ["sync", "issues", String(sync.id)], ["ingest", "lincoln", dir]]) {
        const text = await home.cli(args);
        assert.equal(text.stderr.includes("unexpected error"), false, text.stderr);
        assert.doesNotMatch(text.stdout, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e]/, `${args.join(" ")}: ${JSON.stringify(text.stdout.slice(0, 400))}`);
        assert.ok(!text.stdout.split("\n").some((l) => l.startsWith("forged")), `${args.join(" ")} printed a forged line`);
      }
    } finally {
      await home.remove();
    }
  });
});
