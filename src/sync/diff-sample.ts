import type { Database as Sqlite } from "better-sqlite3";
import type { EntityName } from "../spec/roster-spec.ts";
import type { SyncPlan } from "./plan-sync.ts";
import { COUNTED_ENTITIES, allColumns, keyedStage, q, rosterTable } from "./roster-tables.ts";

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
export function sampleDiff(sqlite: Sqlite, plan: SyncPlan, rows = SAMPLE_ROWS): EntitySample[] {
  const samples: EntitySample[] = [];
  for (const entity of COUNTED_ENTITIES) {
    const entityPlan = plan.entities.find((e) => e.entity === entity);
    if (!entityPlan || entityPlan.mode === "skip") continue;
    const table = rosterTable(entity);
    const columns = allColumns(table).filter((c) => !(table.derived && c in table.derived));
    const list = columns.map((c) => `x.${q(c)}`).join(", ");
    const sample: EntitySample = { entity, created: [], updated: [], deleted: [] };
    if (entityPlan.mode === "load") {
      sample.created = sqlite.prepare(`SELECT ${list} FROM ${keyedStage(entity)} x LIMIT ?`).all(rows) as SampleValues[];
    } else {
      const newTable = `stage.${q(`new_${entity}`)}`;
      const oldTable = `stage.${q(`old_${entity}`)}`;
      const same = (a: string, b: string) => table.key.map((c) => `${a}.${q(c)} = ${b}.${q(c)}`).join(" AND ");
      sample.created = sqlite.prepare(`SELECT ${list} FROM ${newTable} x WHERE NOT EXISTS (SELECT 1 FROM ${oldTable} o WHERE ${same("o", "x")}) LIMIT ?`).all(rows) as SampleValues[];
      sample.deleted = sqlite.prepare(`SELECT ${list} FROM ${oldTable} x WHERE NOT EXISTS (SELECT 1 FROM ${newTable} n WHERE ${same("n", "x")}) LIMIT ?`).all(rows) as SampleValues[];
      const pairs = sqlite
        .prepare(`SELECT ${columns.map((c) => `o.${q(c)} AS ${q(`old.${c}`)}, x.${q(c)} AS ${q(`new.${c}`)}`).join(", ")} FROM ${newTable} x JOIN ${oldTable} o ON ${same("o", "x")} LIMIT ?`)
        .all(rows) as SampleValues[];
      sample.updated = pairs.map((pair) => ({
        key: Object.fromEntries(table.key.map((c) => [c, pair[`new.${c}`] ?? null])),
        changes: columns.filter((c) => pair[`old.${c}`] !== pair[`new.${c}`]).map((c) => ({ column: c, before: pair[`old.${c}`] ?? null, after: pair[`new.${c}`] ?? null })),
      }));
    }
    if (sample.created.length + sample.updated.length + sample.deleted.length > 0) samples.push(sample);
  }
  return samples;
}
