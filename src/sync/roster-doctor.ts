import { sql } from "../db/kysely.ts";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import { REFERENCE_EDGES } from "./roster-references.ts";
import { rosterTable } from "./roster-tables.ts";

/** Live rows of one kind that point at nothing. */
export interface DanglingReference {
  entity: string;
  column: string;
  target: string;
  count: number;
  /** The first few: the row's key and the value it points with. */
  examples: Array<{ key: string[]; value: string }>;
}

const EXAMPLES = 5;

/**
 * Every reference of the district's live roster that points at nothing (see REFERENCE_EDGES):
 * what the sync engine promises never to leave behind. Reads each dependent table once; for
 * `rosterdock doctor` and the tests, not for the nightly path.
 */
export async function findDanglingReferences(db: Kysely<Database>, districtId: number): Promise<DanglingReference[]> {
  const found: DanglingReference[] = [];
  const d = Number(districtId);
  for (const edge of REFERENCE_EDGES) {
    const from = rosterTable(edge.from);
    const to = rosterTable(edge.to);
    if (edge.optionalTarget) {
      const any = await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.table(to.live)} WHERE district_id = ${d}`.execute(db);
      if (Number(any.rows[0]?.n ?? 0) === 0) continue;
    }
    const dangling = sql.raw(
      `FROM "${from.live}" d WHERE d.district_id = ${d} AND ${edge.when("d")} AND NOT EXISTS (SELECT 1 FROM "${to.live}" t WHERE t.district_id = ${d} AND ${edge.matches("d", "t")})`,
    );
    const total = await sql<{ n: number }>`SELECT count(*) AS n ${dangling}`.execute(db);
    const count = Number(total.rows[0]?.n ?? 0);
    if (count === 0) continue;
    const keyColumns = from.key.map((c) => `d."${c}"`).join(", ");
    const examples = await sql<Record<string, unknown>>`SELECT ${sql.raw(keyColumns)}, d.${sql.ref(edge.column)} AS dangling_value ${dangling} ORDER BY ${sql.raw(keyColumns)} LIMIT ${sql.lit(EXAMPLES)}`.execute(db);
    found.push({
      entity: edge.from,
      column: edge.column,
      target: edge.to,
      count,
      examples: examples.rows.map((r) => ({ key: from.key.map((c) => String(r[c])), value: String(r.dangling_value) })),
    });
  }
  return found;
}
