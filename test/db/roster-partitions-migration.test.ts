import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Kysely, Migrator, PostgresDialect, sql } from "../../src/db/kysely.ts";
import pg from "pg";
import { POSTGRES_DIALECT } from "../../src/db/dialect-info.ts";
import { migrationProvider } from "../../src/db/migrations/index.ts";
import { BackendHomes, selectedBackends } from "../support/backends.ts";

const TABLES = ["roster_users", "roster_classes", "roster_enrollments"];

/** Each index of the three tables (partitions left out), with its definition. */
async function tableIndexes(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ index: string }>`SELECT indexname || ': ' || replace(indexdef, ' ON ONLY ', ' ON ') AS index FROM pg_indexes
    WHERE schemaname = 'public' AND tablename IN ('roster_users', 'roster_classes', 'roster_enrollments') ORDER BY indexname`.execute(db);
  return rows.map((r) => r.index);
}

async function rows(db: Kysely<any>, table: string): Promise<string[]> {
  const { rows } = await sql<{ row: string }>`SELECT t::text AS row FROM ${sql.table(table)} t ORDER BY 1`.execute(db);
  return rows.map((r) => r.row);
}

// PostgreSQL only: SQLite keeps one table each (the migration does nothing there).
for (const backend of selectedBackends().filter((b) => b.name === "postgres")) {
  describe("migration 0016 on postgres", { skip: backend.skip }, () => {
    const homes = new BackendHomes(backend.name);
    after(() => homes.close());

    it("moves the users, classes and enrollments of each district into a partition of its own, with the same keys and indexes, and goes down again", async () => {
      const home = await homes.create();
      const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: home.env.ROSTERDOCK_DATABASE_URL!, max: 2 }) }) });
      try {
        const migrator = new Migrator({ db, provider: migrationProvider(POSTGRES_DIALECT) });
        assert.equal((await migrator.migrateTo("0015-roster-read-functions")).error, undefined);
        for (const district of [3, 7]) {
          const users = Array.from({ length: 1200 }, (_, i) => ({
            district_id: district,
            user_key: `student-${i}`,
            scope: "student",
            district_user_id: String(i),
            role: "student",
            first_name: `Ana ${i}`,
            last_name: `Ng ${district}`,
            family_name_key: `ng ${district}`,
            given_name_key: `ana ${i}`,
            school_ids: "[]",
            last_sync_id: district,
          }));
          for (let i = 0; i < users.length; i += 500) await db.insertInto("roster_users").values(users.slice(i, i + 500)).execute();
          await db
            .insertInto("roster_classes")
            .values({ district_id: district, class_id: "c1", class_name: "Math", school_id: "s1", course_id: "m", teacher_id: "t1", teacher_key: "staff-t1", last_sync_id: district })
            .execute();
          await db
            .insertInto("roster_enrollments")
            .values(users.slice(0, 300).map((u) => ({ district_id: district, class_id: "c1", student_id: u.district_user_id, last_sync_id: district })))
            .execute();
        }
        const indexesBefore = await tableIndexes(db);
        const rowsBefore = await Promise.all(TABLES.map((t) => rows(db, t)));

        assert.equal((await migrator.migrateTo("0016-roster-partitions")).error, undefined);
        for (const table of TABLES) {
          const kind = await sql<{ relkind: string }>`SELECT relkind FROM pg_class WHERE oid = to_regclass(${table})`.execute(db);
          assert.equal(kind.rows[0]?.relkind, "p", `${table} is partitioned`);
          const parts = await sql<{ name: string; bound: string }>`SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(${table}) ORDER BY 1`.execute(db);
          assert.deepEqual(
            parts.rows.map((p) => `${p.name} ${p.bound}`),
            [`${table}_d3 FOR VALUES IN (3)`, `${table}_d7 FOR VALUES IN (7)`],
          );
        }
        assert.deepEqual(await tableIndexes(db), indexesBefore, "the same keys and indexes, on the partitioned tables");
        // Each partition holds its copy of every index of its table.
        const missing = await sql<{ missing: string }>`SELECT p.indexrelid::regclass::text || ' on ' || part.inhrelid::regclass::text AS missing
          FROM pg_index p JOIN pg_inherits part ON part.inhparent = p.indrelid
          WHERE NOT EXISTS (SELECT 1 FROM pg_inherits ii JOIN pg_index c ON c.indexrelid = ii.inhrelid WHERE ii.inhparent = p.indexrelid AND c.indrelid = part.inhrelid)`.execute(db);
        assert.deepEqual(missing.rows, []);
        assert.deepEqual(await Promise.all(TABLES.map((t) => rows(db, t))), rowsBefore);
        const district7 = await sql<{ n: number }>`SELECT count(*)::int AS n FROM roster_users_d7`.execute(db);
        assert.equal(district7.rows[0]!.n, 1200);
        // The key holds across the partitioned table.
        await assert.rejects(
          db.insertInto("roster_enrollments").values({ district_id: 3, class_id: "c1", student_id: "0", last_sync_id: 9 }).execute(),
          (error: { code?: string }) => error.code === "23505",
        );

        assert.equal((await migrator.migrateTo("0015-roster-read-functions")).error, undefined);
        for (const table of TABLES) {
          const kind = await sql<{ relkind: string }>`SELECT relkind FROM pg_class WHERE oid = to_regclass(${table})`.execute(db);
          assert.equal(kind.rows[0]?.relkind, "r", `${table} is one table again`);
        }
        assert.deepEqual(await tableIndexes(db), indexesBefore);
        assert.deepEqual(await Promise.all(TABLES.map((t) => rows(db, t))), rowsBefore);
      } finally {
        await db.destroy();
        await home.remove();
      }
    });
  });
}
