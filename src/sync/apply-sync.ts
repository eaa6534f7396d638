import { RosterdockError } from "../errors.ts";
import type { EntityPlan, SyncPlan } from "./plan-sync.ts";
import { ROSTER_TABLES, allColumns, keyedStage, q, rosterTable } from "./roster-tables.ts";
import type { RosterTable } from "./roster-tables.ts";
import type { Sqlite } from "./sync-connection.ts";
import { CLASS_TEACHER_TOMBSTONES, holdsTombstones, mirroredColumns, tombstoneTable } from "./tombstones.ts";

export interface Changeset {
  id: number;
  firstChangeId: number;
  lastChangeId: number;
  changes: number;
  /** Secondary indexes dropped and built again because the change was bulk (see `bulkChange`). */
  rebuiltIndexes: string[];
}

/**
 * Applies a plan to the live roster and writes its change log: the only writer of roster
 * tables. Must run inside the caller's write transaction, together with the sync's new status,
 * so that the roster changes all at once or not at all.
 */
export function applyPlan(sqlite: Sqlite, plan: SyncPlan, syncId: number, now: string): Changeset {
  const before = lastChangeId(sqlite);
  const rebuilt: string[] = [];
  for (const entity of plan.entities) {
    if (entity.mode !== "diff") applyEntity(sqlite, entity, plan.districtId, syncId, now, rebuilt);
    else withCache(sqlite, DIFF_CACHE_KIB, () => applyEntity(sqlite, entity, plan.districtId, syncId, now, rebuilt));
  }
  return recordChangeset(sqlite, syncId, plan.districtId, "apply", before, now, rebuilt);
}

/**
 * A diff's changes land all over the live tables (a key lookup, delete or insert each): a
 * bigger page cache keeps the B-tree pages read once. Loads keep the connection's small cache,
 * which sizes their sorts' runs (see SyncConnection).
 */
const DIFF_CACHE_KIB = 64 * 1024;

function withCache<T>(sqlite: Sqlite, kib: number, work: () => T): T {
  const previous = sqlite.pragma("main.cache_size", { simple: true }) as number;
  sqlite.pragma(`main.cache_size = ${-kib}`);
  try {
    return work();
  } finally {
    sqlite.pragma(`main.cache_size = ${previous}`);
  }
}

function applyEntity(sqlite: Sqlite, plan: EntityPlan, districtId: number, syncId: number, now: string, rebuilt: string[]): void {
  if (plan.mode === "skip") return;
  const table = rosterTable(plan.entity);
  const columns = allColumns(table).map(q).join(", ");
  const keyOrder = table.key.map(q).join(", ");
  const live = `main.${q(table.live)}`;
  const d = Number(districtId);
  const s = Number(syncId);
  const entity = `'${table.entity}'`;
  const insertChange = `INSERT INTO main.roster_changes (sync_id, district_id, entity, key, op, before_json, after_json)`;
  if (plan.mode === "load") {
    loadEntity(sqlite, table, plan, d, s, rebuilt);
    return;
  }
  const created = `stage.${q(`new_${table.entity}`)}`;
  const gone = `stage.${q(`old_${table.entity}`)}`;
  const matchNew = (alias: string) => table.key.map((c) => `n.${q(c)} = ${alias}.${q(c)}`).join(" AND ");
  // CROSS JOIN: the changed rows drive, one key lookup each in the live table. Left to itself the
  // planner (no statistics on staging tables) scans the district's live rows instead.
  const matchLive = (alias: string) => `l.district_id = ${d} AND ${table.key.map((c) => `l.${q(c)} = ${alias}.${q(c)}`).join(" AND ")}`;
  sqlite.exec(`${insertChange}
    SELECT ${s}, ${d}, ${entity}, ${keyJson(table, "n.")}, 'create', NULL, ${rowJson(table, "n.", false)}
    FROM ${created} n WHERE NOT EXISTS (SELECT 1 FROM ${gone} o WHERE ${matchNew("o")}) ORDER BY ${prefixed(table.key, "n.")}`);
  sqlite.exec(`${insertChange}
    SELECT ${s}, ${d}, ${entity}, ${keyJson(table, "n.")}, 'update', ${rowJson(table, "l.", true)}, ${rowJson(table, "n.", false)}
    FROM ${created} n JOIN ${gone} o ON ${matchNew("o")} CROSS JOIN ${live} l ON ${matchLive("o")} ORDER BY ${prefixed(table.key, "n.")}`);
  sqlite.exec(`${insertChange}
    SELECT ${s}, ${d}, ${entity}, ${keyJson(table, "o.")}, 'delete', ${rowJson(table, "l.", true)}, NULL
    FROM ${gone} o CROSS JOIN ${live} l ON ${matchLive("o")} WHERE NOT EXISTS (SELECT 1 FROM ${created} n WHERE ${matchNew("o")}) ORDER BY ${prefixed(table.key, "o.")}`);
  tombstoneDiff(sqlite, table, plan, d, s, now, rebuilt);
  // An updated row is deleted and inserted again: two visits to each of the table's indexes.
  bulkChange(sqlite, table.live, plan.created + plan.deleted + 2 * plan.updated, rebuilt, () => {
    // When every live row of the scope goes (a school-year rollover's classes and enrollments), one
    // range delete replaces a key lookup per row: 7.8M enrollments in ~3 s instead of ~12 s.
    if (plan.deleted + plan.updated === plan.live) sqlite.exec(`DELETE FROM ${live} WHERE district_id = ${d}${plan.liveFilter}`);
    else sqlite.exec(`DELETE FROM ${live} WHERE district_id = ${d} AND (${keyOrder}) IN (SELECT ${keyOrder} FROM ${gone})`);
    sqlite.exec(`INSERT INTO ${live} (district_id, ${columns}, last_sync_id) SELECT ${d}, ${columns}, ${s} FROM ${created} ORDER BY ${keyOrder}`);
  });
}

/**
 * A first load (nothing live in the entity's scope): the rows go in, in key order, and the change
 * log gets one `load` marker instead of a `create` per row: the rows it created are the
 * district's rows of the entity with `last_sync_id` = the sync (see docs/roster-model.md).
 */
function loadEntity(sqlite: Sqlite, table: RosterTable, plan: EntityPlan, districtId: number, syncId: number, rebuilt: string[]): void {
  if (plan.created === 0) return;
  // Records loaded again after a rollback or a night without them are no longer removed.
  const tombstones = tombstoneTable(table.entity);
  if (tombstones !== undefined) clearTombstones(sqlite, tombstones, table.key, districtId, keyedStage(table.entity), plan.created, rebuilt);
  if (table.entity === "classes") clearTombstones(sqlite, CLASS_TEACHER_TOMBSTONES, CLASS_TEACHER_KEY, districtId, keyedStage(table.entity), plan.created, rebuilt);
  const live = `main.${q(table.live)}`;
  const columns = allColumns(table).map(q).join(", ");
  const marker = { rows: plan.created, ...(plan.scopes === null ? {} : { scopes: plan.scopes }) };
  sqlite
    .prepare("INSERT INTO main.roster_changes (sync_id, district_id, entity, key, op, before_json, after_json) VALUES (?, ?, ?, '[]', 'load', NULL, ?)")
    .run(syncId, districtId, table.entity, JSON.stringify(marker));
  bulkChange(sqlite, table.live, plan.created, rebuilt, () =>
    sqlite.exec(
      `INSERT INTO ${live} (district_id, ${columns}, last_sync_id) SELECT ${districtId}, ${columns}, ${syncId} FROM ${keyedStage(table.entity)} ORDER BY ${table.key.map(q).join(", ")}`,
    ),
  );
}

const CLASS_TEACHER_KEY = ["class_id", "teacher_key"] as const;
const CLASS_TEACHER_COLUMNS = "district_id, class_id, teacher_key, school_id, removed_at, removed_by_sync_id";

/**
 * A diff's tombstones: the live rows it deletes (read before they go) and, for classes, the
 * teacher enrollments that end with their class or with a change of teacher; the keys it creates
 * or updates lose theirs.
 */
function tombstoneDiff(sqlite: Sqlite, table: RosterTable, plan: EntityPlan, d: number, s: number, now: string, rebuilt: string[]): void {
  const tombstones = tombstoneTable(table.entity);
  if (tombstones === undefined) return;
  const live = `main.${q(table.live)}`;
  const created = `stage.${q(`new_${table.entity}`)}`;
  const gone = `stage.${q(`old_${table.entity}`)}`;
  const same = (a: string, b: string) => table.key.map((c) => `${a}.${q(c)} = ${b}.${q(c)}`).join(" AND ");
  const removedAt = sqlText(now);
  const deletedRows = `FROM ${gone} o CROSS JOIN ${live} l ON l.district_id = ${d} AND ${same("l", "o")} WHERE NOT EXISTS (SELECT 1 FROM ${created} n WHERE ${same("n", "o")})`;
  const mirrored = mirroredColumns(table);
  // Cleared first, while the district's tombstones are only earlier ones: the keys a diff deletes are never among those it creates.
  clearTombstones(sqlite, tombstones, table.key, d, created, plan.created + plan.updated, rebuilt);
  if (table.entity === "classes") clearTombstones(sqlite, CLASS_TEACHER_TOMBSTONES, CLASS_TEACHER_KEY, d, created, plan.created + plan.updated, rebuilt);
  if (plan.deleted > 0) {
    bulkChange(sqlite, tombstones, plan.deleted, rebuilt, () =>
      sqlite.exec(
        `INSERT OR REPLACE INTO main.${q(tombstones)} (district_id, ${mirrored.map(q).join(", ")}, removed_at, removed_by_sync_id)
        SELECT ${d}, ${prefixed(mirrored, "l.")}, ${removedAt}, ${s} ${deletedRows} ORDER BY ${prefixed(table.key, "l.")}`,
      ),
    );
  }
  if (table.entity !== "classes") return;
  const insert = `INSERT OR REPLACE INTO main.${CLASS_TEACHER_TOMBSTONES} (${CLASS_TEACHER_COLUMNS})`;
  if (plan.deleted > 0) sqlite.exec(`${insert} SELECT ${d}, l.class_id, l.teacher_key, l.school_id, ${removedAt}, ${s} ${deletedRows}`);
  if (plan.updated > 0) {
    sqlite.exec(`${insert} SELECT ${d}, l.class_id, l.teacher_key, l.school_id, ${removedAt}, ${s}
      FROM ${created} n JOIN ${gone} o ON ${same("n", "o")} CROSS JOIN ${live} l ON l.district_id = ${d} AND ${same("l", "o")} WHERE l.teacher_key <> n.teacher_key`);
  }
}

/**
 * Removes the district's tombstones whose key is among `source`'s rows (records back in the live
 * roster). Driven from the tombstones, usually far fewer than the rows created, with a key
 * lookup each in `source`; nothing at all when the district has none.
 */
function clearTombstones(sqlite: Sqlite, tombstones: string, key: readonly string[], d: number, source: string, sourceRows: number, rebuilt: string[]): void {
  if (sourceRows === 0 || !holdsTombstones(sqlite, tombstones, d)) return;
  const held = Number(sqlite.prepare(`SELECT count(*) FROM main.${q(tombstones)} WHERE district_id = ?`).pluck(true).get(d));
  const match = key.map((c) => `n.${q(c)} = t.${q(c)}`).join(" AND ");
  bulkChange(sqlite, tombstones, Math.min(held, sourceRows), rebuilt, () =>
    sqlite.exec(`DELETE FROM main.${q(tombstones)} AS t WHERE t.district_id = ${d} AND EXISTS (SELECT 1 FROM ${source} n WHERE ${match})`),
  );
}

/**
 * A rollback's tombstones, from the undone changes (`changes`: the entity's rows of the change
 * log, aliased `c`): rows the sync created go (as it left them), rows it deleted come back; for
 * classes, teacher enrollments follow their class and its teacher.
 */
function tombstoneUndo(sqlite: Sqlite, table: RosterTable, d: number, syncId: number, changes: string, now: string, undone: number, rebuilt: string[]): void {
  const tombstones = tombstoneTable(table.entity);
  if (tombstones === undefined) return;
  const s = Number(syncId);
  const removedAt = sqlText(now);
  const after = (c: string) => `json_extract(c.after_json, '$.${c}')`;
  const before = (c: string) => `json_extract(c.before_json, '$.${c}')`;
  const keyOf = table.key.map((c, i) => `json_extract(c.key, '$[${i}]')`).join(", ");
  bulkChange(sqlite, tombstones, undone, rebuilt, () => {
    sqlite.exec(`INSERT OR REPLACE INTO main.${q(tombstones)} (district_id, ${mirroredColumns(table).map(q).join(", ")}, removed_at, removed_by_sync_id)
      SELECT ${d}, ${allColumns(table).map(after).join(", ")}, ${s}, ${removedAt}, ${s} FROM ${changes} AND c.op = 'create' ORDER BY ${keyOf}`);
    sqlite.exec(`DELETE FROM main.${q(tombstones)} WHERE district_id = ${d} AND (${table.key.map(q).join(", ")}) IN (SELECT ${keyOf} FROM ${changes} AND c.op = 'delete')`);
  });
  if (table.entity !== "classes") return;
  const teacherChanged = `(c.op = 'update' AND ${after("teacher_key")} <> ${before("teacher_key")})`;
  sqlite.exec(`INSERT OR REPLACE INTO main.${CLASS_TEACHER_TOMBSTONES} (${CLASS_TEACHER_COLUMNS})
    SELECT ${d}, ${after("class_id")}, ${after("teacher_key")}, ${after("school_id")}, ${removedAt}, ${s} FROM ${changes} AND (c.op = 'create' OR ${teacherChanged})`);
  sqlite.exec(`DELETE FROM main.${CLASS_TEACHER_TOMBSTONES} WHERE district_id = ${d} AND (class_id, teacher_key) IN
    (SELECT ${before("class_id")}, ${before("teacher_key")} FROM ${changes} AND (c.op = 'delete' OR ${teacherChanged}))`);
}

/** The rollback of a first load: every row it loaded is tombstoned as it is (before it goes). */
function tombstoneUnload(sqlite: Sqlite, table: RosterTable, d: number, syncId: number, loaded: string, now: string, rows: number, rebuilt: string[]): void {
  const tombstones = tombstoneTable(table.entity);
  if (tombstones === undefined || rows === 0) return;
  const mirrored = mirroredColumns(table).map(q).join(", ");
  const live = `main.${q(table.live)}`;
  bulkChange(sqlite, tombstones, rows, rebuilt, () =>
    sqlite.exec(`INSERT OR REPLACE INTO main.${q(tombstones)} (district_id, ${mirrored}, removed_at, removed_by_sync_id)
      SELECT district_id, ${mirrored}, ${sqlText(now)}, ${Number(syncId)} FROM ${live} WHERE ${loaded} ORDER BY ${table.key.map(q).join(", ")}`),
  );
  if (table.entity === "classes") {
    sqlite.exec(`INSERT OR REPLACE INTO main.${CLASS_TEACHER_TOMBSTONES} (${CLASS_TEACHER_COLUMNS})
      SELECT district_id, class_id, teacher_key, school_id, ${sqlText(now)}, ${Number(syncId)} FROM ${live} WHERE ${loaded}`);
  }
}

/** An SQL string literal. */
function sqlText(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The page cache during a bulk change: the connection's own small one (see SyncConnection), not
 * a diff's big one. Bulk work is sequential, and SQLite sizes each sort's memory by the cache:
 * rebuilding indexes under the diff's 64 MiB cache peaked at 420 MiB RSS for a 1M-user rollover.
 */
const BULK_CACHE_KIB = 4 * 1024;

/** Fewer changed rows than this are always applied with the indexes in place. */
const BULK_MIN_ROWS = 10_000;
/** A change of at least 1/BULK_SHARE of a table's rows rebuilds its secondary indexes. */
const BULK_SHARE = 8;

/**
 * Runs `work`, a change touching about `touched` rows of a live table. A bulk change (a first
 * load, a school-year rollover that replaces every class and enrollment, the rollback of either)
 * drops the table's secondary indexes first and builds them again afterwards: maintaining an
 * index costs a random B-tree visit per changed row, rebuilding it one sort of the whole table.
 * Measured on 7.8M enrollments: deleting them all with the student index in place took 55–74 s,
 * without it 3 s, and building the index again 5–6 s. Bulk means at least BULK_MIN_ROWS and at
 * least an eighth of the rows the table holds (every district's: the index is shared). All inside
 * the caller's transaction, so readers never see a table without its indexes.
 */
function bulkChange(sqlite: Sqlite, table: string, touched: number, rebuilt: string[], work: (bulk: boolean) => void): void {
  const live = `main.${q(table)}`;
  if (!(touched >= BULK_MIN_ROWS && holdsFewerRows(sqlite, live, touched * BULK_SHARE))) return work(false);
  withCache(sqlite, BULK_CACHE_KIB, () => {
    const indexes = secondaryIndexes(sqlite, table);
    for (const index of indexes) sqlite.exec(`DROP INDEX main.${q(index.name)}`);
    work(true);
    for (const index of indexes) {
      sqlite.exec(index.sql);
      if (!rebuilt.includes(index.name)) rebuilt.push(index.name);
    }
  });
}

/** True when the table has fewer than `rows` rows (counting stops there). */
function holdsFewerRows(sqlite: Sqlite, table: string, rows: number): boolean {
  return Number(sqlite.prepare(`SELECT count(*) FROM (SELECT 1 FROM ${table} LIMIT ?)`).pluck(true).get(rows)) < rows;
}

/** The table's own indexes (not its primary key), with the SQL that creates each in `main`. */
function secondaryIndexes(sqlite: Sqlite, table: string): Array<{ name: string; sql: string }> {
  const rows = sqlite.prepare("SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name").all(table) as Array<{
    name: string;
    sql: string;
  }>;
  return rows.map((r) => ({ name: r.name, sql: r.sql.replace(/^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(IF\s+NOT\s+EXISTS\s+)?/i, (m) => `${m}main.`) }));
}

/**
 * Restores the roster as it was before an applied sync, from its change log: rows it created are
 * removed, rows it updated or deleted come back as they were (with their old last_sync_id). Only
 * the district's most recent applied sync can be rolled back; undo several by rolling back the
 * latest one each time. The undo is itself logged, so the change feed sees it: a first load
 * (one `load` marker) is undone with a `delete` per row.
 */
export function rollbackChangeset(sqlite: Sqlite, syncId: number, districtId: number, now: string): Changeset {
  const applied = sqlite
    .prepare("SELECT id, first_change_id, last_change_id FROM main.roster_changesets WHERE sync_id = ? AND kind = 'apply' AND rolled_back_at IS NULL")
    .get(syncId) as { id: number; first_change_id: number; last_change_id: number } | undefined;
  if (applied === undefined) throw new RosterdockError("ERR_SYNC_STATE", `Sync ${syncId} has no applied changes to roll back.`, { syncId });
  const latest = sqlite
    .prepare("SELECT sync_id FROM main.roster_changesets WHERE district_id = ? AND kind = 'apply' AND rolled_back_at IS NULL ORDER BY id DESC LIMIT 1")
    .pluck(true)
    .get(districtId) as number;
  if (latest !== syncId) {
    throw new RosterdockError(
      "ERR_SYNC_STATE",
      `Sync ${syncId} is not the district's most recent applied sync (sync ${latest} is). Roll back sync ${latest} first, then this one.`,
      { syncId, latest },
    );
  }
  const before = lastChangeId(sqlite);
  // Each entity's changes are a stretch of the changeset (applyPlan logs one entity at a time):
  // found in one pass, they spare every statement below a scan of the whole changeset, which
  // for a school-year rollover of a big district is 15M rows.
  const spans = sqlite
    .prepare(`SELECT c.entity AS entity, min(c.id) AS first, max(c.id) AS last FROM main.roster_changes c WHERE c.id BETWEEN ? AND ? GROUP BY c.entity`)
    .all(applied.first_change_id, applied.last_change_id) as Array<{ entity: string; first: number; last: number }>;
  const rebuilt: string[] = [];
  // Later tables first: their rows point at earlier ones.
  for (const table of [...ROSTER_TABLES].reverse()) {
    const span = spans.find((s) => s.entity === table.entity);
    if (span !== undefined) rollbackEntity(sqlite, table, districtId, syncId, `c.id BETWEEN ${Number(span.first)} AND ${Number(span.last)}`, now, rebuilt);
  }
  sqlite.prepare("UPDATE main.roster_changesets SET rolled_back_at = ? WHERE id = ?").run(now, applied.id);
  return recordChangeset(sqlite, syncId, districtId, "rollback", before, now, rebuilt);
}

function rollbackEntity(sqlite: Sqlite, table: RosterTable, districtId: number, syncId: number, range: string, now: string, rebuilt: string[]): void {
  const d = Number(districtId);
  const live = `main.${q(table.live)}`;
  const entity = `'${table.entity}'`;
  const insertChange = `INSERT INTO main.roster_changes (sync_id, district_id, entity, key, op, before_json, after_json)`;
  const load = sqlite.prepare(`SELECT after_json FROM main.roster_changes c WHERE ${range} AND c.entity = ? AND c.op = 'load'`).pluck(true).get(table.entity) as
    | string
    | undefined;
  if (load !== undefined) {
    // A first load: its rows are the entity's rows the sync last wrote (later syncs are rolled back already).
    const scopes = (JSON.parse(load) as { scopes?: string[] }).scopes;
    const loaded = `district_id = ${d} AND last_sync_id = ${Number(syncId)}${scopes === undefined ? "" : ` AND scope IN (${scopes.map((s) => `'${s.replace(/'/g, "''")}'`).join(", ")})`}`;
    const { changes: deleted } = sqlite
      .prepare(
        `${insertChange}
      SELECT ${Number(syncId)}, ${d}, ${entity}, ${keyJson(table, "")}, 'delete', ${rowJson(table, "", true)}, NULL
      FROM ${live} WHERE ${loaded} ORDER BY ${prefixed(table.key, "")}`,
      )
      .run();
    tombstoneUnload(sqlite, table, d, syncId, loaded, now, deleted, rebuilt);
    bulkChange(sqlite, table.live, deleted, rebuilt, () => sqlite.exec(`DELETE FROM ${live} WHERE ${loaded}`));
    return;
  }
  const fromKey = table.key.map((c, i) => `json_extract(c.key, '$[${i}]')`).join(", ");
  const changes = `main.roster_changes c WHERE ${range} AND c.entity = ${entity}`;
  // The inverse of each change, read before the roster is touched. The sync is the district's
  // latest, so a row it created or updated is live as it left it: its `after_json` and this sync's id.
  const { changes: undone } = sqlite
    .prepare(
      `${insertChange}
    SELECT ${Number(syncId)}, ${d}, ${entity}, c.key,
      CASE c.op WHEN 'create' THEN 'delete' WHEN 'delete' THEN 'create' ELSE 'update' END,
      CASE WHEN c.op = 'delete' THEN NULL ELSE json_set(c.after_json, '$.last_sync_id', ${Number(syncId)}) END,
      c.before_json
    FROM ${changes} ORDER BY c.id`,
    )
    .run();
  tombstoneUndo(sqlite, table, d, syncId, changes, now, undone, rebuilt);
  const restored = [...allColumns(table), "last_sync_id"].map((c) => restoredColumn(table, c)).join(", ");
  bulkChange(sqlite, table.live, undone, rebuilt, (bulk) => {
    // The rows it created or updated are those that still carry its id: in bulk, one pass over the
    // district's rows finds them faster than a lookup per logged key.
    if (bulk) sqlite.exec(`DELETE FROM ${live} WHERE district_id = ${d} AND last_sync_id = ${Number(syncId)}`);
    else sqlite.exec(`DELETE FROM ${live} WHERE district_id = ${d} AND (${table.key.map(q).join(", ")}) IN (SELECT ${fromKey} FROM ${changes} AND c.op <> 'delete')`);
    sqlite.exec(`INSERT INTO ${live} (district_id, ${[...allColumns(table), "last_sync_id"].map(q).join(", ")})
    SELECT ${d}, ${restored} FROM ${changes} AND c.op IN ('update', 'delete') ORDER BY c.id`);
  });
}

/** A column of a row a rollback brings back, from its logged JSON (`c.before_json`). */
function restoredColumn(table: RosterTable, column: string): string {
  const logged = `json_extract(c.before_json, '$.${column}')`;
  const derive = table.derived?.[column];
  return derive === undefined ? logged : `coalesce(${logged}, ${derive("c.before_json")})`;
}

function recordChangeset(
  sqlite: Sqlite,
  syncId: number,
  districtId: number,
  kind: "apply" | "rollback",
  before: number,
  now: string,
  rebuiltIndexes: string[],
): Changeset {
  const last = lastChangeId(sqlite);
  const result = sqlite
    .prepare("INSERT INTO main.roster_changesets (sync_id, district_id, kind, first_change_id, last_change_id, created_at, rolled_back_at) VALUES (?, ?, ?, ?, ?, ?, NULL)")
    .run(syncId, districtId, kind, before + 1, last, now);
  return { id: Number(result.lastInsertRowid), firstChangeId: before + 1, lastChangeId: last, changes: last - before, rebuiltIndexes };
}

function lastChangeId(sqlite: Sqlite): number {
  // AUTOINCREMENT ids never go back, even after deletes; sqlite_sequence has the high mark.
  const seq = sqlite.prepare("SELECT seq FROM main.sqlite_sequence WHERE name = 'roster_changes'").pluck(true).get() as number | undefined;
  return Number(seq ?? 0);
}

/** The district's roster version: its latest changeset. A plan is applied only against the version it was made from. */
export function rosterVersion(sqlite: Sqlite, districtId: number): number {
  return Number(sqlite.prepare("SELECT coalesce(max(id), 0) FROM main.roster_changesets WHERE district_id = ?").pluck(true).get(districtId));
}

function keyJson(table: RosterTable, prefix: string): string {
  return `json_array(${prefixed(table.key, prefix)})`;
}

function rowJson(table: RosterTable, prefix: string, withLastSync: boolean): string {
  const columns = withLastSync ? [...allColumns(table), "last_sync_id"] : allColumns(table);
  return `json_object(${columns.map((c) => `'${c}', ${prefix}${q(c)}`).join(", ")})`;
}

function prefixed(columns: readonly string[], prefix: string): string {
  return columns.map((c) => `${prefix}${q(c)}`).join(", ");
}
