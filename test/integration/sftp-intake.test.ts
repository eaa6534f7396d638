import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import yazl from "yazl";
import { createWriteStream } from "node:fs";
import { RosterdockHome, ROOT, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";
import { offeredOnTheWire } from "../support/ssh-offer.ts";
import { sshAlgorithms } from "../../src/sftp/ssh-algorithms.ts";

const run = promisify(execFile);
const missing = requireTool("sftp") ?? requireTool("java", ["-version"]) ?? requireTool("ssh-keyscan", ["-h"]);

async function workDir(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-files-"));
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

describe("SFTP intake", { skip: missing }, () => {
  let home: RosterdockHome;
  let server: ServerProcess;
  let lincoln: SftpLogin;
  let jefferson: SftpLogin;

  before(async () => {
    home = await RosterdockHome.create();
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

  it("accepts the password method from OpenSSH's sftp and stores the upload whole", async () => {
    const content = randomBytes(3 * 1024 * 1024 + 17);
    const dir = await workDir({ "students.csv": content });
    // Read back in the same session: once its delivery closes, the file leaves the folder.
    const result = await runSftp(lincoln, ["put students.csv", "ls -l", "get students.csv copy.csv"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /students\.csv/);
    assert.deepEqual(await readFile(join(dir, "copy.csv")), content);
    const uploads = await home.json(["uploads", "lincoln"]);
    assert.equal(uploads[0].status, "accepted");
    assert.equal(uploads[0].path, "/students.csv");
    assert.equal(uploads[0].size, content.length);
    assert.equal(uploads[0].sha256, createHash("sha256").update(content).digest("hex"));
  });

  it("refuses a wrong password and logs why without the password", async () => {
    const result = await runSftp({ ...lincoln, password: "not-the-password-at-all" }, ["ls"]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /Permission denied/);
    const failure = await server.waitForLog((e) => e.event === "sftp.login.failed" && e.username === "lincoln");
    assert.equal(failure.reason, "bad_password");
    assert.ok(!server.logs.some((e) => JSON.stringify(e).includes("not-the-password-at-all")));
  });

  it("refuses an unknown user", async () => {
    const result = await runSftp({ ...lincoln, username: "nobody" }, ["ls"]);
    assert.notEqual(result.code, 0);
    assert.equal((await server.waitForLog((e) => e.event === "sftp.login.failed" && e.username === "nobody")).reason, "unknown_user");
  });

  it("keeps each district in its own space, whatever path the client names", async () => {
    const dir = await workDir({ "secret.csv": "id\n1\n" });
    assert.equal((await runSftp(lincoln, ["put secret.csv"], { cwd: dir })).code, 0);

    const listing = await runSftp(jefferson, ["ls -la /", "ls -la ..", "ls -la ../..", "ls -la /../../.."], { cwd: dir });
    assert.equal(listing.code, 0, listing.stderr);
    assert.doesNotMatch(listing.stdout, /secret\.csv|students\.csv|lincoln|districts|archive/);

    for (const path of ["/secret.csv", "../secret.csv", "../../1/home/secret.csv", "../../../districts/1/home/secret.csv", "/etc/passwd", "../../../../../../etc/passwd"]) {
      const get = await runSftp(jefferson, [`get ${path} stolen`], { cwd: dir });
      assert.notEqual(get.code, 0, `${path} must not be readable`);
    }
    // `..` at the top is the top itself: an upload there lands in the district's own space.
    const escape = await runSftp(jefferson, ["put secret.csv ../../escaped.csv", "put secret.csv /tmp/x.csv", "ls /"], { cwd: dir });
    assert.match(escape.stdout, /escaped\.csv/);
    const uploads = await home.json(["uploads", "jefferson"]);
    const accepted = uploads.filter((u: { status: string }) => u.status === "accepted");
    assert.ok(accepted.length > 0 && accepted.every((u: { path: string }) => u.path === "/escaped.csv"), JSON.stringify(uploads));
    // /tmp is a folder of the district's own space, which has none: refused, and recorded as such.
    const refused = uploads.filter((u: { status: string }) => u.status === "refused");
    assert.deepEqual(refused.map((u: { path: string; reason: string }) => [u.path, u.reason]), [["/tmp/x.csv", "The folder /tmp does not exist: create it, or send the file to /."]]);
    const lincolnFiles = await readdir(join(home.dataDir, "districts"));
    assert.deepEqual(lincolnFiles.sort(), ["1", "2"]);
  });

  it("supports folders, rename and remove inside the space", async () => {
    const dir = await workDir({ "a.csv": "x\n" });
    await utimes(join(dir, "a.csv"), new Date("2026-01-02T03:04:05Z"), new Date("2026-01-02T03:04:05Z"));
    const result = await runSftp(jefferson, ["mkdir in", "put -p a.csv in/a.csv", "rename in/a.csv in/b.csv", "ls in", "rm in/b.csv", "rmdir in", "ls /"], { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /in\/b\.csv/);
    const lastListing = result.stdout.split("sftp> ls /")[1] ?? "";
    assert.doesNotMatch(lastListing, /\bin\b/);
    // `put -p` sets the file's times (SETSTAT); they survive the upload's rename into view.
    const kept = await runSftp(jefferson, ["put -p a.csv kept.csv", "ls -l kept.csv"], { cwd: dir });
    assert.match(kept.stdout, /Jan  2 {2}2026 kept\.csv|Jan  2 03:04 kept\.csv/);
  });

  it("lets JSch 0.1.55 (an old Java client like PowerSchool's) log in with a password and upload", async () => {
    const dir = await workDir({ "teachers.csv": "ID,First_Name\n1,Ana\n" });
    const { stdout } = await run(
      "java",
      ["-cp", "/usr/share/java/jsch.jar", join(ROOT, "test/fixtures/jsch/JschUpload.java"), "127.0.0.1", String(server.sftpPort), "lincoln", lincoln.password, join(dir, "teachers.csv"), "teachers_java.csv"],
      { timeout: 60_000 },
    );
    assert.match(stdout, /uploaded teachers_java\.csv/);
    assert.match(stdout, /ls teachers_java\.csv/);
    const uploads = await home.json(["uploads", "lincoln"]);
    const upload = uploads.find((u: { path: string }) => u.path === "/teachers_java.csv");
    assert.equal(upload?.status, "accepted");
    assert.match(upload.clientVersion, /JSCH/i);
  });

  it("refuses logins from addresses outside a district's allow-list, and from disabled districts", async () => {
    // Neither refusal counts as a guess, so this server's other districts are not affected.
    const fenced = await home.createDistrict("fenced", ["--allow-ip", "192.0.2.0/24"]);
    const open = await home.createDistrict("open");
    assert.notEqual((await runSftp({ ...fenced, port: server.sftpPort }, ["ls"])).code, 0);
    assert.equal((await server.waitForLog((e) => e.event === "sftp.login.failed" && e.username === "fenced")).reason, "address_not_allowed");
    assert.equal((await runSftp({ ...open, port: server.sftpPort }, ["ls"])).code, 0);
    await home.json(["district", "disable", "open"]);
    assert.notEqual((await runSftp({ ...open, port: server.sftpPort }, ["ls"])).code, 0);
    const rotated = await home.json(["district", "rotate-password", "fenced"]);
    assert.notEqual(rotated.sftp.password, fenced.password);
  });
});

describe("deliveries", { skip: missing }, () => {
  let home: RosterdockHome;
  let server: ServerProcess;
  let login: SftpLogin;

  before(async () => {
    home = await RosterdockHome.create({ ROSTERDOCK_QUIET_SECONDS: "2" });
    const created = await home.createDistrict("madison");
    server = await home.serve();
    login = { ...created, port: server.sftpPort };
  });

  after(async () => {
    await server?.stop();
    await home?.remove();
  });

  it("groups six files uploaded in one session into one delivery after the quiet period", async () => {
    const names = ["schools.csv", "students.csv", "teachers.csv", "sections.csv", "cc.csv", "courses.csv"];
    const dir = await workDir(Object.fromEntries(names.map((n) => [n, `${n}\n1\n`])));
    const result = await runSftp(login, names.map((n) => `put ${n}`), { cwd: dir });
    assert.equal(result.code, 0, result.stderr);
    const syncs = await waitFor(async () => {
      const list = await home.json(["syncs", "madison"]);
      return list.length > 0 && list;
    });
    assert.equal(syncs.length, 1);
    assert.deepEqual(syncs[0].files.map((f: { name: string }) => f.name).sort(), [...names].sort());
    for (const file of syncs[0].files) assert.match(file.sha256, /^[0-9a-f]{64}$/);
    // These files hold no roster: the sync fails and says why, file by file.
    const done = await waitFor(async () => {
      const [sync] = await home.json(["syncs", "madison"]);
      return sync.status === "failed" && sync;
    });
    const failedFiles = new Set(done.issues.filter((i: { severity: string }) => i.severity === "error").map((i: { file: string }) => i.file));
    assert.ok(failedFiles.has("students.csv"), JSON.stringify(done.issues));
  });

  it("makes a zip uploaded alone one delivery of its own", async () => {
    const dir = await workDir({});
    const zip = new yazl.ZipFile();
    zip.addBuffer(Buffer.from("school_id,school_name\n1,Lincoln High\n"), "schools.csv");
    zip.end();
    await new Promise<void>((resolve) => zip.outputStream.pipe(createWriteStream(join(dir, "roster.zip"))).on("close", () => resolve()));
    assert.equal((await runSftp(login, ["put roster.zip"], { cwd: dir })).code, 0);
    const syncs = await waitFor(async () => {
      const list = await home.json(["syncs", "madison"]);
      return list.length === 2 && list;
    });
    assert.deepEqual(syncs[0].files.map((f: { name: string }) => f.name), ["roster.zip"]);
  });

  it("records an upload cut off mid-transfer as partial and never puts it in a delivery", async () => {
    const dir = await workDir({ "big.csv": randomBytes(300 * 1024 * 1024) });
    const syncsBefore = (await home.json(["syncs", "madison"])).length;
    let pid = 0;
    const transfer = runSftp(login, ["put big.csv"], { cwd: dir, onSpawn: (p) => (pid = p) });
    // Cut the client off once the server has part of the file.
    await waitFor(async () => {
      const incoming = await readdir(join(home.dataDir, "districts", "1", "incoming")).catch(() => []);
      return incoming.length > 0;
    }, 30_000, "the upload to start");
    process.kill(-pid, "SIGKILL");
    await transfer;
    const partial = await waitFor(async () => {
      const uploads = await home.json(["uploads", "madison"]);
      return uploads.find((u: { path: string; status: string }) => u.path === "/big.csv" && u.status === "partial");
    });
    assert.ok(partial.size < 300 * 1024 * 1024);
    assert.equal(partial.deliveryId, null);
    assert.match(partial.reason, /cut off/);
    await new Promise((r) => setTimeout(r, 3000));
    const syncs = await home.json(["syncs", "madison"]);
    assert.equal(syncs.length, syncsBefore, "a partial upload opens no delivery");
    const listing = await runSftp(login, ["ls /"], { cwd: dir });
    assert.doesNotMatch(listing.stdout, /big\.csv/);
  });
});

describe("server lifecycle", { skip: missing }, () => {
  it("keeps the same host keys across restarts, and they are the keys it presents", async () => {
    const home = await RosterdockHome.create();
    try {
      const shown = await home.json(["hostkey", "show"]);
      assert.deepEqual(
        shown.map((k: { algorithm: string }) => k.algorithm),
        ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"],
      );
      for (const key of shown) {
        assert.match(key.sha256, /^SHA256:[A-Za-z0-9+/]{43}$/);
        assert.match(key.md5, /^MD5:([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
      }
      const presented = async () => {
        const server = await home.serve();
        try {
          const { stdout } = await run("sh", ["-c", `ssh-keyscan -p ${server.sftpPort} -t ed25519,ecdsa,rsa 127.0.0.1 2>/dev/null | ssh-keygen -lf -`]);
          return stdout.split("\n").filter(Boolean).map((line) => line.split(" ")[1]).sort();
        } finally {
          assert.equal(await server.stop(), 0);
        }
      };
      const first = await presented();
      const second = await presented();
      assert.deepEqual(first, second);
      assert.deepEqual(first, shown.map((k: { sha256: string }) => k.sha256).sort());
      assert.deepEqual(await home.json(["hostkey", "show"]), shown);
    } finally {
      await home.remove();
    }
  });

  it("closes a delivery left open by a crash after restart", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_QUIET_SECONDS: "3" });
    try {
      const created = await home.createDistrict("adams");
      const server = await home.serve();
      const dir = await workDir({ "students.csv": "ID\n1\n" });
      assert.equal((await runSftp({ ...created, port: server.sftpPort }, ["put students.csv"], { cwd: dir })).code, 0);
      await server.kill();
      assert.deepEqual(await home.json(["syncs", "adams"]), []);
      // What a crash mid-upload leaves behind: never acknowledged, so removed at the next start.
      const leftover = join(home.dataDir, "districts", "1", "incoming", "leftover.part");
      await writeFile(leftover, "half a file");
      await utimes(leftover, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
      const restarted = await home.serve();
      try {
        assert.deepEqual(await readdir(join(home.dataDir, "districts", "1", "incoming")), []);
        const syncs = await waitFor(async () => {
          const list = await home.json(["syncs", "adams"]);
          return list.length === 1 && list;
        });
        assert.equal(syncs[0].files[0].name, "students.csv");
      } finally {
        await restarted.stop();
      }
    } finally {
      await home.remove();
    }
  });

  it("leaves the RSA host key (and SHA-1 ssh-rsa) out when told to", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_ALLOW_SSH_RSA: "false" });
    try {
      const server = await home.serve();
      try {
        const probe = (algorithm: string) =>
          run("ssh", ["-o", `HostKeyAlgorithms=${algorithm}`, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-p", String(server.sftpPort), "nobody@127.0.0.1", "true"]).then(
            () => "connected",
            (error: { stderr: string }) => error.stderr,
          );
        assert.match(await probe("ssh-rsa"), /no matching host key type/);
        assert.match(await probe("rsa-sha2-256"), /no matching host key type/);
        assert.match(await probe("ecdsa-sha2-nistp256"), /Permission denied/);
        assert.match(await probe("ssh-ed25519"), /Permission denied/);
        // The SHA-1 key exchange goes with SHA-1 signatures: the whole offer is the documented one.
        assert.deepEqual(await offeredOnTheWire(server.sftpPort), sshAlgorithms({ allowSshRsa: false }));
      } finally {
        await server.stop();
      }
    } finally {
      await home.remove();
    }
  });
});
