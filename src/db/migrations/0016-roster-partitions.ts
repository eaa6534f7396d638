import { sql } from "../kysely.ts";
import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";
import { districtPartitionName } from "../district-partition-name.ts";

/**
 * The big roster tables, on PostgreSQL, as one partition per district (LIST on `district_id`):
 * a district's first night fills a fresh table with no index, builds its key and indexes by
 * sorting once, and attaches it (`ALTER TABLE … ATTACH PARTITION`, which readers do not wait on),
 * instead of inserting millions of rows through the shared tables' B-trees (see
 * src/sync/postgres-engine-sql.ts, `newDistrictPartition`). Keys, indexes and queries are the
 * same as before: every one of them already leads with `district_id`, so a district's reads
 * touch its own partition only. SQLite keeps one table each.
 *
 * Existing rows move to a partition per district, named `<table>_d<district id>` as the sync
 * engine names the ones it creates.
 */
const PARTITIONED_ROSTER_TABLES = ["roster_users", "roster_classes", "roster_enrollments"] as const;

export function rosterPartitionsMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      if (d.name !== "postgres") return;
      for (const table of PARTITIONED_ROSTER_TABLES) await rebuild(db, table, true);
    },
    async down(db: Kysely<any>) {
      if (d.name !== "postgres") return;
      for (const table of PARTITIONED_ROSTER_TABLES) await rebuild(db, table, false);
    },
  };
}

/** Replaces `table` by a copy of its rows (partitioned per district, or as one plain table) with the same key and indexes. */
async function rebuild(db: Kysely<any>, table: string, partitioned: boolean): Promise<void> {
  const run = (statement: string) => sql.raw(statement).execute(db);
  const key = await sql<{ def: string }>`SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
    WHERE c.conrelid = to_regclass(${table}) AND c.contype = 'p'`.execute(db);
  const primaryKey = key.rows[0]?.def;
  if (primaryKey === undefined) throw new Error(`${table} has no primary key`);
  const indexes = await sql<{ name: string; def: string }>`SELECT i.indexname AS name, i.indexdef AS def FROM pg_indexes i
    WHERE i.schemaname = current_schema() AND i.tablename = ${table} AND i.indexname <> ${`${table}_pkey`} ORDER BY i.indexname`.execute(db);
  const next = `${table}_next`;
  await run(`CREATE TABLE "${next}" (LIKE "${table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)${partitioned ? " PARTITION BY LIST (district_id)" : ""}`);
  if (partitioned) {
    const districts = await sql<{ id: number }>`SELECT DISTINCT district_id AS id FROM ${sql.table(table)} ORDER BY 1`.execute(db);
    for (const { id } of districts.rows) {
      await run(`CREATE TABLE "${districtPartitionName(table, Number(id))}_next" PARTITION OF "${next}" FOR VALUES IN (${Math.trunc(Number(id))})`);
    }
  }
  await run(`INSERT INTO "${next}" SELECT * FROM "${table}"`);
  await run(`DROP TABLE "${table}"`);
  await run(`ALTER TABLE "${next}" RENAME TO "${table}"`);
  if (partitioned) {
    const parts = await sql<{ name: string }>`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = to_regclass(${table})`.execute(db);
    for (const { name } of parts.rows) await run(`ALTER TABLE "${name}" RENAME TO "${name.replace(/_next$/, "")}"`);
  }
  await run(`ALTER TABLE "${table}" ADD CONSTRAINT "${table}_pkey" ${primaryKey}`);
  for (const index of indexes.rows) await run(index.def.replace(/ ON ONLY /, " ON "));
  await run(`ANALYZE "${table}"`);
}
