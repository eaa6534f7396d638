import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { RosterdockHome, ROOT, waitFor } from "../support/rosterdock-process.ts";
import { requireTool } from "../support/sftp-client.ts";

/** The README's scripted upload, run as a new user would copy it (host and port made this test's). */
describe("the README's sftp -b example", () => {
  it("puts -o BatchMode=no before -b, and uploads with a password", { skip: requireTool("sftp") }, async () => {
    const readme = await readFile(join(ROOT, "README.md"), "utf8");
    const examples = readme.split("\n").filter((line) => /^sftp .*\s-b\s/.test(line));
    assert.ok(examples.length > 0, "the README shows a scripted sftp upload");
    for (const line of examples) assert.ok(/-o BatchMode=no .*-b /.test(line), `-b implies BatchMode, which refuses passwords: ${line}`);

    const home = await RosterdockHome.create();
    const server = await home.serve();
    const dir = await mkdtemp(join(tmpdir(), "rosterdock-readme-"));
    try {
      const { password } = await home.createDistrict("lincoln");
      await writeFile(join(dir, "students.csv"), "Student_Number,First_Name,Last_Name,SchoolID,Grade_Level\n1001,Zoë,Núñez,101,5\n");
      const askpass = join(dir, "askpass.sh");
      await writeFile(askpass, `#!/bin/sh\nprintf '%s\\n' '${password}'\n`);
      await chmod(askpass, 0o700);
      // The README's own lines: the batch file, then sftp, pointed at this test's server.
      const batchLine = readme.split("\n").find((line) => line.startsWith("printf ") && line.includes("> batch.txt"))!;
      const batch = /^printf '([^']*)' > batch\.txt$/.exec(batchLine)![1]!.replace(/\\n/g, "\n");
      await writeFile(join(dir, "batch.txt"), batch);
      const args = examples[0]!.split(/\s+/).slice(1).map((arg) => (arg === "2222" ? String(server.sftpPort) : arg.replace(/@localhost$/, "@127.0.0.1")));
      const hostKeyOptions = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"];
      const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn("sftp", [...hostKeyOptions, ...args], {
          cwd: dir,
          env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: "rosterdock-test" },
          stdio: ["ignore", "pipe", "pipe"],
          detached: true,
        });
        let stderr = "";
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stderr });
        });
      });
      assert.equal(run.code, 0, run.stderr);
      const uploads = await waitFor(async () => {
        const listed = await home.json(["uploads", "lincoln"]);
        return listed.length > 0 ? listed : undefined;
      });
      assert.equal(uploads[0].path, "/students.csv");
      assert.equal(uploads[0].status, "accepted");
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
      await home.remove();
    }
  });
});
