import SqliteDatabase from "better-sqlite3";
import pg from "pg";
import { districtPartitionName } from "../../src/db/district-partition-name.ts";

/** Rows per INSERT: well under PostgreSQL's 65,535 parameters for the widest roster table. */
const ROWS_PER_INSERT = 500;

/**
 * Copies what the OneRoster API and the change feed read of one district, row for row, from a
 * SQLite database (filled by the real sync engine) into a migrated PostgreSQL database: the
 * district's row, its live roster, tombstones, purges, changesets and change log (every table
 * with a `district_id` whose name starts with `roster_` or `tombstone`). Ids are kept, so roster
 * versions, cursors and ETags are the same on both sides. The syncs and deliveries those rows
 * point at are not copied: foreign keys are not checked during the copy (as a replica's are not).
 *
 * With `replace`, the district's rows already in PostgreSQL are deleted first, in the same
 * transaction: what another node's apply looks like to a reader (a new roster version at once).
 *
 * For differential tests of the PostgreSQL reader; it is not how PostgreSQL gets a roster (the
 * sync engine writes it there).
 */
export async function copyDistrictRoster(sqlitePath: string, postgresUrl: string, slug: string, options: { replace?: boolean } = {}): Promise<{ tables: Record<string, number> }> {
  const sqlite = new SqliteDatabase(sqlitePath, { readonly: true, fileMustExist: true });
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    const district = sqlite.prepare("SELECT * FROM districts WHERE slug = ?").get(slug) as Record<string, unknown> | undefined;
    if (district === undefined) throw new Error(`No district ${slug} in ${sqlitePath}`);
    const tables = (sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'roster\\_%' ESCAPE '\\' OR name LIKE 'tombstone%') ORDER BY name").pluck().all() as string[]).filter(
      (table) => (sqlite.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(table) as string[]).includes("district_id"),
    );
    const copied: Record<string, number> = {};
    await client.query("BEGIN");
    await client.query("SET LOCAL session_replication_role = replica");
    if (options.replace) {
      for (const table of tables) await client.query(`DELETE FROM ${table} WHERE district_id = $1`, [district.id]);
      await client.query("DELETE FROM districts WHERE id = $1", [district.id]);
    }
    await insert(client, "districts", [district]);
    for (const table of tables) {
      // A table partitioned per district (PostgreSQL) gets the district's partition, as the sync engine's first load would.
      const kind = await client.query<{ relkind: string }>("SELECT relkind FROM pg_class WHERE oid = to_regclass($1)", [table]);
      if (kind.rows[0]?.relkind === "p") {
        const id = Number(district.id);
        await client.query(`CREATE TABLE IF NOT EXISTS "${districtPartitionName(table, id)}" PARTITION OF ${table} FOR VALUES IN (${id})`);
      }
      const rows = sqlite.prepare(`SELECT * FROM ${table} WHERE district_id = ?`).all(district.id) as Record<string, unknown>[];
      for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) await insert(client, table, rows.slice(i, i + ROWS_PER_INSERT));
      copied[table] = rows.length;
    }
    await client.query("COMMIT");
    // Serial ids continue after the copied ones.
    for (const table of ["districts", ...tables]) {
      const { rows } = await client.query<{ s: string | null }>(
        "SELECT pg_get_serial_sequence($1, 'id') AS s FROM information_schema.columns WHERE table_name = $1 AND column_name = 'id'",
        [table],
      );
      const sequence = rows[0]?.s;
      if (sequence) await client.query(`SELECT setval($1, greatest((SELECT coalesce(max(id), 0) FROM ${table}), 1))`, [sequence]);
    }
    await client.query("ANALYZE");
    return { tables: copied };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    await client.end();
    sqlite.close();
  }
}

async function insert(client: pg.Client, table: string, rows: Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0]!);
  const values: unknown[] = [];
  const tuples = rows.map((row) => `(${columns.map((c) => `$${values.push(row[c] ?? null)}`).join(", ")})`);
  await client.query(`INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(", ")}) VALUES ${tuples.join(", ")}`, values);
}
