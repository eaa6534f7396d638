import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import Database from "better-sqlite3";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import { RosterdockHome, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";

const missing = requireTool("sftp");

async function workDir(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-limits-"));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

/** Names printed by `ls -1`. */
function listing(stdout: string): string[] {
  return stdout
    .split("\n")
    .filter((line) => line.trim() && !line.startsWith("sftp>"))
    .map((line) => line.trim().replace(/^\//, ""));
}

// The two servers below have nothing in common: they run side by side to keep the test short.
describe("limits", { skip: missing, concurrency: true }, () => {
  describe("limits on a district's space", () => {
    let home: RosterdockHome;
    let server: ServerProcess;
    let lincoln: SftpLogin;
    let jefferson: SftpLogin;

    before(async () => {
      home = await RosterdockHome.create({
        ROSTERDOCK_MAX_FOLDERS_PER_DISTRICT: "4",
        ROSTERDOCK_MAX_FOLDER_DEPTH: "2",
        ROSTERDOCK_ARCHIVE_QUOTA_BYTES: "3000",
      });
      const a = await home.createDistrict("lincoln");
      const b = await home.createDistrict("jefferson");
      server = await home.serve();
      lincoln = { ...a, port: server.sftpPort };
      jefferson = { ...b, port: server.sftpPort };
    });

    after(async () => {
      await server?.stop();
      await home?.remove();
    });

    it("refuses a folder too many, one too deep and names too long, saying why, and the session goes on", async () => {
      const dir = await workDir({ "x.csv": "ID\n1\n" });
      const longName = `${"n".repeat(300)}.csv`;
      // Every name fits, the whole does not; OpenSSH's sftp reads batch lines of up to 2047 characters.
      const longPath = `/${["p", "q", "r", "s", "t"].map((c) => c.repeat(250)).join("/")}/x.csv`;
      // `-`: the batch goes on after a refusal, as a district's script would.
      const sent = await runSftp(
        lincoln,
        ["mkdir a", "mkdir a/deep", "-mkdir a/deep/deeper", "mkdir b", "mkdir c", "-mkdir d", `-put x.csv ${longName}`, `-put x.csv ${longPath}`, "put x.csv a/deep/x.csv", "ls -1 a/deep", "ls -1 /"],
        { cwd: dir },
      );
      assert.equal(sent.code, 0, sent.stderr);
      // OpenSSH's sftp shows only "Failure" for a refused request; the reason reaches its user on stderr.
      const told = (line: string) => assert.ok(sent.stderr.includes(`Rosterdock: ${line}`), `${line}\nnot in:\n${sent.stderr}`);
      told(`mkdir /a/deep/deeper refused: Too deep: "/a/deep/deeper" would be 3 folders deep; folders may be at most 2 deep.`);
      told("mkdir /d refused: Quota exceeded: the district's space already holds 4 folders, the most allowed; remove folders it no longer needs.");
      told(`${"n".repeat(80)}… refused: Name too long: "${"n".repeat(60)}…" (304 characters) is 304 bytes; a file or folder name may be at most 255 bytes.`);
      told(`x.csv refused: Name too long: the path "/${"p".repeat(59)}…" (${longPath.length} characters) is ${longPath.length} bytes; a path may be at most 1024 bytes.`);
      const [deep, top] = sent.stdout.split("sftp> ls -1 /");
      assert.deepEqual(listing(deep!.split("sftp> ls -1 a/deep")[1]!), ["a/deep/x.csv"]);
      assert.deepEqual(listing(top!).sort(), ["a", "b", "c"]);

      const refusals = server.logs.filter((e) => e.event === "sftp.request.refused" && e.district === "lincoln");
      assert.deepEqual(refusals.map((e) => [e.op, e.path, e.code]), [
        ["mkdir", "/a/deep/deeper", "ERR_FOLDER_TOO_DEEP"],
        ["mkdir", "/d", "ERR_TOO_MANY_FOLDERS"],
      ]);
      const uploads = await home.json(["uploads", "lincoln"]);
      const refused = uploads.filter((u: { status: string }) => u.status === "refused");
      assert.equal(refused.length, 2, JSON.stringify(uploads));
      for (const upload of refused) {
        assert.match(upload.reason, /^Name too long: /);
        assert.ok(upload.path.length < 250, `recorded shortened: ${upload.path}`);
      }
      const logged = server.logs.filter((e) => e.event === "sftp.upload.refused" && e.district === "lincoln");
      assert.deepEqual(logged.map((e) => [e.level, e.code]), [[40, "ERR_NAME_TOO_LONG"], [40, "ERR_NAME_TOO_LONG"]]);
      // A refused name is a warning with its reason, not an error with a stack.
      assert.deepEqual(server.logs.filter((e) => e.level >= 50 || e.err), []);
      assert.ok(logged.every((e) => JSON.stringify(e).length < 1500), JSON.stringify(logged));
    });

    it("refuses uploads once the district's archive is full, flags the district, and the session goes on", async () => {
      const dir = await workDir({ "a.csv": randomBytes(2000), "b.csv": randomBytes(3000), "c.csv": randomBytes(1000), "d.csv": "ID\n1\n" });
      const sent = await runSftp(jefferson, ["put a.csv", "-put b.csv", "put c.csv", "-put d.csv", "ls -1 /"], { cwd: dir });
      assert.equal(sent.code, 0, sent.stderr);
      // b.csv would take the archive past its quota (refused as it arrives); after c.csv the archive is full.
      assert.ok(
        sent.stderr.includes("Rosterdock: b.csv refused: Quota exceeded: the district's archive holds 2.0 KiB of its 2.9 KiB quota, and this file (2.9 KiB so far) would take it past; an operator must prune old nights before more files can be received."),
        sent.stderr,
      );
      assert.ok(sent.stderr.includes("Rosterdock: d.csv refused: Quota exceeded: the district's archive holds 2.9 KiB of its 2.9 KiB quota; an operator must prune old nights before more files can be received."), sent.stderr);
      assert.deepEqual(listing(sent.stdout).sort(), ["a.csv", "c.csv"]);

      const uploads = await home.json(["uploads", "jefferson"]);
      assert.deepEqual(uploads.map((u: { path: string; status: string }) => [u.path, u.status]).reverse(), [
        ["/a.csv", "accepted"],
        ["/b.csv", "refused"],
        ["/c.csv", "accepted"],
        ["/d.csv", "refused"],
      ]);
      const flagged = await server.waitForLog((e) => e.event === "storage.archive.full" && e.district === "jefferson");
      assert.deepEqual([flagged.usedBytes, flagged.quotaBytes], [3000, 3000]);
      assert.equal(server.logs.find((e) => e.event === "sftp.upload.refused" && e.path === "/d.csv")?.code, "ERR_ARCHIVE_FULL");

      const shown = await home.json(["district", "show", "jefferson"]);
      assert.equal(shown.archiveFull, true);
      assert.deepEqual(shown.archive, { usedBytes: 3000, quotaBytes: 3000, full: true });
      assert.match((await home.cli(["district", "show", "jefferson"])).stdout, /Archive +2\.9 KiB of its 2\.9 KiB quota — FULL: its uploads are refused until an operator prunes old nights/);
    });
  });

  describe("an upload cut off by a crash of the server", () => {
    it("is recorded as partial at the next start, and its night is held", { timeout: 120_000 }, async (t) => {
      const t0 = Date.now();
      const mark = (what: string) => t.diagnostic(`${what} at ${Date.now() - t0} ms`);
      const home = await RosterdockHome.create();
      try {
        const created = await home.createDistrict("adams");
        const night = await generateDemoData(await mkdtemp(join(tmpdir(), "rosterdock-cut-")), { students: 60, teachers: 8, schools: 2, styles: ["dem"] });
        const cc = night.files.dem.find((f) => basename(f).startsWith("cc_"))!;
        const others = night.files.dem.filter((f) => f !== cc);
        // The enrollments file of the night, big enough to be still on its way when the server dies.
        await writeFile(join(dirname(cc), basename(cc)), randomBytes(3 * 1024 * 1024));
        // A quiet period longer than the test: the delivery is still open when the server dies.
        mark("night written");
        const server = await home.serve({ ROSTERDOCK_QUIET_SECONDS: "600" });
        mark("server started");
        const incoming = join(home.dataDir, "districts", "1", "incoming");
        const transfer = runSftp({ ...created, port: server.sftpPort }, [...others.map((f) => `put ${basename(f)}`), `put ${basename(cc)}`], {
          cwd: dirname(cc),
          extra: ["-l", "2000"], // Kbit/s: about 12 s for the enrollments file
        });
        await waitFor(async () => {
          // The night's other files are in; the enrollments file is the one being written.
          if (server.logs.filter((e) => e.event === "sftp.upload.closed").length < others.length) return false;
          for (const name of await readdir(incoming).catch(() => [] as string[])) {
            if (name.endsWith(".part") && (await stat(join(incoming, name)).catch(() => undefined))?.size) return true;
          }
          return false;
        }, 30_000, "the enrollments file to be on its way");
        mark("transfer under way");
        await server.kill();
        await transfer;
        mark("client ended");
        const db = new Database(join(home.dataDir, "rosterdock.sqlite"), { readonly: true });
        const statuses = db.prepare("select status from uploads order by id").all();
        db.close();
        assert.deepEqual(statuses, others.map(() => ({ status: "accepted" })), "nothing of the cut upload is recorded before the restart");

        const restarted = await home.serve({ ROSTERDOCK_QUIET_SECONDS: "1" });
        mark("restarted");
        try {
          const uploads = await home.json(["uploads", "adams"]);
          const partial = uploads.find((u: { status: string }) => u.status === "partial");
          assert.ok(partial, JSON.stringify(uploads));
          assert.equal(partial.path, `/${basename(cc)}`);
          assert.ok(partial.size > 0 && partial.size < 3 * 1024 * 1024, String(partial.size));
          assert.equal(partial.reason, "The server stopped during the transfer: the file was cut off and must be sent again.");
          assert.equal(partial.deliveryId, uploads.find((u: { status: string }) => u.status === "accepted").deliveryId);
          assert.equal(partial.clientIp, "127.0.0.1");
          assert.deepEqual(await readdir(incoming), []);

          const done = await restarted.waitForLog((e) => ["sync.held", "sync.applied", "sync.failed"].includes(e.event), 60_000);
          mark("sync done");
          const shown = await home.json(["sync", "show", String(done.syncId)]);
          assert.equal(shown.status, "held", JSON.stringify(shown.summary));
          assert.deepEqual(shown.summary.holdReasons.map((r: { code: string; file: string }) => [r.code, r.file]), [["PARTIAL_UPLOAD", basename(cc)]]);
          assert.match((await home.cli(["sync", "show", String(done.syncId)])).stdout, new RegExp(`Held: ${basename(cc)} was sent with this delivery but cut off during its transfer: The server stopped`));
        } finally {
          await restarted.stop();
        }
      } finally {
        await home.remove();
      }
    });
  });
});
