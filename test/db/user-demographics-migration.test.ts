import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from "../../src/db/kysely.ts";
import pg from "pg";
import { POSTGRES_DIALECT, SQLITE_DIALECT } from "../../src/db/dialect-info.ts";
import { migrationProvider } from "../../src/db/migrations/index.ts";
import { collationKey } from "../../src/sync/collation-key.ts";
import { BackendHomes, selectedBackends } from "../support/backends.ts";

const NAMES: Array<[first: string, last: string]> = [
  ["Åsa", "Öberg"],
  ["Zoë", "de la Cruz"],
  ["Łucja", "Straße"],
  ["José", "Peña"],
];

for (const backend of selectedBackends()) {
  describe(`migration 0010 on ${backend.name}`, { skip: backend.skip }, () => {
    const homes = new BackendHomes(backend.name);
    after(() => homes.close());

    it("adds users' sex and name keys, computing the keys of the users already there, and goes down again", async () => {
      const home = await homes.create();
      const url = home.env.ROSTERDOCK_DATABASE_URL;
      const dialect = backend.name === "postgres" ? POSTGRES_DIALECT : SQLITE_DIALECT;
      const db = new Kysely<any>({
        dialect: url ? new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) : new SqliteDialect({ database: new SqliteDatabase(join(home.env.ROSTERDOCK_DATA_DIR!, "m.sqlite")) }),
      });
      try {
        const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
        assert.equal((await migrator.migrateTo("0008-intake-journal")).error, undefined);
        // More rows than one batch of the backfill, over two districts.
        const rows = Array.from({ length: 5003 }, (_, i) => {
          const [first, last] = NAMES[i % NAMES.length]!;
          return {
            district_id: 1 + (i % 2),
            user_key: `student-${i}`,
            scope: "student",
            district_user_id: String(i),
            role: "student",
            first_name: first,
            last_name: `${last} ${i}`,
            school_ids: "[]",
            last_sync_id: 1,
          };
        });
        for (let i = 0; i < rows.length; i += 500) await db.insertInto("roster_users").values(rows.slice(i, i + 500)).execute();
        const migrated = await migrator.migrateToLatest();
        assert.equal(migrated.error, undefined);
        assert.ok(migrated.results?.some((r) => r.migrationName === "0010-user-demographics" && r.status === "Success"));
        const stored = (await db.selectFrom("roster_users").select(["user_key", "first_name", "last_name", "family_name_key", "given_name_key", "gender"]).execute()) as Array<
          Record<string, string | null>
        >;
        assert.equal(stored.length, rows.length);
        for (const row of stored) {
          assert.equal(row.family_name_key, collationKey(String(row.last_name)), String(row.user_key));
          assert.equal(row.given_name_key, collationKey(String(row.first_name)));
          assert.equal(row.gender, null);
        }
        const down = await migrator.migrateTo("0008-intake-journal");
        assert.equal(down.error, undefined);
        const columns = backend.name === "postgres"
          ? (await db.selectFrom("information_schema.columns").select("column_name").where("table_name", "=", "roster_users").execute()).map((c) => c.column_name)
          : (await sql<{ column_name: string }>`SELECT name AS column_name FROM pragma_table_info('roster_users')`.execute(db)).rows.map((c) => c.column_name);
        assert.equal(columns.includes("family_name_key") || columns.includes("gender"), false);
        assert.equal(columns.includes("last_name"), true);
      } finally {
        await db.destroy();
        await home.remove();
      }
    });
  });
}
