import { labelsFor } from "../intake/match-headers.ts";
import { KEPT_VALUE } from "../intake/validate-row.ts";
import { DigestDateReadingError } from "./line-digest.ts";
import type { RosterEntity } from "./roster-tables.ts";
import { q, rosterTable, staged } from "./roster-tables.ts";
import type { StagedFile } from "./stage-delivery.ts";
import type { EngineSql } from "./engine-sql.ts";

/**
 * Applies how a staged file's date columns were read, known only at the end of the file (see
 * DateColumn): rows were staged as they were read, with values that could be read either way
 * read month first.
 *
 * - Day first: those values are exactly the file's staged ISO dates whose day is 12 or less
 *   (a value read day first has a day over 12; an ISO date with a day of 12 or less makes the
 *   column ambiguous instead); one UPDATE swaps their month and day.
 * - Ambiguous, optional column: every value of the file keeps yesterday's (KEPT_VALUE, then
 *   takeLiveValues).
 * - Ambiguous, required column: the file's rows are rejected, as the reader rejects a row with a
 *   bad required value: left out of staging, counted bad, and their keys recorded in
 *   `stage.kept_<entity>` (the live records they name stay as they are).
 *
 * A file read against last night's digest whose reading is not settled throws
 * DigestDateReadingError: its skipped lines may read another way tonight, so the sync is read
 * again in full.
 */
export async function settleDateColumns(sql: EngineSql, file: StagedFile, fileIndex: number): Promise<void> {
  const outcomes = file.stats.dateColumns;
  if (outcomes.length === 0) return;
  const labels = labelsFor(file.stats.header, { entity: file.entity, stem: file.stem, implied: {} });
  if (file.digest?.result.delta === true) {
    const unsettled = outcomes.find((o) => !o.settled);
    if (unsettled !== undefined) throw new DigestDateReadingError(file.name, labels(unsettled.column));
  }
  const entity = file.entity as RosterEntity;
  const table = staged(sql, entity);
  for (const outcome of outcomes) {
    const column = q(outcome.column);
    if (outcome.swap) {
      await sql.run(
        `UPDATE ${table} SET ${column} = substr(${column}, 1, 5) || substr(${column}, 9, 2) || '-' || substr(${column}, 6, 2)
         WHERE file_idx = ? AND length(${column}) = 10 AND substr(${column}, 9, 2) <= '12'`,
        [fileIndex],
      );
    } else if (outcome.reading === "ambiguous" && !outcome.required) {
      const changes = await sql.run(`UPDATE ${table} SET ${column} = ? WHERE file_idx = ? AND ${column} IS NOT NULL AND ${column} <> ?`, [KEPT_VALUE, fileIndex, KEPT_VALUE]);
      file.stats.keptValues[outcome.column] = (file.stats.keptValues[outcome.column] ?? 0) + changes;
    } else if (outcome.reading === "ambiguous") {
      await rejectRows(sql, file, fileIndex, entity, `${column} IS NOT NULL`);
    }
  }
}

/** Rejects the file's staged rows matching `where` (see settleDateColumns). */
async function rejectRows(sql: EngineSql, file: StagedFile, fileIndex: number, entity: RosterEntity, where: string): Promise<void> {
  const key = rosterTable(entity).key.map(q);
  const kept = staged(sql, `kept_${entity}`);
  const table = staged(sql, entity);
  await sql.exec(`CREATE TABLE IF NOT EXISTS ${kept} (${key.map((c) => `${c} TEXT NOT NULL`).join(", ")}, file_idx INTEGER NOT NULL, row INTEGER NOT NULL)`);
  await sql.run(`INSERT INTO ${kept} (${key.join(", ")}, file_idx, row) SELECT ${key.join(", ")}, file_idx, row FROM ${table} WHERE file_idx = ? AND ${where}`, [fileIndex]);
  // A digested file's rejected lines are not live rows (as for duplicates and orphans).
  const digest = file.digest;
  if (digest !== null) await sql.each<{ row: number }>(`SELECT row FROM ${table} WHERE file_idx = ? AND ${where}`, [fileIndex], (r) => digest.excluded.push(Number(r.row)));
  const changes = await sql.run(`DELETE FROM ${table} WHERE file_idx = ? AND ${where}`, [fileIndex]);
  file.stats.records -= changes;
  file.stats.badRows += changes;
}
