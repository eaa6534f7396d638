import { labelsFor } from "../intake/match-headers.ts";
import { makeIssue } from "../intake/issue.ts";
import type { IssueSink } from "../intake/issue.ts";
import type { EntityName } from "../spec/roster-spec.ts";
import { DigestRevisitLimitError, removedKeys, rowsOfKeys } from "./line-digest.ts";
import type { PresentParts } from "./present-parts.ts";
import type { References } from "./references.ts";
import { keptTable } from "./kept-records.ts";
import { q, removedTable, rosterTable, staged as stagedTable } from "./roster-tables.ts";
import type { StagedFile } from "./stage-delivery.ts";
import type { EngineSql } from "./engine-sql.ts";

/*
 * Second nights: a file read against the previous night's line digest staged only its changed
 * lines. What a full read would have found among the unchanged ones is found here, in the
 * database, so that both end the same: the live rows to look at again (`stage.removed_<entity>`),
 * duplicates of unchanged lines, and unchanged lines whose school, class or student is gone.
 */

/** The keys of live rows whose lines did not come back tonight: the only live rows the diff looks at. */
export async function loadRemovedKeys(sql: EngineSql, file: StagedFile): Promise<void> {
  const key = rosterTable(file.entity).key;
  await sql.exec(`CREATE TABLE ${removedTable(sql, file.entity)} (${key.map((c) => `${q(c)} TEXT NOT NULL`).join(", ")}, PRIMARY KEY (${key.map(q).join(", ")}))${sql.withoutRowid}`);
  // Many rows per statement: on PostgreSQL each statement is a round trip.
  const columns = key.map(q);
  const statements = new Map<number, string>();
  const insertMany = (rows: number) => {
    let statement = statements.get(rows);
    if (statement === undefined) {
      const tuple = `(${columns.map(() => "?").join(", ")})`;
      statement = sql.insertOrIgnore(removedTable(sql, file.entity), columns, `VALUES ${Array.from({ length: rows }, () => tuple).join(", ")}`, columns);
      statements.set(rows, statement);
    }
    return statement;
  };
  await sql.scratch(async () => {
    for (const batch of removedKeys(file.digest!.dir)) {
      for (let at = 0; at < batch.length; at += REMOVED_PER_STATEMENT) {
        const keys = batch.slice(at, at + REMOVED_PER_STATEMENT);
        await sql.run(insertMany(keys.length), keys.flatMap((k) => k.split("\u0000")));
      }
    }
  });
  await sql.analyze(removedTable(sql, file.entity));
}

/** Removed keys inserted per statement. */
const REMOVED_PER_STATEMENT = 200;

function removedInserter(sql: EngineSql, entity: EntityName): (key: string) => Promise<number> {
  const key = rosterTable(entity).key.map(q);
  const insert = sql.insertOrIgnore(removedTable(sql, entity), key, `VALUES (${key.map(() => "?").join(", ")})`, key);
  return (k) => sql.run(insert, k.split("\u0000"));
}

function digestKey(entity: EntityName, values: Record<string, unknown>): string {
  return rosterTable(entity)
    .key.map((c) => String(values[c] ?? ""))
    .join("\u0000");
}

/**
 * A changed line whose key is also the key of an unchanged line: a duplicate, as the full read
 * would have found. The earlier row wins: either the staged row goes, or the unchanged line's
 * live row is looked at again (its key joins the removed keys) and the staged row replaces it.
 */
export async function duplicatesOfUnchangedLines(sql: EngineSql, districtId: number, file: StagedFile, issues: IssueSink, limit: number): Promise<void> {
  const entity = file.entity;
  const table = rosterTable(entity);
  const key = table.key;
  const on = (a: string, b: string) => key.map((c) => `${a}.${q(c)} = ${b}.${q(c)}`).join(" AND ");
  // Users: the digest speaks for students only; staff are read in full every night.
  const users = entity === "users";
  const conflicts: Array<Record<string, string | number>> = [];
  await sql.each<Record<string, string | number>>(
    `SELECT s.${sql.rowid} AS rid, s.row AS row, ${[...key, ...(users ? ["district_user_id"] : [])].map((c) => `s.${q(c)} AS ${q(c)}`).join(", ")} FROM ${stagedTable(sql, entity)} s
     WHERE ${users ? "s.scope = 'student' AND " : ""}EXISTS (SELECT 1 FROM ${sql.main}${q(table.live)} l WHERE l.district_id = ? AND ${on("l", "s")})
       AND NOT EXISTS (SELECT 1 FROM ${removedTable(sql, entity)} r WHERE ${on("r", "s")})
     ORDER BY s.row`,
    [districtId],
    (c) => {
      if (conflicts.length === limit) throw new DigestRevisitLimitError(`unchanged lines in ${file.name} repeat the key of a changed line`, limit);
      conflicts.push(c);
    },
  );
  if (conflicts.length === 0) return;
  const groups = new Map<string, Array<Record<string, string | number>>>();
  for (const c of conflicts) {
    const k = digestKey(entity, c);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [c]);
    else group.push(c);
  }
  const rows = rowsOfKeys(file.digest!.dir, new Set(groups.keys()));
  const labels = labelsFor(file.stats.header, { entity, stem: file.stem, implied: {} });
  const remove = `DELETE FROM ${stagedTable(sql, entity)} WHERE ${sql.rowid} = ?`;
  const addRemoved = removedInserter(sql, entity);
  const duplicate = (row: number, values: Record<string, unknown>, firstRow: number) => {
    issues.add(
      makeIssue("DUPLICATE_KEY", {
        file: file.name,
        row,
        // As uniqueIndex reports them: users by their id within the scope.
        ...(users
          ? { column: labels("district_user_id"), value: String(values.district_user_id), expected: "student id" }
          : { column: labels(key[0]!), value: key.map((c) => values[c]).filter((v) => v !== null && v !== "").join(" + "), expected: key.join(" + ") }),
        detail: `in row ${firstRow}`,
      }),
    );
    file.stats.badRows++;
    file.stats.records--;
    file.digest!.excluded.push(row);
  };
  await sql.scratch(async () => {
    for (const [k, staged] of groups) {
      const stagedRows = new Set(staged.map((s) => Number(s.row)));
      const unchanged = (rows.get(k) ?? []).filter((r) => !stagedRows.has(r));
      if (unchanged.length === 0) continue;
      const u = Math.min(...unchanged);
      const first = staged[0]!;
      if (Number(first.row) > u) {
        for (const s of staged) {
          duplicate(Number(s.row), s, u);
          await sql.run(remove, [s.rid]);
        }
      } else {
        // The unchanged line comes later: it is the duplicate; the other staged repeats are found with the keys.
        duplicate(u, first, Number(first.row));
        await addRemoved(k);
      }
    }
  });
}

/**
 * An unchanged enrollment line whose class or student is gone tonight: dropped with the same
 * warning the full read gives (at its row tonight), and its live row is deleted like any row
 * whose line did not come back.
 */
export async function orphansOfUnchangedLines(
  sql: EngineSql,
  districtId: number,
  present: PresentParts,
  delta: ReadonlySet<EntityName>,
  file: StagedFile,
  issues: IssueSink,
  refs: References,
  limit: number,
): Promise<void> {
  if (file.entity !== "enrollments") return;
  const d = Number(districtId);
  const main = sql.main;
  const removed = removedTable(sql, "enrollments");
  const notRemoved = `NOT EXISTS (SELECT 1 FROM ${removed} r WHERE r.class_id = l.class_id AND r.student_id = l.student_id)`;
  const found = new Map<string, { class_id: string; student_id: string; noStudent: boolean; noClass: boolean }>();
  const collect = (query: string, missing: "noStudent" | "noClass") =>
    sql.each<{ class_id: string; student_id: string }>(query, [], (r) => {
      const k = `${r.class_id}\u0000${r.student_id}`;
      let entry = found.get(k);
      if (entry === undefined) {
        if (found.size === limit) throw new DigestRevisitLimitError(`unchanged lines in ${file.name} point at a class or student gone tonight`, limit);
        entry = { class_id: r.class_id, student_id: r.student_id, noStudent: false, noClass: false };
        found.set(k, entry);
      }
      entry[missing] = true;
    });
  if (present.userScopes.has("student")) {
    // Read in full, tonight's students are all staged; read against a digest, the gone ones are removed keys not staged again.
    // A student whose row was rejected tonight but kept (kept-records.ts) is not gone.
    const stagedAgain = (id: string) =>
      `(EXISTS (SELECT 1 FROM ${stagedTable(sql, "users")} s WHERE s.scope = 'student' AND s.district_user_id = ${id}) OR EXISTS (SELECT 1 FROM ${keptTable(sql, "users")} k WHERE k.scope = 'student' AND k.district_user_id = ${id}))`;
    const goneStudents = stagedTable(sql, "gone_students");
    await sql.exec(
      delta.has("users")
        ? `CREATE TABLE ${goneStudents} AS SELECT substr(r.user_key, 9) AS id FROM ${removedTable(sql, "users")} r
           WHERE substr(r.user_key, 1, 8) = 'student-' AND NOT ${stagedAgain("substr(r.user_key, 9)")}`
        : `CREATE TABLE ${goneStudents} AS SELECT u.district_user_id AS id FROM ${main}roster_users u
           WHERE u.district_id = ${d} AND u.scope = 'student' AND NOT ${stagedAgain("u.district_user_id")}`,
    );
    await collect(
      `SELECT l.class_id, l.student_id FROM ${goneStudents} g ${sql.drivingJoin} ${main}roster_enrollments l ON l.district_id = ${d} AND l.student_id = g.id WHERE ${notRemoved}`,
      "noStudent",
    );
  }
  if (present.entities.has("classes")) {
    const goneClasses = stagedTable(sql, "gone_classes");
    await sql.createStageIndex({ name: "classes_class_id", table: "classes", columns: ["class_id"] });
    await sql.exec(`CREATE TABLE ${goneClasses} AS SELECT c.class_id AS id FROM ${main}roster_classes c
      WHERE c.district_id = ${d} AND NOT EXISTS (SELECT 1 FROM ${stagedTable(sql, "classes")} s WHERE s.class_id = c.class_id)
        AND NOT EXISTS (SELECT 1 FROM ${keptTable(sql, "classes")} k WHERE k.class_id = c.class_id)`);
    await collect(`SELECT l.class_id, l.student_id FROM ${goneClasses} g ${sql.drivingJoin} ${main}roster_enrollments l ON l.district_id = ${d} AND l.class_id = g.id WHERE ${notRemoved}`, "noClass");
  }
  await dropOrphanLines(sql, file, found, (entry, row, labels) => {
    if (entry.noClass) issues.add(refs.orphanIssue({ file: file.name, row, column: labels("class_id") }, "classes", entry.class_id).issue);
    if (entry.noStudent) issues.add(refs.orphanIssue({ file: file.name, row, column: labels("student_id") }, "students", entry.student_id).issue);
  });
}

/**
 * An unchanged student line whose school is gone tonight: dropped with the full read's warning
 * (at its row tonight), its live row looked at again, and the student no longer counts as
 * present for the files read after this one.
 */
export async function orphansOfUnchangedStudents(
  sql: EngineSql,
  districtId: number,
  present: PresentParts,
  file: StagedFile,
  issues: IssueSink,
  refs: References,
  limit: number,
): Promise<void> {
  if (!present.entities.has("schools")) return;
  const gone = await refs.gone("schools");
  if (gone.length === 0) return;
  const candidates = `SELECT u.user_key, u.district_user_id, u.school_id FROM ${sql.main}roster_users u WHERE u.district_id = ? AND u.school_id = ? AND u.scope = 'student'
       AND NOT EXISTS (SELECT 1 FROM ${removedTable(sql, "users")} r WHERE r.user_key = u.user_key)`;
  const found = new Map<string, { id: string; school: string }>();
  for (const school of gone) {
    await sql.each<{ user_key: string; district_user_id: string; school_id: string }>(candidates, [districtId, school], (r) => {
      if (found.size === limit) throw new DigestRevisitLimitError(`unchanged lines in ${file.name} are students of a school gone tonight`, limit);
      found.set(r.user_key, { id: r.district_user_id, school: r.school_id });
    });
  }
  await dropOrphanLines(sql, file, found, (entry, row, labels) => {
    const { issue, why } = refs.orphanIssue({ file: file.name, row, column: labels("school_id") }, "schools", entry.school);
    issues.add(issue);
    refs.drop("students", entry.id);
    // As in a full read: rows pointing at the student are told why it is missing.
    refs.reject("students", entry.id, { file: file.name, row, reason: why });
  });
}

/**
 * Drops the unchanged lines of `found` (by key): `report` gives each one's issue at its row
 * tonight; its live row is looked at again and its entry left out of tonight's digest.
 */
async function dropOrphanLines<E>(sql: EngineSql, file: StagedFile, found: ReadonlyMap<string, E>, report: (entry: E, row: number, labels: (column: string) => string) => void): Promise<void> {
  if (found.size === 0) return;
  const rows = rowsOfKeys(file.digest!.dir, new Set(found.keys()));
  const labels = labelsFor(file.stats.header, { entity: file.entity, stem: file.stem, implied: {} });
  const orphans = [...found].flatMap(([k, entry]) => (rows.get(k) ?? []).map((row) => ({ k, row, entry }))).sort((a, b) => a.row - b.row);
  const addRemoved = removedInserter(sql, file.entity);
  await sql.scratch(async () => {
    for (const { k, row, entry } of orphans) {
      report(entry, row, labels);
      file.orphans++;
      file.digest!.excluded.push(row);
      await addRemoved(k);
    }
  });
}
