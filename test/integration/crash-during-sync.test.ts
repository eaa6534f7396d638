import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import { RosterdockHome, waitFor } from "../support/rosterdock-process.ts";
import { requireTool, runSftp } from "../support/sftp-client.ts";
import { selectedBackends } from "../support/backends.ts";
import { startPostgres, type PostgresServer } from "../support/postgres.ts";

const missing = requireTool("sftp");

/** Counts rows of a table of the home's database, SQLite or PostgreSQL. */
interface RowCounter {
  count(table: string): Promise<number>;
  close(): Promise<void>;
}

async function rowCounter(home: RosterdockHome, databaseUrl: string | undefined): Promise<RowCounter> {
  if (databaseUrl === undefined) {
    const db = new Database(join(home.dataDir, "rosterdock.sqlite"), { readonly: true });
    return { count: async (table) => (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n, close: async () => void db.close() };
  }
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  return { count: async (table) => Number((await client.query(`select count(*) as n from ${table}`)).rows[0].n), close: () => client.end() };
}

for (const backend of selectedBackends()) describe(`a crash in the middle of a sync (${backend.name})`, { skip: missing ?? backend.skip }, () => {
  it("leaves no half-applied roster, and the sync runs again after restart", async (t) => {
    let postgres: PostgresServer | undefined;
    let databaseUrl: string | undefined;
    if (backend.name === "postgres") {
      postgres = await startPostgres();
      databaseUrl = await postgres.createDatabase();
    }
    const home = await RosterdockHome.create({ ROSTERDOCK_QUIET_SECONDS: "1", ROSTERDOCK_JOB_LEASE_SECONDS: "3", ...(databaseUrl ? { ROSTERDOCK_DATABASE_URL: databaseUrl } : {}) });
    try {
      const created = await home.createDistrict("lincoln");
      const night = await generateDemoData(await mkdtemp(join(tmpdir(), "rosterdock-crash-")), { students: 40_000, teachers: 1_000, styles: ["canonical"] });
      const server = await home.serve();
      const zip = night.files.canonical[0]!;
      const upload = await runSftp({ ...created, port: server.sftpPort }, [`put ${basename(zip)}`], { cwd: dirname(zip) });
      assert.equal(upload.code, 0, upload.stderr);
      await waitFor(async () => {
        const [sync] = await home.json(["syncs", "lincoln"]);
        return sync?.status === "processing";
      }, 30_000, "the sync to start");
      await server.kill();

      const db = await rowCounter(home, databaseUrl);
      const count = (table: string) => db.count(table);
      const [interrupted] = await home.json(["syncs", "lincoln"]);
      t.diagnostic(`after the crash the sync was ${interrupted.status}`);
      if (interrupted.status === "processing") {
        // Killed before its transaction committed: nothing of it is in the roster.
        assert.equal(await count("roster_users"), 0);
        assert.equal(await count("roster_enrollments"), 0);
        assert.equal(await count("roster_changes"), 0);
      }

      const restarted = await home.serve();
      try {
        const [sync] = await waitFor(async () => {
          const syncs = await home.json(["syncs", "lincoln"]);
          return syncs[0]?.status === "applied" && syncs;
        }, 60_000, "the sync to be applied after restart");
        assert.equal(sync.counts.enrollments.created, night.expected.enrollments);
        assert.equal(await count("roster_enrollments"), night.expected.enrollments);
        assert.equal(await count("roster_schools"), night.expected.schools);
        assert.equal((await home.json(["syncs", "lincoln"])).length, 1, "the same sync, not a second one");
      } finally {
        await db.close();
        await restarted.stop();
      }
    } finally {
      await home.remove();
      await postgres?.stop();
    }
  });
});
