import type { EngineSql } from "./engine-sql.ts";
import type { EntityName } from "../spec/roster-spec.ts";
import type { SyncPlan } from "./plan-sync.ts";
import { COUNTED_ENTITIES, allColumns, keyedStage, q, rosterTable, staged } from "./roster-tables.ts";

/** Rows of each kind (created, updated, deleted) kept per entity. */
export const SAMPLE_ROWS = 5;

export type SampleValues = Record<string, string | number | null>;

export interface EntitySample {
  entity: EntityName;
  created: SampleValues[];
  updated: Array<{ key: SampleValues; changes: Array<{ column: string; before: string | number | null; after: string | number | null }> }>;
  deleted: SampleValues[];
}

/**
 * A few rows a plan would create, update and delete per entity, read off the plan's diff tables
 * in the staging database by key (a handful of index reads): what an operator looks at before
 * approving a held sync. The staging database is gone once the sync is held, so the sample is
 * taken then and kept in the sync's summary.
 */
export async function sampleDiff(sql: EngineSql, plan: SyncPlan, rows = SAMPLE_ROWS): Promise<EntitySample[]> {
  const samples: EntitySample[] = [];
  for (const entity of COUNTED_ENTITIES) {
    const entityPlan = plan.entities.find((e) => e.entity === entity);
    if (!entityPlan || entityPlan.mode === "skip") continue;
    const table = rosterTable(entity);
    const columns = allColumns(table).filter((c) => !(table.derived && c in table.derived));
    const list = columns.map((c) => `x.${q(c)}`).join(", ");
    const sample: EntitySample = { entity, created: [], updated: [], deleted: [] };
    if (entityPlan.mode === "load") {
      sample.created = await sql.all<SampleValues>(`SELECT ${list} FROM ${keyedStage(sql, entity)} x LIMIT ?`, [rows]);
    } else {
      const newTable = staged(sql, `new_${entity}`);
      const oldTable = staged(sql, `old_${entity}`);
      const same = (a: string, b: string) => table.key.map((c) => `${a}.${q(c)} = ${b}.${q(c)}`).join(" AND ");
      sample.created = await sql.all<SampleValues>(`SELECT ${list} FROM ${newTable} x WHERE NOT EXISTS (SELECT 1 FROM ${oldTable} o WHERE ${same("o", "x")}) LIMIT ?`, [rows]);
      sample.deleted = await sql.all<SampleValues>(`SELECT ${list} FROM ${oldTable} x WHERE NOT EXISTS (SELECT 1 FROM ${newTable} n WHERE ${same("n", "x")}) LIMIT ?`, [rows]);
      const pairs = await sql.all<SampleValues>(
        `SELECT ${columns.map((c) => `o.${q(c)} AS ${q(`old.${c}`)}, x.${q(c)} AS ${q(`new.${c}`)}`).join(", ")} FROM ${newTable} x JOIN ${oldTable} o ON ${same("o", "x")} LIMIT ?`,
        [rows],
      );
      sample.updated = pairs.map((pair) => ({
        key: Object.fromEntries(table.key.map((c) => [c, pair[`new.${c}`] ?? null])),
        changes: columns.filter((c) => pair[`old.${c}`] !== pair[`new.${c}`]).map((c) => ({ column: c, before: pair[`old.${c}`] ?? null, after: pair[`new.${c}`] ?? null })),
      }));
    }
    if (sample.created.length + sample.updated.length + sample.deleted.length > 0) samples.push(sample);
  }
  return samples;
}
