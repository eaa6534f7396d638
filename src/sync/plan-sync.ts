import type { EntityName } from "../spec/roster-spec.ts";
import type { UnreadableKeys } from "./kept-records.ts";
import { cascadeDeletes } from "./plan-cascade.ts";
import type { Cascade } from "./plan-cascade.ts";
import { COUNTED_ENTITIES, ROSTER_TABLES, allColumns, emptyCounts, keyedStage, q, removedTable, rosterTable, staged as stagedTable } from "./roster-tables.ts";
import type { RosterEntity, RosterTable, SyncCounts } from "./roster-tables.ts";
import type { PresentParts } from "./present-parts.ts";
import type { EngineSql } from "./engine-sql.ts";

// ---- safeguards: pure ----

export interface SafeguardThresholds {
  /** Hold when a sync deletes more than this share of an entity's live rows… */
  maxDeleteShare: number;
  /** …and at least this many rows. */
  minDeleteRows: number;
  /** Hold when a sync updates or deletes more than this share of an entity's live rows… */
  maxTouchShare: number;
  /** …and at least this many rows (so that renaming 2 of 3 schools does not hold). */
  minTouchRows: number;
}

export const DEFAULT_SAFEGUARDS: Readonly<SafeguardThresholds> = Object.freeze({
  maxDeleteShare: 0.1,
  minDeleteRows: 20,
  maxTouchShare: 0.5,
  minTouchRows: 20,
});

/**
 * REFUSED_UPLOAD, PARTIAL_UPLOAD: a file of the night was refused at upload, or cut off mid-transfer
 * (see sync/refused-uploads.ts). UNREADABLE_KEYS: see kept-records.ts.
 */
export type HoldCode = "TOO_MANY_DELETES" | "TOO_MANY_CHANGES" | "EMPTY_FILE" | "REFUSED_UPLOAD" | "PARTIAL_UPLOAD" | "UNREADABLE_KEYS";

export interface HoldReason {
  code: HoldCode;
  entity: EntityName | null;
  file: string | null;
  count: number;
  live: number;
  message: string;
}

export type LiveCounts = Record<EntityName, number>;

const percent = (share: number) => `${+(share * 100).toFixed(1)}%`;

/**
 * Why a planned sync must wait for a person, or [] to apply it. A roster that is empty for an
 * entity (a district's first sync) is never held for size: there is nothing to lose.
 */
export function judgeSafeguards(
  counts: SyncCounts,
  liveCounts: LiveCounts,
  thresholds: SafeguardThresholds,
  presentButEmptyFiles: readonly string[],
  unreadable: readonly UnreadableKeys[] = [],
  cascades: readonly Cascade[] = [],
): HoldReason[] {
  const reasons: HoldReason[] = [];
  for (const u of unreadable) {
    const deleted = counts[u.entity].deleted;
    if (deleted === 0) continue;
    const rows = u.examples.map((e) => `${e.file} row ${e.row} (${e.reason})`).join("; ");
    reasons.push({
      code: "UNREADABLE_KEYS",
      entity: u.entity,
      file: u.examples[0]?.file ?? null,
      count: deleted,
      live: liveCounts[u.entity],
      message: `The sync would delete ${deleted.toLocaleString("en-US")} ${u.entity}, but ${u.rows.toLocaleString("en-US")} rejected ${u.rows === 1 ? "row" : "rows"} could not be read far enough to tell which ${u.entity} ${u.rows === 1 ? "it stands" : "they stand"} for: ${rows}${u.rows > u.examples.length ? "; …" : ""}. Any of those deletions may be a record whose row was rejected. Fix the rows and export again, or approve if the deletions are right.`,
    });
  }
  for (const file of presentButEmptyFiles) {
    reasons.push({
      code: "EMPTY_FILE",
      entity: null,
      file,
      count: 0,
      live: 0,
      message: `${file} has column names but no rows. An empty file is never taken to mean "delete everything" without a person approving it.`,
    });
  }
  for (const entity of COUNTED_ENTITIES) {
    const live = liveCounts[entity];
    if (live === 0) continue;
    const { updated, deleted } = counts[entity];
    if (deleted >= thresholds.minDeleteRows && deleted > live * thresholds.maxDeleteShare) {
      const withOthers = cascades.filter((c) => c.entity === entity && c.deleted > 0);
      const cascaded = withOthers.map((c) => `${c.deleted.toLocaleString("en-US")} with the ${c.via === "staff_ids" ? "users" : c.via} they point at`).join(", ");
      reasons.push({
        code: "TOO_MANY_DELETES",
        entity,
        file: null,
        count: deleted,
        live,
        message: `The sync would delete ${deleted.toLocaleString("en-US")} of ${live.toLocaleString("en-US")} ${entity}${cascaded === "" ? "" : ` (${cascaded})`} (${percent(deleted / live)}; the limit is ${percent(thresholds.maxDeleteShare)}). A truncated or filtered export${cascaded === "" ? "" : ", or a delivery missing some of its files,"} looks like this.`,
      });
    }
    const touched = updated + deleted;
    if (touched >= thresholds.minTouchRows && touched > live * thresholds.maxTouchShare) {
      reasons.push({
        code: "TOO_MANY_CHANGES",
        entity,
        file: null,
        count: touched,
        live,
        message: `The sync would change or delete ${touched.toLocaleString("en-US")} of ${live.toLocaleString("en-US")} ${entity} (${percent(touched / live)}; the limit is ${percent(thresholds.maxTouchShare)}). A changed export template or encoding looks like this.`,
      });
    }
  }
  return reasons;
}

/** Defaults overridden by a district's `settings.safeguards` (ignored where not a number in range). */
export function districtSafeguards(settingsJson: string, defaults: SafeguardThresholds = DEFAULT_SAFEGUARDS): SafeguardThresholds {
  let settings: unknown;
  try {
    settings = JSON.parse(settingsJson);
  } catch {
    return { ...defaults };
  }
  const override = (settings as { safeguards?: Record<string, unknown> } | null)?.safeguards ?? {};
  const pick = (key: keyof SafeguardThresholds, max: number) => {
    const value = override[key];
    return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= max ? value : defaults[key];
  };
  return {
    maxDeleteShare: pick("maxDeleteShare", 1),
    minDeleteRows: pick("minDeleteRows", Number.MAX_SAFE_INTEGER),
    maxTouchShare: pick("maxTouchShare", 1),
    minTouchRows: pick("minTouchRows", Number.MAX_SAFE_INTEGER),
  };
}

// ---- the diff: SQL over staging and live ----

/**
 * How an entity is applied. "skip": its file is absent, the live rows stay. "load": nothing
 * live in its scope, every staged row is created. "diff": `stage.new_<e>` holds staged rows
 * that are new or changed, `stage.old_<e>` live rows that are gone or changed.
 */
export type EntityMode = "skip" | "load" | "diff";

export interface EntityPlan {
  entity: RosterEntity;
  mode: EntityMode;
  /** Extra condition on the live table within the district (users: the scopes present). */
  liveFilter: string;
  /** Users: the scopes the delivery speaks for (what `liveFilter` selects); null for other entities. */
  scopes: string[] | null;
  created: number;
  updated: number;
  deleted: number;
  /** Live rows the entity's diff was made against (those `liveFilter` selects). */
  live: number;
}

export interface SyncPlan {
  districtId: number;
  entities: EntityPlan[];
  counts: SyncCounts;
  liveCounts: LiveCounts;
  /** Dependents deleted with what they point at (see plan-cascade.ts); included in `counts`. */
  cascades: Cascade[];
}

/**
 * Diffs the staged delivery against the district's live roster, per entity, in the database:
 * EXCEPT both ways between the keyed staging table and the live table, both clustered by the
 * same unique NOT NULL key, is a merge of two ordered scans, not a sort. A part absent from the
 * delivery is left alone (never deleted).
 */
export async function planSync(sql: EngineSql, districtId: number, present: PresentParts, delta: ReadonlySet<RosterEntity> = new Set()): Promise<SyncPlan> {
  const counts = emptyCounts();
  const liveCounts = Object.fromEntries(COUNTED_ENTITIES.map((e) => [e, 0])) as LiveCounts;
  const entities: EntityPlan[] = [];
  for (const table of ROSTER_TABLES) entities.push(await planEntity(sql, table, districtId, present, delta.has(table.entity)));
  const cascades = await cascadeDeletes(sql, districtId, entities);
  for (const plan of entities) {
    if (cascades.some((c) => c.entity === plan.entity)) await recount(sql, plan);
    if (plan.entity === "staff_ids") continue;
    const entity = plan.entity;
    const liveTotal = await sql.count(`SELECT count(*) FROM ${sql.main}${q(rosterTable(entity).live)} WHERE district_id = ?`, [districtId]);
    liveCounts[entity] = liveTotal;
    counts[entity] = { created: plan.created, updated: plan.updated, deleted: plan.deleted, unchanged: liveTotal - plan.updated - plan.deleted };
  }
  return { districtId, entities, counts, liveCounts, cascades };
}

/** A plan's counts from its tables again, after a cascade changed them. */
async function recount(sql: EngineSql, plan: EntityPlan): Promise<void> {
  const table = rosterTable(plan.entity);
  if (plan.mode === "load") {
    plan.created = await sql.count(`SELECT count(*) FROM ${keyedStage(sql, plan.entity)}`);
    return;
  }
  if (plan.mode !== "diff") return;
  const newTable = stagedTable(sql, `new_${table.entity}`);
  const oldTable = stagedTable(sql, `old_${table.entity}`);
  const changed = await sql.count(`SELECT count(*) FROM ${newTable}`);
  const gone = await sql.count(`SELECT count(*) FROM ${oldTable}`);
  const on = table.key.map((c) => `n.${q(c)} = o.${q(c)}`).join(" AND ");
  plan.updated = await sql.count(`SELECT count(*) FROM ${newTable} n JOIN ${oldTable} o ON ${on}`);
  plan.created = changed - plan.updated;
  plan.deleted = gone - plan.updated;
}

/**
 * `delta`: the entity was read against the previous night's line digest. Its staged rows are
 * only those of changed lines, and the live side of the diff is only the live rows whose lines
 * did not come back (`stage.removed_<entity>`): every other live row is unchanged.
 */
async function planEntity(sql: EngineSql, table: RosterTable, districtId: number, present: PresentParts, delta: boolean): Promise<EntityPlan> {
  const isPresent =
    table.entity === "staff_ids" ? present.userScopes.has("staff") : present.entities.has(table.entity);
  const scopes = [...present.userScopes].sort();
  const liveFilter = table.entity === "users" ? ` AND scope IN (${scopes.map((s) => `'${s}'`).join(", ")})` : "";
  const base = { entity: table.entity, liveFilter, scopes: table.entity === "users" ? scopes : null, created: 0, updated: 0, deleted: 0, live: 0 };
  if (!isPresent) return { ...base, mode: "skip" };
  const main = sql.main;
  const staged = await sql.count(`SELECT count(*) FROM ${keyedStage(sql, table.entity)}`);
  const live = await sql.count(`SELECT count(*) FROM ${main}${q(table.live)} WHERE district_id = ?${liveFilter}`, [districtId]);
  if (live === 0) return { ...base, mode: "load", created: staged };

  const columns = allColumns(table).map(q).join(", ");
  const order = allColumns(table)
    .map((_, i) => String(i + 1))
    .join(", ");
  const stageSelect = `SELECT ${columns} FROM ${keyedStage(sql, table.entity)}`;
  // Delta: one key lookup per removed key (CROSS JOIN keeps that order), not a scan of the district's rows.
  // Users: the digest speaks for students; live staff are all looked at, as staff are read in full.
  const staff = table.entity === "users" && present.userScopes.has("staff") ? ` UNION ALL SELECT ${columns} FROM ${main}${q(table.live)} WHERE district_id = ${Number(districtId)} AND scope = 'staff'` : "";
  const liveSelect = delta
    ? `SELECT * FROM (SELECT ${allColumns(table).map((c) => `l.${q(c)}`).join(", ")} FROM ${removedTable(sql, table.entity)} r ${sql.drivingJoin} ${main}${q(table.live)} l
       ON l.district_id = ${Number(districtId)} AND ${table.key.map((c) => `l.${q(c)} = r.${q(c)}`).join(" AND ")} WHERE 1 = 1${liveFilter}${staff}) removed`
    : `SELECT ${columns} FROM ${main}${q(table.live)} WHERE district_id = ${Number(districtId)}${liveFilter}`;
  const newTable = stagedTable(sql, `new_${table.entity}`);
  const oldTable = stagedTable(sql, `old_${table.entity}`);
  await sql.exec(`DROP TABLE IF EXISTS ${newTable}; DROP TABLE IF EXISTS ${oldTable};`);
  await sql.exec(`CREATE TABLE ${newTable} AS ${stageSelect} EXCEPT ${liveSelect} ORDER BY ${order}`);
  await sql.exec(`CREATE TABLE ${oldTable} AS ${liveSelect} EXCEPT ${stageSelect} ORDER BY ${order}`);
  await sql.createStageIndex({ name: `new_${table.entity}_key`, table: `new_${table.entity}`, columns: table.key, unique: true });
  await sql.createStageIndex({ name: `old_${table.entity}_key`, table: `old_${table.entity}`, columns: table.key, unique: true });
  await sql.analyze(newTable);
  await sql.analyze(oldTable);
  const changed = await sql.count(`SELECT count(*) FROM ${newTable}`);
  const gone = await sql.count(`SELECT count(*) FROM ${oldTable}`);
  const on = table.key.map((c) => `n.${q(c)} = o.${q(c)}`).join(" AND ");
  const updated = await sql.count(`SELECT count(*) FROM ${newTable} n JOIN ${oldTable} o ON ${on}`);
  return { ...base, mode: "diff", created: changed - updated, updated, deleted: gone - updated, live };
}
