import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { RosterdockHome, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";
import { postgresMissing, startPostgres, type PostgresServer } from "../support/postgres.ts";

const missing = requireTool("sftp") ?? postgresMissing();
const SCHOOLS = "school_id,school_name\n100,Lincoln Elementary\n";
const STUDENTS = "ID,Student_Number,First_Name,Last_Name,Grade_Level,SchoolID\n1001,1001,Ana,Lopez,5,100\n";

describe("rosterdock serve on PostgreSQL", { skip: missing }, () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let home: RosterdockHome;
  let server: ServerProcess;
  let lincoln: SftpLogin;
  let files: string;

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
    home = await RosterdockHome.create({ ROSTERDOCK_DATABASE_URL: databaseUrl, ROSTERDOCK_QUIET_SECONDS: "1" });
    lincoln = { ...(await home.createDistrict("lincoln")), port: 0 };
    server = await home.serve();
    lincoln.port = server.sftpPort;
    files = await mkdtemp(join(tmpdir(), "rosterdock-files-"));
    await writeFile(join(files, "schools.csv"), SCHOOLS);
    await writeFile(join(files, "students.csv"), STUDENTS);
  });

  after(async () => {
    await server?.stop();
    await home?.remove();
    await postgres?.stop();
    if (files) await rm(files, { recursive: true, force: true });
  });

  async function query<T>(text: string, values: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as T[];
    } finally {
      await client.end();
    }
  }

  it("keeps everything in PostgreSQL: the CLI's district is there and the SQLite file is not", async () => {
    const districts = await query<{ slug: string }>("SELECT slug FROM districts");
    assert.deepEqual(districts, [{ slug: "lincoln" }]);
    const health = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
    const body = await health.json();
    assert.deepEqual({ status: body.status, database: body.database, sftp: body.sftp }, { status: "ok", database: "ok", sftp: "ok" });
    const { existsSync } = await import("node:fs");
    assert.equal(existsSync(join(home.dataDir, "rosterdock.sqlite")), false);
  });

  it("accepts uploads from OpenSSH sftp and applies their sync to the roster in PostgreSQL, once", async () => {
    const result = await runSftp(lincoln, ["put schools.csv", "put students.csv", "ls -l"], { cwd: files });
    assert.equal(result.code, 0, result.stderr);
    const uploads = await home.json(["uploads", "lincoln"]);
    assert.equal(uploads.length, 2);
    assert.ok(uploads.every((u: { status: string }) => u.status === "accepted"));
    const students = uploads.find((u: { path: string }) => u.path.endsWith("students.csv"));
    assert.equal(students.size, Buffer.byteLength(STUDENTS));
    assert.equal(students.sha256, createHash("sha256").update(STUDENTS).digest("hex"));

    // The delivery closes after its quiet second; the worker hands the sync's job to the sync thread.
    const closed = await server.waitForLog((e) => e.event === "delivery.closed");
    const applied = await waitFor(
      async () => {
        const [sync] = await home.json(["syncs", "lincoln"]);
        return sync?.status === "applied" ? sync : undefined;
      },
      30_000,
      "the sync to be applied",
    );
    assert.equal(applied.id, closed.syncId);
    assert.deepEqual(
      applied.files.map((f: { name: string; size: number }) => [f.name, f.size]).sort(),
      [
        ["schools.csv", Buffer.byteLength(SCHOOLS)],
        ["students.csv", Buffer.byteLength(STUDENTS)],
      ],
    );
    assert.equal(applied.counts.schools.created, 1);
    assert.equal(applied.counts.users.created, 1);
    const shown = await home.cli(["sync", "show", String(applied.id)]);
    assert.match(shown.stdout, /Status {5}applied/);
    const logged = await server.waitForLog((e) => e.event === "sync.applied" && e.syncId === applied.id);
    assert.equal(logged.level, 30);

    // The roster and its change log are in PostgreSQL.
    assert.deepEqual(await query("SELECT user_key, first_name, last_name, school_id FROM roster_users"), [
      { user_key: "student-1001", first_name: "Ana", last_name: "Lopez", school_id: "100" },
    ]);
    assert.deepEqual(await query("SELECT kind, sync_id FROM roster_changesets"), [{ kind: "apply", sync_id: applied.id }]);

    // The job is done, not retrying: no crash loop, no failed job, the server keeps running.
    const jobs = await query<{ kind: string; status: string; attempts: number; last_error: string | null }>("SELECT kind, status, attempts, last_error FROM jobs ORDER BY id");
    assert.deepEqual(jobs, [{ kind: "process-sync", status: "done", attempts: 1, last_error: null }]);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(server.child.exitCode, null);
    assert.deepEqual(
      server.logs.filter((e) => ["job.failed", "worker.error", "sync.thread.error", "sync.failed"].includes(e.event)),
      [],
    );

    // The admin API reports the same.
    const { token } = await home.json(["token", "create", "--name", "ops", "--scope", "admin"]);
    const listed = await fetch(`http://127.0.0.1:${server.httpPort}/api/v1/districts/lincoln/syncs`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(listed.status, 200);
    assert.equal((await listed.json())[0].status, "applied");
  });

  it("opens a new delivery for the next upload and stops cleanly", async () => {
    const result = await runSftp(lincoln, ["put students.csv students-2.csv"], { cwd: files });
    assert.equal(result.code, 0, result.stderr);
    // Students only: their school is checked against the live roster, and nothing changes.
    await waitFor(async () => (await home.json(["syncs", "lincoln"])).filter((s: { status: string }) => s.status === "applied").length === 2, 30_000, "the second sync");
    const [second] = await home.json(["syncs", "lincoln"]);
    assert.equal(second.counts.users.unchanged, 1);
    const deliveries = await query<{ status: string }>("SELECT status FROM deliveries ORDER BY id");
    assert.deepEqual(deliveries, [{ status: "closed" }, { status: "closed" }]);
    assert.equal(await server.stop(), 0);
    assert.ok(server.logs.some((e) => e.event === "server.stopped"));
  });
});
