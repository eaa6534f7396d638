import { awaitsKeptValue, finishKeptValueMessage } from "../intake/issue.ts";
import type { Issue, IssueCode, IssueSink, SeverityCounts } from "../intake/issue.ts";
import { labelsFor } from "../intake/match-headers.ts";
import { KEPT_VALUE } from "../intake/validate-row.ts";
import type { RosterEntity } from "./roster-tables.ts";
import { q, rosterTable, staged } from "./roster-tables.ts";
import type { StagedFile } from "./stage-delivery.ts";
import type { EngineSql } from "./engine-sql.ts";

/**
 * Issues of a file's bad values kept from yesterday, followed per code up to this many: the
 * sync stores the first 100 of a file and code; later ones are only counted, never shown.
 */
const FOLLOWED_PER_CODE = 1000;

/**
 * Passes a file's issues on, and remembers those whose message is to name the value kept from
 * yesterday (`awaitsKeptValue`): `takeLiveValues` finishes them in place, before the sync's
 * issues are stored (the sink holds the same objects).
 */
export class KeptValueIssues implements IssueSink {
  /** By column label, then row. */
  readonly pending = new Map<string, Map<number, Issue>>();
  readonly #perCode = new Map<IssueCode, number>();

  constructor(private readonly inner: IssueSink) {}

  get counts(): Readonly<SeverityCounts> {
    return this.inner.counts;
  }

  countOf(code: IssueCode, file?: string): number {
    return this.inner.countOf(code, file);
  }

  add(issue: Issue): void {
    this.inner.add(issue);
    if (issue.row === null || issue.column === null || !awaitsKeptValue(issue)) return;
    const followed = this.#perCode.get(issue.code) ?? 0;
    if (followed >= FOLLOWED_PER_CODE) return;
    this.#perCode.set(issue.code, followed + 1);
    let byRow = this.pending.get(issue.column);
    if (byRow === undefined) this.pending.set(issue.column, (byRow = new Map()));
    byRow.set(issue.row, issue);
  }
}

/**
 * The file's staged values that stand for yesterday's (KEPT_VALUE) take the live record's value,
 * null for a record not in the roster yet: one UPDATE per such column, before keys are built.
 * The issues that await the value are told it first.
 */
export async function takeLiveValues(sql: EngineSql, districtId: number, file: StagedFile, fileIndex: number, issues: KeptValueIssues): Promise<void> {
  const columns = Object.entries(file.stats.keptValues).filter(([, count]) => count > 0);
  if (columns.length === 0) return;
  const entity = file.entity as RosterEntity;
  const table = rosterTable(entity);
  const live = `${sql.main}${q(table.live)}`;
  const stagedTable = staged(sql, entity);
  const matches = (l: string, s: string) => table.key.map((c) => `${l}.${q(c)} = ${s}.${q(c)}`).join(" AND ");
  const labels = labelsFor(file.stats.header, { entity: file.entity, stem: file.stem, implied: {} });
  for (const [column] of columns) {
    const pending = issues.pending.get(labels(column));
    if (pending !== undefined && pending.size > 0) {
      // Only the rows of the issues (a few hundred at most, integers from the reader, listed in the
      // statement), not every value kept (an ambiguous column keeps them all).
      const rows = [...pending.keys()].map((row) => String(Math.trunc(row))).join(", ");
      await sql.each<{ row: number; value: string | null }>(
        `SELECT s.row AS row, l.${q(column)} AS value FROM ${stagedTable} s LEFT JOIN ${live} l ON l.district_id = ? AND ${matches("l", "s")}
         WHERE s.file_idx = ? AND s.${q(column)} = ? AND s.row IN (${rows})`,
        [districtId, fileIndex, KEPT_VALUE],
        ({ row, value }) => {
          const issue = pending.get(Number(row));
          if (issue !== undefined) issue.message = finishKeptValueMessage(issue, value);
        },
      );
    }
    await sql.run(
      `UPDATE ${stagedTable} SET ${q(column)} = (SELECT l.${q(column)} FROM ${live} l WHERE l.district_id = ? AND ${matches("l", q(entity))})
       WHERE file_idx = ? AND ${q(column)} = ?`,
      [districtId, fileIndex, KEPT_VALUE],
    );
  }
}
