import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { generateDemoData, type DemoDataResult } from "../../src/demo/generate-demo-data.ts";
import { RosterdockHome, ROOT, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, SharedSftpConnection, type SftpLogin } from "../support/sftp-client.ts";

const run = promisify(execFile);
const missing = requireTool("sftp") ?? requireTool("java", ["-version"]);
/** PowerSchool's seven templates, one file each a night, the date in the name. */
const TABLES = ["schools", "students", "teachers", "sections", "cc", "courses", "terms"];

async function workDir(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-folder-"));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

/** Names printed by `ls -1 /`. */
function listing(stdout: string): string[] {
  return stdout
    .split("\n")
    .filter((line) => line.trim() && !line.startsWith("sftp>"))
    .map((line) => line.trim().replace(/^\//, ""));
}

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

describe("the district's folder keeps only what is waiting", { skip: missing }, () => {
  it("accepts 200 nights of dated files in a row with room for only 10 files", { timeout: 600_000 }, async (t) => {
    const home = await RosterdockHome.create({ ROSTERDOCK_MAX_FILES_PER_DISTRICT: "10", ROSTERDOCK_QUIET_SECONDS: "0.1" });
    const server = await home.serve();
    try {
      const login = { ...(await home.createDistrict("nightly")), port: server.sftpPort };
      const dir = await workDir(Object.fromEntries(TABLES.map((table) => [`${table}.csv`, `ID\n1\n`])));
      const first = Date.UTC(2026, 10, 1);
      const closed = (e: any) => e.event === "delivery.closed";
      const started = Date.now();
      let deliveries: any[] = [];
      let sessionMs = 0;
      // Each night is a session of its own on one SSH connection: what is tested is the folder, not the login.
      const connection = await SharedSftpConnection.open(login);
      t.after(() => connection.close());
      for (let night = 0; night < 200; night++) {
        const stamp = new Date(first + night * 86_400_000).toISOString().slice(0, 10).replaceAll("-", "");
        const t0 = Date.now();
        const result = await connection.run(TABLES.map((table) => `put ${table}.csv ${table}_${stamp}.csv`), { cwd: dir });
        sessionMs += Date.now() - t0;
        assert.equal(result.code, 0, `night ${night + 1} (${stamp}): ${result.stderr}\n${JSON.stringify(server.logs.filter((e) => e.level >= 40 || /login|server/.test(e.event ?? "")).slice(-8))}`);
        // The next night starts once this one is closed and out of the folder. Counted in files: on a
        // loaded machine a pause longer than the tiny quiet period may split a night in two deliveries.
        const deadline = Date.now() + 20_000;
        for (;;) {
          deliveries = server.logs.filter(closed);
          if (deliveries.reduce((sum, d) => sum + d.files, 0) >= 7 * (night + 1)) break;
          if (Date.now() > deadline) throw new Error(`night ${night + 1} did not close: ${JSON.stringify(server.logs.slice(-5))}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      t.diagnostic(`200 nights in ${Date.now() - started} ms (${sessionMs} ms in sftp sessions), ${deliveries.length} deliveries`);
      assert.ok(deliveries.length >= 200);
      assert.equal(deliveries.reduce((sum, d) => sum + d.files, 0), 1400);
      assert.ok(!server.logs.some((e) => e.event === "sftp.upload.refused"));

      const uploads = await home.json(["uploads", "nightly", "--limit", "2000"]);
      assert.equal(uploads.length, 1400);
      assert.ok(uploads.every((u: { status: string }) => u.status === "accepted"));
      const ls = await runSftp(login, ["ls -1 /"], { cwd: dir });
      assert.deepEqual(listing(ls.stdout), []);
      assert.equal((await readdir(join(home.dataDir, "districts", "1", "archive"))).length, 1400);
    } finally {
      await server.stop();
      await home.remove();
    }
  });

  describe("a night's files", () => {
    let home: RosterdockHome;
    let server: ServerProcess;
    let night: DemoDataResult;
    /** The night's files, enrollments (cc) last: a night without them still applies, so only a refusal holds it. */
    let files: string[];

    before(async () => {
      home = await RosterdockHome.create({ ROSTERDOCK_QUIET_SECONDS: "1", ROSTERDOCK_MAX_FILES_PER_DISTRICT: "6" });
      night = await generateDemoData(await mkdtemp(join(tmpdir(), "rosterdock-night-")), { students: 60, teachers: 8, schools: 2, styles: ["dem"] });
      files = [...night.files.dem.filter((f) => !basename(f).startsWith("cc_")), ...night.files.dem.filter((f) => basename(f).startsWith("cc_"))];
      assert.equal(files.length, 7);
      server = await home.serve();
    });

    after(async () => {
      await server?.stop();
      await home?.remove();
    });

    async function district(slug: string): Promise<SftpLogin> {
      return { ...(await home.createDistrict(slug)), port: server.sftpPort };
    }

    async function finishedSync(slug: string): Promise<any> {
      const [sync] = await waitFor(async () => {
        const syncs = await home.json(["syncs", slug]);
        return syncs.length > 0 && !["waiting", "processing"].includes(syncs[0].status) && syncs;
      }, 60_000, `a finished sync of ${slug}`);
      return home.json(["sync", "show", String(sync.id)]);
    }

    it("leave the folder once their delivery is closed, stay in the archive, and are what the sync read", async () => {
      const login = await district("lincoln");
      const six = files.slice(0, 6);
      const dir = join(six[0]!, "..");
      // A folder of the district's own stays, whatever happens to the uploads.
      const sent = await runSftp(login, ["mkdir keep", ...six.map((f) => `put ${basename(f)}`), "ls -1 /"], { cwd: dir });
      assert.equal(sent.code, 0, sent.stderr);
      assert.deepEqual(listing(sent.stdout).sort(), ["keep", ...six.map((f) => basename(f))].sort());

      const sync = await finishedSync("lincoln");
      assert.equal(sync.status, "applied", JSON.stringify(sync.summary));
      assert.ok(sync.counts.users.created > 0);
      assert.deepEqual(sync.files.map((f: { name: string }) => f.name).sort(), six.map((f) => basename(f)).sort());

      const after = await runSftp(login, ["ls -1 /"], { cwd: dir });
      assert.equal(after.code, 0, after.stderr);
      assert.deepEqual(listing(after.stdout), ["keep"]);
      const archive = join(home.dataDir, "districts", "1", "archive");
      const archived = await Promise.all((await readdir(archive)).map((name) => sha256(join(archive, name))));
      for (const file of six) assert.ok(archived.includes(await sha256(file)), `${basename(file)} is kept in the archive`);
      const closed = await server.waitForLog((e) => e.event === "delivery.closed" && e.syncId === sync.id);
      assert.equal(closed.removedFromView, 6);
    });

    it("refuses an upload the folder has no room for, tells the client why, records it and holds the night", async () => {
      const login = await district("jefferson");
      const dir = join(files[0]!, "..");
      const names = files.map((f) => basename(f));
      const refusedName = names[6]!;
      // `-put`: the batch goes on after a refused upload, as PowerSchool's next template does.
      const sent = await runSftp(login, [...names.slice(0, 6).map((n) => `put ${n}`), `-put ${refusedName}`, "ls -1 /"], { cwd: dir });
      const reason = "Quota exceeded: the folder already holds 6 files waiting to be processed. Received files leave it on their own once their delivery is closed; remove any others placed there.";
      // OpenSSH's sftp shows only "Failure" for the status; the reason reaches its user on stderr.
      assert.ok(sent.stderr.includes(`Rosterdock: ${refusedName} refused: ${reason}`), sent.stderr);
      assert.match(sent.stderr, new RegExp(`dest open "/${refusedName}": Failure`));
      assert.deepEqual(listing(sent.stdout).sort(), names.slice(0, 6).sort());

      const logged = await server.waitForLog((e) => e.event === "sftp.upload.refused" && e.district === "jefferson");
      assert.equal(logged.file, refusedName);
      assert.equal(logged.reason, reason);
      assert.equal(logged.code, "ERR_TOO_MANY_FILES");

      const uploads = await home.json(["uploads", "jefferson"]);
      const refused = uploads.find((u: { status: string }) => u.status === "refused");
      assert.deepEqual([refused.path, refused.reason], [`/${refusedName}`, reason]);
      assert.equal(refused.deliveryId, uploads.find((u: { status: string }) => u.status === "accepted").deliveryId);
      const text = await home.cli(["uploads", "jefferson"]);
      assert.match(text.stdout, /refused .*Quota exceeded/);

      const sync = await finishedSync("jefferson");
      assert.equal(sync.status, "held", JSON.stringify(sync.summary));
      assert.deepEqual(sync.summary.holdReasons.map((r: { code: string; file: string }) => [r.code, r.file]), [["REFUSED_UPLOAD", refusedName]]);
      assert.ok(sync.summary.holdReasons[0].message.includes(reason));
      const shown = await home.cli(["sync", "show", String(sync.id)]);
      assert.match(shown.stdout, new RegExp(`Held: ${refusedName} was sent with this delivery but refused: Quota exceeded`));
      // The held night's files leave the folder too: the next night has room.
      const ls = await runSftp(login, ["ls -1 /"], { cwd: dir });
      assert.deepEqual(listing(ls.stdout), []);
    });

    it("fails a night of which every file was refused, naming them (a template sending to a folder that does not exist)", async () => {
      const login = await district("monroe");
      const dir = join(files[0]!, "..");
      const name = basename(files[0]!);
      const sent = await runSftp(login, [`put ${name} /outgoing/${name}`], { cwd: dir });
      assert.notEqual(sent.code, 0);
      assert.ok(sent.stderr.includes(`Rosterdock: ${name} refused: The folder /outgoing does not exist: create it, or send the file to /.`), sent.stderr);
      const [upload] = await home.json(["uploads", "monroe"]);
      assert.deepEqual([upload.path, upload.status], [`/outgoing/${name}`, "refused"]);
      const sync = await finishedSync("monroe");
      assert.equal(sync.status, "failed");
      assert.deepEqual(sync.files, []);
      assert.match(sync.summary.error, new RegExp(`Refused at upload, so missing from this delivery: outgoing/${name}\\.`));
    });

    it("gives a Java client (PowerSchool's kind) the reason as the status message, and its session goes on", async () => {
      const login = await district("madison");
      const dir = await workDir({ "teachers.csv": "ID,First_Name\n1,Ana\n" });
      const targets = Array.from({ length: 7 }, (_, i) => `teachers_${i + 1}.csv`);
      const { stdout } = await run(
        "java",
        ["-cp", "/usr/share/java/jsch.jar", join(ROOT, "test/fixtures/jsch/JschUpload.java"), "127.0.0.1", String(server.sftpPort), "madison", login.password, join(dir, "teachers.csv"), ...targets],
        { timeout: 60_000 },
      );
      assert.match(stdout, /refused teachers_7\.csv \(4\): Quota exceeded: the folder already holds 6 files waiting to be processed\./);
      assert.match(stdout, /ls teachers_6\.csv/);
      const logged = await server.waitForLog((e) => e.event === "sftp.upload.refused" && e.district === "madison");
      assert.equal(logged.path, "/teachers_7.csv");
    });
  });
});
