import type { RosterEntity, RosterTable } from "./roster-tables.ts";
import { ROSTER_TABLES, allColumns, q } from "./roster-tables.ts";
import type { EngineSql } from "./engine-sql.ts";

/**
 * Tombstones: what the live roster lost, kept for the OneRoster API (`status: "tobedeleted"`)
 * until purged. A key is live or tombstoned, never both: apply and rollback, the only writers,
 * tombstone the rows they remove and clear the tombstones of the keys they (re)create, in the
 * same transaction. The staff-id map is internal and has none.
 */
const TOMBSTONED: ReadonlySet<RosterEntity> = new Set(["schools", "courses", "terms", "users", "classes", "enrollments"]);

/** The teacher enrollments the API makes from classes (class, teacher_key), removed when a class goes or changes teacher. */
export const CLASS_TEACHER_TOMBSTONES = "tombstones_class_teachers";

export function tombstoneTable(entity: RosterEntity): string | undefined {
  return TOMBSTONED.has(entity) ? `tombstones_${entity}` : undefined;
}

/** Every tombstone table, the class teachers' included. */
export function tombstoneTables(): string[] {
  return [...ROSTER_TABLES.flatMap((t) => tombstoneTable(t.entity) ?? []), CLASS_TEACHER_TOMBSTONES];
}

/** Columns of a tombstone row besides removed_at and removed_by_sync_id. */
export function mirroredColumns(table: RosterTable): string[] {
  return [...allColumns(table), "last_sync_id"];
}

/** True when the district has tombstones in that table (a re-created key can only clear one then). */
export async function holdsTombstones(sql: EngineSql, tombstones: string, districtId: number): Promise<boolean> {
  return (await sql.get(`SELECT 1 FROM ${sql.main}${q(tombstones)} WHERE district_id = ? LIMIT 1`, [districtId])) !== undefined;
}

/** The instant before which tombstones are purged, `days` before `now`. */
export function purgeCutoff(now: string, days: number): string {
  return new Date(Date.parse(now) - days * 86_400_000).toISOString();
}

/**
 * Removes the tombstones older than `before`, of one district or of all; logs each district's
 * purge in `tombstone_purges`, which moves the API's roster version so no cached page still shows
 * them. Runs in the caller's write transaction. Returns the rows purged.
 */
export async function purgeTombstones(sql: EngineSql, districtId: number | undefined, before: string, now: string): Promise<number> {
  const districts = districtId === undefined ? (await sql.column<number>(`SELECT id FROM ${sql.main}districts ORDER BY id`)).map(Number) : [districtId];
  let total = 0;
  for (const d of districts) {
    let rows = 0;
    for (const table of tombstoneTables()) {
      rows += await sql.run(`DELETE FROM ${sql.main}${q(table)} WHERE district_id = ? AND removed_at < ?`, [d, before]);
    }
    if (rows === 0) continue;
    await sql.run(`INSERT INTO ${sql.main}tombstone_purges (district_id, purged_at, removed_before, rows) VALUES (?, ?, ?, ?)`, [d, now, before, rows]);
    total += rows;
  }
  return total;
}
