import { RosterdockError } from "../errors.ts";
import type { EntityPlan, SyncPlan } from "./plan-sync.ts";
import { ROSTER_TABLES, allColumns, keyedStage, q, rosterTable, staged } from "./roster-tables.ts";
import type { RosterTable } from "./roster-tables.ts";
import type { EngineSql } from "./engine-sql.ts";
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
export async function applyPlan(sql: EngineSql, plan: SyncPlan, syncId: number, now: string): Promise<Changeset> {
  const before = await lastChangeId(sql);
  const rebuilt: string[] = [];
  for (const entity of plan.entities) {
    if (entity.mode !== "diff") await applyEntity(sql, entity, plan.districtId, syncId, now, rebuilt);
    else await sql.withCache(DIFF_CACHE_KIB, () => applyEntity(sql, entity, plan.districtId, syncId, now, rebuilt));
  }
  return recordChangeset(sql, syncId, plan.districtId, "apply", before, now, rebuilt);
}

/**
 * A diff's changes land all over the live tables (a key lookup, delete or insert each): a
 * bigger page cache keeps the B-tree pages read once. Loads keep the connection's small cache,
 * which sizes their sorts' runs (see SyncConnection).
 */
const DIFF_CACHE_KIB = 64 * 1024;

async function applyEntity(sql: EngineSql, plan: EntityPlan, districtId: number, syncId: number, now: string, rebuilt: string[]): Promise<void> {
  if (plan.mode === "skip") return;
  const table = rosterTable(plan.entity);
  const columns = allColumns(table).map(q).join(", ");
  const keyOrder = table.key.map(q).join(", ");
  const live = `${sql.main}${q(table.live)}`;
  const d = Number(districtId);
  const s = Number(syncId);
  const entity = `'${table.entity}'`;
  const insertChange = `INSERT INTO ${sql.main}roster_changes (sync_id, district_id, entity, key, op, before_json, after_json)`;
  if (plan.mode === "load") {
    await loadEntity(sql, table, plan, d, s, rebuilt);
    return;
  }
  const created = staged(sql, `new_${table.entity}`);
  const gone = staged(sql, `old_${table.entity}`);
  const matchNew = (alias: string) => table.key.map((c) => `n.${q(c)} = ${alias}.${q(c)}`).join(" AND ");
  // A driving join: the changed rows drive, one key lookup each in the live table. Left to itself
  // SQLite's planner (no statistics on staging tables) scans the district's live rows instead.
  const matchLive = (alias: string) => `l.district_id = ${d} AND ${table.key.map((c) => `l.${q(c)} = ${alias}.${q(c)}`).join(" AND ")}`;
  await sql.exec(`${insertChange}
    SELECT ${s}, ${d}, ${entity}, ${keyJson(sql, table, "n.")}, 'create', NULL, ${rowJson(sql, table, "n.", false)}
    FROM ${created} n WHERE NOT EXISTS (SELECT 1 FROM ${gone} o WHERE ${matchNew("o")}) ORDER BY ${prefixed(table.key, "n.")}`);
  await sql.exec(`${insertChange}
    SELECT ${s}, ${d}, ${entity}, ${keyJson(sql, table, "n.")}, 'update', ${rowJson(sql, table, "l.", true)}, ${rowJson(sql, table, "n.", false)}
    FROM ${created} n JOIN ${gone} o ON ${matchNew("o")} ${sql.drivingJoin} ${live} l ON ${matchLive("o")} ORDER BY ${prefixed(table.key, "n.")}`);
  await sql.exec(`${insertChange}
    SELECT ${s}, ${d}, ${entity}, ${keyJson(sql, table, "o.")}, 'delete', ${rowJson(sql, table, "l.", true)}, NULL
    FROM ${gone} o ${sql.drivingJoin} ${live} l ON ${matchLive("o")} WHERE NOT EXISTS (SELECT 1 FROM ${created} n WHERE ${matchNew("o")}) ORDER BY ${prefixed(table.key, "o.")}`);
  await tombstoneDiff(sql, table, plan, d, s, now, rebuilt);
  // An updated row is deleted and inserted again: two visits to each of the table's indexes.
  await bulkChange(sql, table.live, d, plan.created + plan.deleted + 2 * plan.updated, rebuilt, async () => {
    // When every live row of the scope goes (a school-year rollover's classes and enrollments), one
    // range delete replaces a key lookup per row: 7.8M enrollments in ~3 s instead of ~12 s.
    if (plan.deleted + plan.updated === plan.live) await sql.exec(`DELETE FROM ${live} WHERE district_id = ${d}${plan.liveFilter}`);
    else await sql.exec(`DELETE FROM ${live} WHERE district_id = ${d} AND (${keyOrder}) IN (SELECT ${keyOrder} FROM ${gone})`);
    await sql.exec(`INSERT INTO ${live} (district_id, ${columns}, last_sync_id) SELECT ${d}, ${columns}, ${s} FROM ${created} ORDER BY ${keyOrder}`);
  });
}

/**
 * A first load (nothing live in the entity's scope): the rows go in, in key order, and the change
 * log gets one `load` marker instead of a `create` per row: the rows it created are the
 * district's rows of the entity with `last_sync_id` = the sync (see docs/roster-model.md).
 */
async function loadEntity(sql: EngineSql, table: RosterTable, plan: EntityPlan, districtId: number, syncId: number, rebuilt: string[]): Promise<void> {
  if (plan.created === 0) return;
  // Records loaded again after a rollback or a night without them are no longer removed.
  const tombstones = tombstoneTable(table.entity);
  if (tombstones !== undefined) await clearTombstones(sql, tombstones, table.key, districtId, keyedStage(sql, table.entity), plan.created, rebuilt);
  if (table.entity === "classes") await clearTombstones(sql, CLASS_TEACHER_TOMBSTONES, CLASS_TEACHER_KEY, districtId, keyedStage(sql, table.entity), plan.created, rebuilt);
  const live = `${sql.main}${q(table.live)}`;
  const columns = allColumns(table).map(q).join(", ");
  const marker = { rows: plan.created, ...(plan.scopes === null ? {} : { scopes: plan.scopes }) };
  await sql.run(`INSERT INTO ${sql.main}roster_changes (sync_id, district_id, entity, key, op, before_json, after_json) VALUES (?, ?, ?, '[]', 'load', NULL, ?)`, [
    syncId,
    districtId,
    table.entity,
    JSON.stringify(marker),
  ]);
  const rows = (into: string) =>
    `INSERT INTO ${into} (district_id, ${columns}, last_sync_id) SELECT ${districtId}, ${columns}, ${syncId} FROM ${keyedStage(sql, table.entity)} ORDER BY ${table.key.map(q).join(", ")}`;
  // The district's own partition, new: its keyed stage as it is (see EngineSql.fillKeyedStage),
  // or else a fresh table filled with no index; keyed, indexed and attached.
  const staged = sql.stagedDistrictPartition(table.live);
  if (staged !== null) {
    await sql.attachDistrictPartition(table.live, staged, districtId);
    return;
  }
  const partition = await sql.newDistrictPartition(table.live, districtId);
  if (partition !== null) {
    await sql.exec(rows(partition));
    await sql.attachDistrictPartition(table.live, partition, districtId);
    return;
  }
  await bulkChange(sql, table.live, districtId, plan.created, rebuilt, () => sql.exec(rows(live)));
}

const CLASS_TEACHER_KEY = ["class_id", "teacher_key"] as const;
const CLASS_TEACHER_COLUMNS = ["district_id", "class_id", "teacher_key", "school_id", "removed_at", "removed_by_sync_id"];
const CLASS_TEACHER_TOMBSTONE_KEY = ["district_id", "class_id", "teacher_key"];

/** A tombstone table's columns, all of them, and its key (the district's, then the live table's). */
function tombstoneShape(table: RosterTable): { columns: string[]; key: string[] } {
  return { columns: ["district_id", ...mirroredColumns(table).map(q), "removed_at", "removed_by_sync_id"], key: ["district_id", ...table.key.map(q)] };
}

/**
 * A diff's tombstones: the live rows it deletes (read before they go) and, for classes, the
 * teacher enrollments that end with their class or with a change of teacher; the keys it creates
 * or updates lose theirs.
 */
async function tombstoneDiff(sql: EngineSql, table: RosterTable, plan: EntityPlan, d: number, s: number, now: string, rebuilt: string[]): Promise<void> {
  const tombstones = tombstoneTable(table.entity);
  if (tombstones === undefined) return;
  const live = `${sql.main}${q(table.live)}`;
  const created = staged(sql, `new_${table.entity}`);
  const gone = staged(sql, `old_${table.entity}`);
  const same = (a: string, b: string) => table.key.map((c) => `${a}.${q(c)} = ${b}.${q(c)}`).join(" AND ");
  const removedAt = sqlText(now);
  const deletedRows = `FROM ${gone} o ${sql.drivingJoin} ${live} l ON l.district_id = ${d} AND ${same("l", "o")} WHERE NOT EXISTS (SELECT 1 FROM ${created} n WHERE ${same("n", "o")})`;
  const mirrored = mirroredColumns(table);
  const shape = tombstoneShape(table);
  // Cleared first, while the district's tombstones are only earlier ones: the keys a diff deletes are never among those it creates.
  await clearTombstones(sql, tombstones, table.key, d, created, plan.created + plan.updated, rebuilt);
  if (table.entity === "classes") await clearTombstones(sql, CLASS_TEACHER_TOMBSTONES, CLASS_TEACHER_KEY, d, created, plan.created + plan.updated, rebuilt);
  if (plan.deleted > 0) {
    await bulkChange(sql, tombstones, d, plan.deleted, rebuilt, () =>
      sql.exec(
        sql.insertOrReplace(
          `${sql.main}${q(tombstones)}`,
          shape.columns,
          `SELECT ${d}, ${prefixed(mirrored, "l.")}, ${removedAt}, ${s} ${deletedRows} ORDER BY ${prefixed(table.key, "l.")}`,
          shape.key,
        ),
      ),
    );
  }
  if (table.entity !== "classes") return;
  const teachers = `${sql.main}${CLASS_TEACHER_TOMBSTONES}`;
  if (plan.deleted > 0) {
    await sql.exec(
      sql.insertOrReplace(teachers, CLASS_TEACHER_COLUMNS, `SELECT ${d}, l.class_id, l.teacher_key, l.school_id, ${removedAt}, ${s} ${deletedRows}`, CLASS_TEACHER_TOMBSTONE_KEY),
    );
  }
  if (plan.updated > 0) {
    await sql.exec(
      sql.insertOrReplace(
        teachers,
        CLASS_TEACHER_COLUMNS,
        `SELECT ${d}, l.class_id, l.teacher_key, l.school_id, ${removedAt}, ${s}
      FROM ${created} n JOIN ${gone} o ON ${same("n", "o")} ${sql.drivingJoin} ${live} l ON l.district_id = ${d} AND ${same("l", "o")} WHERE l.teacher_key <> n.teacher_key`,
        CLASS_TEACHER_TOMBSTONE_KEY,
      ),
    );
  }
}

/**
 * Removes the district's tombstones whose key is among `source`'s rows (records back in the live
 * roster). Driven from the tombstones, usually far fewer than the rows created, with a key
 * lookup each in `source`; nothing at all when the district has none.
 */
async function clearTombstones(sql: EngineSql, tombstones: string, key: readonly string[], d: number, source: string, sourceRows: number, rebuilt: string[]): Promise<void> {
  if (sourceRows === 0 || !(await holdsTombstones(sql, tombstones, d))) return;
  const held = await sql.count(`SELECT count(*) FROM ${sql.main}${q(tombstones)} WHERE district_id = ?`, [d]);
  const match = key.map((c) => `n.${q(c)} = t.${q(c)}`).join(" AND ");
  await bulkChange(sql, tombstones, d, Math.min(held, sourceRows), rebuilt, () =>
    sql.exec(`DELETE FROM ${sql.main}${q(tombstones)} AS t WHERE t.district_id = ${d} AND EXISTS (SELECT 1 FROM ${source} n WHERE ${match})`),
  );
}

/**
 * A rollback's tombstones, from the undone changes (`changes`: the entity's rows of the change
 * log, aliased `c`): rows the sync created go (as it left them), rows it deleted come back; for
 * classes, teacher enrollments follow their class and its teacher.
 */
async function tombstoneUndo(sql: EngineSql, table: RosterTable, d: number, syncId: number, changes: string, now: string, undone: number, rebuilt: string[]): Promise<void> {
  const tombstones = tombstoneTable(table.entity);
  if (tombstones === undefined) return;
  const s = Number(syncId);
  const removedAt = sqlText(now);
  const after = (c: string) => sql.jsonField("c.after_json", c);
  const before = (c: string) => sql.jsonField("c.before_json", c);
  const keyOf = table.key.map((_, i) => sql.jsonItem("c.key", i)).join(", ");
  const shape = tombstoneShape(table);
  await bulkChange(sql, tombstones, d, undone, rebuilt, async () => {
    await sql.exec(
      sql.insertOrReplace(
        `${sql.main}${q(tombstones)}`,
        shape.columns,
        `SELECT ${d}, ${allColumns(table).map(after).join(", ")}, ${s}, ${removedAt}, ${s} FROM ${changes} AND c.op = 'create' ORDER BY ${keyOf}`,
        shape.key,
      ),
    );
    await sql.exec(`DELETE FROM ${sql.main}${q(tombstones)} WHERE district_id = ${d} AND (${table.key.map(q).join(", ")}) IN (SELECT ${keyOf} FROM ${changes} AND c.op = 'delete')`);
  });
  if (table.entity !== "classes") return;
  const teacherChanged = `(c.op = 'update' AND ${after("teacher_key")} <> ${before("teacher_key")})`;
  await sql.exec(
    sql.insertOrReplace(
      `${sql.main}${CLASS_TEACHER_TOMBSTONES}`,
      CLASS_TEACHER_COLUMNS,
      `SELECT ${d}, ${after("class_id")}, ${after("teacher_key")}, ${after("school_id")}, ${removedAt}, ${s} FROM ${changes} AND (c.op = 'create' OR ${teacherChanged})`,
      CLASS_TEACHER_TOMBSTONE_KEY,
    ),
  );
  await sql.exec(`DELETE FROM ${sql.main}${CLASS_TEACHER_TOMBSTONES} WHERE district_id = ${d} AND (class_id, teacher_key) IN
    (SELECT ${before("class_id")}, ${before("teacher_key")} FROM ${changes} AND (c.op = 'delete' OR ${teacherChanged}))`);
}

/** The rollback of a first load: every row it loaded is tombstoned as it is (before it goes). */
async function tombstoneUnload(sql: EngineSql, table: RosterTable, d: number, syncId: number, loaded: string, now: string, rows: number, rebuilt: string[]): Promise<void> {
  const tombstones = tombstoneTable(table.entity);
  if (tombstones === undefined || rows === 0) return;
  const mirrored = mirroredColumns(table).map(q).join(", ");
  const live = `${sql.main}${q(table.live)}`;
  const shape = tombstoneShape(table);
  await bulkChange(sql, tombstones, d, rows, rebuilt, () =>
    sql.exec(
      sql.insertOrReplace(
        `${sql.main}${q(tombstones)}`,
        shape.columns,
        `SELECT district_id, ${mirrored}, ${sqlText(now)}, ${Number(syncId)} FROM ${live} WHERE ${loaded} ORDER BY ${table.key.map(q).join(", ")}`,
        shape.key,
      ),
    ),
  );
  if (table.entity === "classes") {
    await sql.exec(
      sql.insertOrReplace(
        `${sql.main}${CLASS_TEACHER_TOMBSTONES}`,
        CLASS_TEACHER_COLUMNS,
        `SELECT district_id, class_id, teacher_key, school_id, ${sqlText(now)}, ${Number(syncId)} FROM ${live} WHERE ${loaded}`,
        CLASS_TEACHER_TOMBSTONE_KEY,
      ),
    );
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
async function bulkChange(sql: EngineSql, table: string, districtId: number, touched: number, rebuilt: string[], work: (bulk: boolean) => Promise<unknown>): Promise<void> {
  const live = `${sql.main}${q(table)}`;
  if (!sql.rebuildsIndexesInBulk || !(touched >= BULK_MIN_ROWS && (await holdsFewerRows(sql, live, touched * BULK_SHARE)))) {
    await work(false);
    // The planner's statistics of a table that changed this much are stale (a first load's were
    // those of an empty table): gathered again, or the next night's plans take it for tiny.
    if (touched >= BULK_MIN_ROWS) await sql.analyze(live, districtId);
    return;
  }
  await sql.withCache(BULK_CACHE_KIB, async () => {
    const indexes = await sql.secondaryIndexes(table);
    for (const index of indexes) await sql.dropLiveIndex(index.name);
    await work(true);
    for (const index of indexes) {
      await sql.exec(index.sql);
      if (!rebuilt.includes(index.name)) rebuilt.push(index.name);
    }
  });
}

/** True when the table has fewer than `rows` rows (counting stops there). */
async function holdsFewerRows(sql: EngineSql, table: string, rows: number): Promise<boolean> {
  return (await sql.count(`SELECT count(*) FROM (SELECT 1 FROM ${table} LIMIT ?) rows_held`, [rows])) < rows;
}

/**
 * Restores the roster as it was before an applied sync, from its change log: rows it created are
 * removed, rows it updated or deleted come back as they were (with their old last_sync_id). Only
 * the district's most recent applied sync can be rolled back; undo several by rolling back the
 * latest one each time. The undo is itself logged, so the change feed sees it: a first load
 * (one `load` marker) is undone with a `delete` per row.
 */
export async function rollbackChangeset(sql: EngineSql, syncId: number, districtId: number, now: string): Promise<Changeset> {
  const main = sql.main;
  const applied = await sql.get<{ id: number; first_change_id: number; last_change_id: number }>(
    `SELECT id, first_change_id, last_change_id FROM ${main}roster_changesets WHERE sync_id = ? AND kind = 'apply' AND rolled_back_at IS NULL`,
    [syncId],
  );
  if (applied === undefined) throw new RosterdockError("ERR_SYNC_STATE", `Sync ${syncId} has no applied changes to roll back.`, { syncId });
  const latest = Number(
    await sql.value(`SELECT sync_id FROM ${main}roster_changesets WHERE district_id = ? AND kind = 'apply' AND rolled_back_at IS NULL ORDER BY id DESC LIMIT 1`, [districtId]),
  );
  if (latest !== syncId) {
    throw new RosterdockError(
      "ERR_SYNC_STATE",
      `Sync ${syncId} is not the district's most recent applied sync (sync ${latest} is). Roll back sync ${latest} first, then this one.`,
      { syncId, latest },
    );
  }
  const before = await lastChangeId(sql);
  // Each entity's changes are a stretch of the changeset (applyPlan logs one entity at a time):
  // found in one pass, they spare every statement below a scan of the whole changeset, which
  // for a school-year rollover of a big district is 15M rows.
  const spans = await sql.all<{ entity: string; first: number; last: number }>(
    `SELECT c.entity AS entity, min(c.id) AS first, max(c.id) AS last FROM ${main}roster_changes c WHERE c.id BETWEEN ? AND ? GROUP BY c.entity`,
    [applied.first_change_id, applied.last_change_id],
  );
  const rebuilt: string[] = [];
  // Later tables first: their rows point at earlier ones.
  for (const table of [...ROSTER_TABLES].reverse()) {
    const span = spans.find((s) => s.entity === table.entity);
    if (span !== undefined) await rollbackEntity(sql, table, districtId, syncId, `c.id BETWEEN ${Number(span.first)} AND ${Number(span.last)}`, now, rebuilt);
  }
  await sql.run(`UPDATE ${main}roster_changesets SET rolled_back_at = ? WHERE id = ?`, [now, applied.id]);
  return recordChangeset(sql, syncId, districtId, "rollback", before, now, rebuilt);
}

async function rollbackEntity(sql: EngineSql, table: RosterTable, districtId: number, syncId: number, range: string, now: string, rebuilt: string[]): Promise<void> {
  const d = Number(districtId);
  const live = `${sql.main}${q(table.live)}`;
  const entity = `'${table.entity}'`;
  const insertChange = `INSERT INTO ${sql.main}roster_changes (sync_id, district_id, entity, key, op, before_json, after_json)`;
  const load = await sql.value<string>(`SELECT after_json FROM ${sql.main}roster_changes c WHERE ${range} AND c.entity = ? AND c.op = 'load'`, [table.entity]);
  if (load !== undefined) {
    // A first load: its rows are the entity's rows the sync last wrote (later syncs are rolled back already).
    const scopes = (JSON.parse(load) as { scopes?: string[] }).scopes;
    const loaded = `district_id = ${d} AND last_sync_id = ${Number(syncId)}${scopes === undefined ? "" : ` AND scope IN (${scopes.map((s) => `'${s.replace(/'/g, "''")}'`).join(", ")})`}`;
    const deleted = await sql.run(
      `${insertChange}
      SELECT ${Number(syncId)}, ${d}, ${entity}, ${keyJson(sql, table, "")}, 'delete', ${rowJson(sql, table, "", true)}, NULL
      FROM ${live} WHERE ${loaded} ORDER BY ${prefixed(table.key, "")}`,
    );
    await tombstoneUnload(sql, table, d, syncId, loaded, now, deleted, rebuilt);
    await bulkChange(sql, table.live, d, deleted, rebuilt, () => sql.exec(`DELETE FROM ${live} WHERE ${loaded}`));
    return;
  }
  const fromKey = table.key.map((_, i) => sql.jsonItem("c.key", i)).join(", ");
  const changes = `${sql.main}roster_changes c WHERE ${range} AND c.entity = ${entity}`;
  // The inverse of each change, read before the roster is touched. The sync is the district's
  // latest, so a row it created or updated is live as it left it: its `after_json` and this sync's id.
  const undone = await sql.run(
    `${insertChange}
    SELECT ${Number(syncId)}, ${d}, ${entity}, c.key,
      CASE c.op WHEN 'create' THEN 'delete' WHEN 'delete' THEN 'create' ELSE 'update' END,
      CASE WHEN c.op = 'delete' THEN NULL ELSE ${sql.jsonSetInteger("c.after_json", "last_sync_id", Number(syncId))} END,
      c.before_json
    FROM ${changes} ORDER BY c.id`,
  );
  await tombstoneUndo(sql, table, d, syncId, changes, now, undone, rebuilt);
  const restored = [...allColumns(table), "last_sync_id"].map((c) => restoredColumn(sql, table, c)).join(", ");
  await bulkChange(sql, table.live, d, undone, rebuilt, async (bulk) => {
    // The rows it created or updated are those that still carry its id: in bulk, one pass over the
    // district's rows finds them faster than a lookup per logged key.
    if (bulk) await sql.exec(`DELETE FROM ${live} WHERE district_id = ${d} AND last_sync_id = ${Number(syncId)}`);
    else await sql.exec(`DELETE FROM ${live} WHERE district_id = ${d} AND (${table.key.map(q).join(", ")}) IN (SELECT ${fromKey} FROM ${changes} AND c.op <> 'delete')`);
    await sql.exec(`INSERT INTO ${live} (district_id, ${[...allColumns(table), "last_sync_id"].map(q).join(", ")})
    SELECT ${d}, ${restored} FROM ${changes} AND c.op IN ('update', 'delete') ORDER BY c.id`);
  });
}

/** A column of a row a rollback brings back, from its logged JSON (`c.before_json`). */
function restoredColumn(sql: EngineSql, table: RosterTable, column: string): string {
  const logged = sql.jsonField("c.before_json", column, column === "last_sync_id" ? "integer" : undefined);
  const derive = sql.derivesLegacyColumns ? table.derived?.[column] : undefined;
  return derive === undefined ? logged : `coalesce(${logged}, ${derive("c.before_json")})`;
}

async function recordChangeset(
  sql: EngineSql,
  syncId: number,
  districtId: number,
  kind: "apply" | "rollback",
  before: number,
  now: string,
  rebuiltIndexes: string[],
): Promise<Changeset> {
  const last = await lastChangeId(sql);
  const id = await sql.value(
    `INSERT INTO ${sql.main}roster_changesets (sync_id, district_id, kind, first_change_id, last_change_id, created_at, rolled_back_at) VALUES (?, ?, ?, ?, ?, ?, NULL) RETURNING id`,
    [syncId, districtId, kind, before + 1, last, now],
  );
  return { id: Number(id), firstChangeId: before + 1, lastChangeId: last, changes: last - before, rebuiltIndexes };
}

function lastChangeId(sql: EngineSql): Promise<number> {
  return sql.highestId("roster_changes");
}

/** The district's roster version: its latest changeset. A plan is applied only against the version it was made from. */
export async function rosterVersion(sql: EngineSql, districtId: number): Promise<number> {
  return sql.count(`SELECT coalesce(max(id), 0) FROM ${sql.main}roster_changesets WHERE district_id = ?`, [districtId]);
}

function keyJson(sql: EngineSql, table: RosterTable, prefix: string): string {
  return sql.jsonArray(table.key.map((c) => `${prefix}${q(c)}`));
}

function rowJson(sql: EngineSql, table: RosterTable, prefix: string, withLastSync: boolean): string {
  const columns = withLastSync ? [...allColumns(table), "last_sync_id"] : allColumns(table);
  return sql.jsonObject(columns.map((c) => [c, `${prefix}${q(c)}`] as const));
}

function prefixed(columns: readonly string[], prefix: string): string {
  return columns.map((c) => `${prefix}${q(c)}`).join(", ");
}
