import type { RejectedRow } from "../intake/validate-row.ts";
import type { EntityName } from "../spec/roster-spec.ts";
import { ENTITY_NAMES, entitySpec } from "../spec/roster-spec.ts";
import type { References, Target } from "./references.ts";
import { allColumns, keyedStage, q, rosterTable, staged } from "./roster-tables.ts";
import type { EngineSql } from "./engine-sql.ts";
import { sqlTrue } from "./engine-sql.ts";
import type { StagingSpace } from "./roster-tables.ts";

/** Where a rejected row was: its file and spreadsheet row, and why it was rejected. */
export interface RejectedAt {
  file: string;
  row: number;
  reason: string;
}

/** Rejected rows of an entity whose key could not be read: none of its live rows may be deleted without a person. */
export interface UnreadableKeys {
  entity: EntityName;
  rows: number;
  /** The first few, for the hold reason. */
  examples: RejectedAt[];
}

const MAX_EXAMPLES = 5;

/** A staging table of the keys of live records kept unchanged because their row was rejected. */
export function keptTable(sql: StagingSpace, entity: EntityName): string {
  return staged(sql, `kept_${entity}`);
}

export async function createKeptTables(sql: EngineSql): Promise<void> {
  for (const entity of ENTITY_NAMES) {
    const columns = entitySpec(entity).key.map((c) => `${q(c)} TEXT NOT NULL`);
    await sql.exec(`CREATE TABLE ${keptTable(sql, entity)} (${columns.join(", ")}, file_idx INTEGER NOT NULL, row INTEGER NOT NULL)`);
  }
}

/**
 * A rejected row never deletes its live record. When its key can still be read and names a live
 * record, that record is kept exactly as it is (staged from the live roster after keys are
 * built) and rows pointing at it still resolve. When the key names nothing live, the row was a
 * new record: rows pointing at it are told why it is missing. When the key cannot be read, the
 * entity's deletions are held for a person (see `unreadable`).
 */
export class KeptRecords {
  readonly #lookups: Record<EntityName, string>;
  readonly #staffKey: string;
  readonly #courseName: string;
  readonly #unreadable = new Map<EntityName, UnreadableKeys>();
  readonly #kept = new Map<EntityName, number>();

  constructor(
    private readonly sql: EngineSql,
    private readonly districtId: number,
    private readonly refs: References,
  ) {
    const lookup = (table: string, where: string) => `SELECT 1 FROM ${sql.main}${table} WHERE district_id = ? AND ${where}`;
    this.#lookups = {
      schools: lookup("roster_schools", "school_id = ?"),
      courses: lookup("roster_courses", "course_id = ?"),
      terms: lookup("roster_terms", "term_id = ? AND school_id = ?"),
      users: lookup("roster_users", "user_key = ?"),
      classes: lookup("roster_classes", "class_id = ?"),
      enrollments: lookup("roster_enrollments", "class_id = ? AND student_id = ?"),
    };
    this.#staffKey = `SELECT user_key FROM ${sql.main}roster_staff_ids WHERE district_id = ? AND district_user_id = ?`;
    this.#courseName = `SELECT course_name FROM ${sql.main}roster_courses WHERE district_id = ? AND course_id = ?`;
  }

  /** Entities with rejected rows whose key could not be read. */
  get unreadable(): UnreadableKeys[] {
    return [...this.#unreadable.values()];
  }

  /**
   * Decides what becomes of each rejected row of a file. Returns, by row, a sentence to add to the
   * row's issue ("Kept yesterday's record for teacher 702 unchanged.").
   */
  async consider(entity: EntityName, rejected: readonly RejectedRow[], file: { name: string; index: number; stem: string }): Promise<Map<number, string>> {
    const notes = new Map<number, string>();
    if (rejected.length === 0) return notes;
    const insert = `INSERT INTO ${keptTable(this.sql, entity)} (${entitySpec(entity).key.map(q).join(", ")}, file_idx, row) VALUES (${entitySpec(entity).key.map(() => "?").join(", ")}, ${Math.trunc(file.index)}, ?)`;
    for (const r of rejected) {
      const at: RejectedAt = { file: file.name, row: r.row, reason: r.reason };
      let live: readonly string[] | undefined;
      for (const key of r.keys) {
        if (await this.#isLive(entity, key)) {
          live = key;
          break;
        }
      }
      if (live !== undefined) {
        await this.sql.run(insert, [...live, r.row]);
        this.#kept.set(entity, (this.#kept.get(entity) ?? 0) + 1);
        await this.#resolve(entity, live);
        notes.set(r.row, `Kept yesterday's record for ${describe(entity, live, file.stem)} unchanged.`);
        continue;
      }
      for (const key of r.keys) {
        const target = targetOf(entity, key);
        if (target !== null) this.refs.reject(target.target, target.id, at);
      }
      if (r.certain) continue;
      const unreadable = this.#unreadable.get(entity) ?? { entity, rows: 0, examples: [] };
      unreadable.rows++;
      if (unreadable.examples.length < MAX_EXAMPLES) unreadable.examples.push(at);
      this.#unreadable.set(entity, unreadable);
      notes.set(r.row, `Its ${entity === "users" ? "id" : "key"} could not be read, so if tonight's sync would delete any ${entity}, it waits for a person's approval.`);
    }
    return notes;
  }

  async #isLive(entity: EntityName, key: readonly string[]): Promise<boolean> {
    const d = this.districtId;
    if (entity !== "users") return (await this.sql.value(this.#lookups[entity], [d, ...key])) !== undefined;
    const [scope, id] = key as [string, string];
    if (scope === "student") return (await this.sql.value(this.#lookups.users, [d, `student-${id}`])) !== undefined;
    return (await this.sql.value(this.#staffKey, [d, id])) !== undefined;
  }

  /** Rows pointing at a kept record resolve, as if its row had been read. */
  async #resolve(entity: EntityName, key: readonly string[]): Promise<void> {
    const target = targetOf(entity, key);
    if (target === null) return;
    this.refs.add(target.target, target.id);
    if (target.target === "staff" && !this.refs.staffKeys.has(target.id)) this.refs.staffKeys.set(target.id, (await this.sql.value<string>(this.#staffKey, [this.districtId, target.id]))!);
    if (target.target === "courses" && !this.refs.courseNames.has(target.id)) this.refs.courseNames.set(target.id, (await this.sql.value<string>(this.#courseName, [this.districtId, target.id]))!);
  }

  /**
   * Terms rows rejected after their file was read (a date column found ambiguous at its end, see
   * date-columns.ts) sit in `kept_terms` already: those naming no live term are missing tonight,
   * and classes pointing at them must be told why, not resolve.
   */
  async settleRejectedTerms(file: string): Promise<void> {
    const missing = await this.sql.all<{ term_id: string; school_id: string; row: number }>(
      `SELECT k.term_id, k.school_id, k.row FROM ${keptTable(this.sql, "terms")} k
        WHERE NOT EXISTS (SELECT 1 FROM ${this.sql.main}roster_terms t WHERE t.district_id = ? AND t.term_id = k.term_id AND t.school_id = k.school_id)`,
      [this.districtId],
    );
    for (const { term_id: termId, school_id: schoolId, row: at } of missing) {
      const row = Number(at);
      this.refs.drop("terms", `${termId}\u0000${schoolId}`);
      this.refs.reject("terms", `${termId}\u0000${schoolId}`, { file, row, reason: "its dates could be read day first or month first" });
    }
  }

  /** Kept records per entity, once `stageKept` has run (a key also read from a good row counts there, not here). */
  counts(): Map<EntityName, number> {
    return this.#kept;
  }

  /**
   * Copies the kept records from the live roster into the keyed staging tables, after keys are
   * built: a good row of the same key wins (INSERT OR IGNORE). A kept staff id keeps its person
   * too, whose schools are then those of every staff id staged for them.
   */
  async stageKept(): Promise<void> {
    const sql = this.sql;
    const d = Number(this.districtId);
    const main = sql.main;
    const keyedUsers = keyedStage(sql, "users");
    for (const entity of ENTITY_NAMES) {
      // Rows rejected after their file was read (ambiguous dates) are in the table too.
      if (!sqlTrue(await sql.value(`SELECT EXISTS (SELECT 1 FROM ${keptTable(sql, entity)})`))) continue;
      const table = rosterTable(entity);
      // The district has no live rows of the entity (its keyed stage is its first partition): none to keep.
      if (sql.stagedDistrictPartition(table.live) !== null) continue;
      const columns = allColumns(table).map(q);
      const lColumns = allColumns(table).map((c) => `l.${q(c)}`).join(", ");
      const userKey = [q("user_key")];
      let inserted = 0;
      if (entity !== "users") {
        const on = table.key.map((c) => `l.${q(c)} = k.${q(c)}`).join(" AND ");
        inserted = await sql.run(
          sql.insertOrIgnore(
            keyedStage(sql, entity),
            columns,
            `SELECT DISTINCT ${lColumns} FROM ${keptTable(sql, entity)} k ${sql.drivingJoin} ${main}${q(table.live)} l ON l.district_id = ${d} AND ${on}`,
            table.key.map(q),
          ),
        );
      } else {
        const kept = keptTable(sql, "users");
        inserted += await sql.run(
          sql.insertOrIgnore(
            keyedUsers,
            columns,
            `SELECT DISTINCT ${lColumns} FROM ${kept} k ${sql.drivingJoin} ${main}roster_users l
             ON l.district_id = ${d} AND l.user_key = 'student-' || k.district_user_id WHERE k.scope = 'student'`,
            userKey,
          ),
        );
        const staffIds = `SELECT DISTINCT s.district_user_id, s.user_key, s.school_id FROM ${kept} k ${sql.drivingJoin} ${main}roster_staff_ids s
             ON s.district_id = ${d} AND s.district_user_id = k.district_user_id WHERE k.scope = 'staff'`;
        const keptStaff = await sql.run(sql.insertOrIgnore(keyedStage(sql, "staff_ids"), ["district_user_id", "user_key", "school_id"], staffIds, ["district_user_id"]));
        inserted += keptStaff;
        if (keptStaff > 0) {
          // The person as they are live when the kept row was their first (whose fields the person carries), else as staged from their other rows.
          await sql.exec(
            sql.insertOrReplace(
              keyedUsers,
              columns,
              `SELECT ${lColumns} FROM ${main}roster_users l
            WHERE l.district_id = ${d} AND l.scope = 'staff' AND l.district_user_id IN (SELECT district_user_id FROM ${kept} WHERE scope = 'staff')`,
              userKey,
            ),
          );
          await sql.exec(
            sql.insertOrIgnore(
              keyedUsers,
              columns,
              `SELECT ${lColumns} FROM ${main}roster_users l
            WHERE l.district_id = ${d} AND l.user_key IN (SELECT user_key FROM (${staffIds}) ids)`,
              userKey,
            ),
          );
          await sql.exec(`UPDATE ${keyedUsers} SET school_ids = (
              SELECT ${sql.jsonGroupArray("school_id")} FROM (
                SELECT DISTINCT s.school_id FROM ${keyedStage(sql, "staff_ids")} s WHERE s.user_key = ${keyedUsers}.user_key AND s.school_id IS NOT NULL ORDER BY s.school_id) schools)
            WHERE user_key IN (SELECT user_key FROM (${staffIds}) ids)`);
        }
      }
      this.#kept.set(entity, inserted);
    }
  }
}

/** What a record of the entity is to rows pointing at it: the References target and id. */
function targetOf(entity: EntityName, key: readonly string[]): { target: Target; id: string } | null {
  switch (entity) {
    case "schools":
      return { target: "schools", id: key[0]! };
    case "courses":
      return { target: "courses", id: key[0]! };
    case "terms":
      return { target: "terms", id: `${key[0]}\u0000${key[1]}` };
    case "users":
      return { target: key[0] === "student" ? "students" : "staff", id: key[1]! };
    case "classes":
      return { target: "classes", id: key[0]! };
    case "enrollments":
      return null;
  }
}

function describe(entity: EntityName, key: readonly string[], stem: string): string {
  switch (entity) {
    case "users":
      return key[0] === "student" ? `student ${key[1]}` : `${stem === "teachers" ? "teacher" : "staff member"} ${key[1]}`;
    case "enrollments":
      return `student ${key[1]} in class ${key[0]}`;
    case "terms":
      return key[1] === "" ? `term ${key[0]}` : `term ${key[0]} of school ${key[1]}`;
    default:
      return `${entity === "classes" ? "class" : entity.slice(0, -1)} ${key[0]}`;
  }
}
