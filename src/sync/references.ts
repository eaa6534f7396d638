import type { RecognisedFile } from "../intake/recognise-file.ts";
import type { RosterSource } from "../intake/unpack.ts";
import type { EntityName, Scope } from "../spec/roster-spec.ts";
import { makeIssue, showValue } from "../intake/issue.ts";
import type { Issue } from "../intake/issue.ts";
import type { RejectedAt } from "./kept-records.ts";
import { presentParts } from "./present-parts.ts";
import type { PresentParts } from "./present-parts.ts";
import { removedTable } from "./roster-tables.ts";
import type { EngineSql } from "./engine-sql.ts";

/**
 * Ids kept as numbers when they are plain decimal integers: a fraction of the memory of strings.
 * Small ones (PowerSchool's ids) are bits in a bitmap, which grows with the largest id seen: a
 * lookup per enrollment row is then one array read instead of a hash probe.
 */
export class IdSet {
  #bits = new Uint32Array(1024);
  #bitCount = 0;
  readonly #numbers = new Set<number>();
  readonly #strings = new Set<string>();

  get size(): number {
    return this.#bitCount + this.#numbers.size + this.#strings.size;
  }

  add(id: string): void {
    const n = plainInteger(id);
    if (n < 0) this.#strings.add(id);
    else if (n >= BITMAP_LIMIT) this.#numbers.add(n);
    else {
      const word = n >>> 5;
      if (word >= this.#bits.length) this.#grow(word);
      const mask = 1 << (n & 31);
      if ((this.#bits[word]! & mask) === 0) {
        this.#bits[word]! |= mask;
        this.#bitCount++;
      }
    }
  }

  delete(id: string): void {
    const n = plainInteger(id);
    if (n < 0) this.#strings.delete(id);
    else if (n >= BITMAP_LIMIT) this.#numbers.delete(n);
    else {
      const word = n >>> 5;
      const mask = 1 << (n & 31);
      if (word < this.#bits.length && (this.#bits[word]! & mask) !== 0) {
        this.#bits[word]! &= ~mask;
        this.#bitCount--;
      }
    }
  }

  has(id: string): boolean {
    const n = plainInteger(id);
    if (n < 0) return this.#strings.has(id);
    if (n >= BITMAP_LIMIT) return this.#numbers.has(n);
    const word = n >>> 5;
    return word < this.#bits.length && (this.#bits[word]! & (1 << (n & 31))) !== 0;
  }

  #grow(word: number): void {
    let length = this.#bits.length;
    while (length <= word) length *= 2;
    const bits = new Uint32Array(length);
    bits.set(this.#bits);
    this.#bits = bits;
  }
}

/** Ids below this are bits (at most 4 MiB per set); larger ones go to a Set. */
const BITMAP_LIMIT = 2 ** 25;

/** The value of a plain decimal integer id (no sign, no leading zero, at most 15 digits), else -1. */
function plainInteger(id: string): number {
  const length = id.length;
  if (length === 0 || length > 15) return -1;
  let n = 0;
  for (let i = 0; i < length; i++) {
    const digit = id.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9 || (digit === 0 && i === 0)) return -1;
    n = n * 10 + digit;
  }
  return n;
}

export type Target = "schools" | "courses" | "terms" | "students" | "staff" | "classes";

interface TargetState {
  /** Tonight's file(s) for the target, or null when checked against the live roster. */
  files: string[] | null;
  /** Null: not checked at all (an optional file the district does not send). */
  ids: IdSet | null;
}

const TARGET_NOUN: Record<Target, string> = {
  schools: "a school",
  courses: "a course",
  terms: "a term (of the class's school)",
  students: "a student",
  staff: "a staff member",
  classes: "a class",
};

/**
 * What rows may point at: ids staged so far tonight (targets are staged before the rows that
 * point at them), or, for a part absent from tonight's delivery, the live roster's ids.
 */
export class References {
  readonly #targets = new Map<Target, TargetState>();
  /** Staff id → person (user_key), for classes.teacher_key. */
  readonly staffKeys = new Map<string, string>();
  /** Course id → name, for class names. */
  readonly courseNames = new Map<string, string>();
  /** Ids of rejected rows that were not live records, by target: rows pointing at them say why they are missing. */
  readonly #rejected = new Map<Target, Map<string, RejectedAt>>();

  private constructor(
    private readonly sql: EngineSql,
    private readonly districtId: number,
  ) {}

  /** Tonight's targets, and the live ids of the parts absent from tonight's delivery. */
  static async create(
    sql: EngineSql,
    districtId: number,
    present: PresentParts,
    recognised: ReadonlyArray<{ source: RosterSource; file: RecognisedFile }>,
  ): Promise<References> {
    const refs = new References(sql, districtId);
    const filesOf = (entity: EntityName, scope?: Scope) =>
      recognised
        .filter((r) => r.file.entity === entity && (scope === undefined || presentParts([r.file]).userScopes.has(scope)))
        .map((r) => r.source.name);
    const state = async (isPresent: boolean, files: string[], loadLive: () => Promise<IdSet | null>): Promise<TargetState> =>
      isPresent ? { files, ids: new IdSet() } : { files: null, ids: await loadLive() };
    const main = sql.main;
    const targets = refs.#targets;
    targets.set("schools", await state(present.entities.has("schools"), filesOf("schools"), () => refs.#live(`SELECT school_id FROM ${main}roster_schools WHERE district_id = ?`)));
    targets.set(
      "courses",
      await state(present.entities.has("courses"), filesOf("courses"), async () => {
        await sql.each<{ course_id: string; course_name: string }>(`SELECT course_id, course_name FROM ${main}roster_courses WHERE district_id = ?`, [districtId], (r) => {
          refs.courseNames.set(r.course_id, r.course_name);
        });
        if (refs.courseNames.size === 0) return null;
        const ids = new IdSet();
        for (const id of refs.courseNames.keys()) ids.add(id);
        return ids;
      }),
    );
    targets.set(
      "terms",
      await state(present.entities.has("terms"), filesOf("terms"), async () => {
        const ids = new IdSet();
        await sql.each<{ term_id: string; school_id: string }>(`SELECT term_id, school_id FROM ${main}roster_terms WHERE district_id = ?`, [districtId], (r) => {
          ids.add(`${r.term_id}\u0000${r.school_id}`);
        });
        return ids.size === 0 ? null : ids;
      }),
    );
    targets.set(
      "students",
      await state(present.userScopes.has("student"), filesOf("users", "student"), () =>
        refs.#live(`SELECT district_user_id FROM ${main}roster_users WHERE district_id = ? AND scope = 'student'`),
      ),
    );
    targets.set(
      "staff",
      await state(present.userScopes.has("staff"), filesOf("users", "staff"), async () => {
        const ids = new IdSet();
        await sql.each<{ district_user_id: string; user_key: string }>(`SELECT district_user_id, user_key FROM ${main}roster_staff_ids WHERE district_id = ?`, [districtId], (r) => {
          ids.add(r.district_user_id);
          refs.staffKeys.set(r.district_user_id, r.user_key);
        });
        return ids;
      }),
    );
    targets.set("classes", await state(present.entities.has("classes"), filesOf("classes"), () => refs.#live(`SELECT class_id FROM ${main}roster_classes WHERE district_id = ?`)));
    return refs;
  }

  /** The ids of a one-column query of the district's live rows. */
  async #live(query: string): Promise<IdSet> {
    const ids = new IdSet();
    await this.sql.eachValue<string>(query, [this.districtId], (id) => ids.add(id));
    return ids;
  }

  /** True when the id is known, or when the target is not checked. */
  has(target: Target, id: string): boolean {
    const ids = this.#targets.get(target)!.ids;
    return ids === null || ids.has(id);
  }

  hasTerm(termId: string, schoolId: string): boolean {
    const ids = this.#targets.get("terms")!.ids;
    return ids === null || ids.has(`${termId}\u0000${schoolId}`) || ids.has(`${termId}\u0000`);
  }

  add(target: Target, id: string): void {
    this.#targets.get(target)!.ids?.add(id);
  }

  /** A rejected row was the only row of this id tonight (see KeptRecords). The first rejection is kept. */
  reject(target: Target, id: string, at: RejectedAt): void {
    let ids = this.#rejected.get(target);
    if (ids === undefined) this.#rejected.set(target, (ids = new Map()));
    if (!ids.has(id)) ids.set(id, at);
  }

  /** Where the row of a missing id was rejected, if it was. */
  rejectedAt(target: Target, id: string): RejectedAt | undefined {
    const ids = this.#rejected.get(target);
    if (ids === undefined) return undefined;
    return target === "terms" ? (ids.get(id) ?? ids.get(id.slice(0, id.indexOf("\u0000") + 1))) : ids.get(id);
  }

  drop(target: Target, id: string): void {
    this.#targets.get(target)!.ids?.delete(id);
  }

  /**
   * A students file read against its line digest staged only changed lines: tonight's other
   * students are the live ones whose lines came back (not in `stage.removed_users`).
   */
  async fillUnchangedStudents(): Promise<void> {
    const ids = this.#targets.get("students")!.ids!;
    const query = `SELECT u.district_user_id FROM ${this.sql.main}roster_users u WHERE u.district_id = ? AND u.scope = 'student'
      AND NOT EXISTS (SELECT 1 FROM ${removedTable(this.sql, "users")} r WHERE r.user_key = u.user_key)`;
    await this.sql.eachValue<string>(query, [this.districtId], (id) => ids.add(id));
  }

  /** Live ids of a target that tonight's files do not have (nothing when the target is not checked). */
  async gone(target: "schools"): Promise<string[]> {
    if (this.#targets.get(target)!.files === null) return [];
    const ids = await this.sql.column<string>(`SELECT school_id FROM ${this.sql.main}roster_schools WHERE district_id = ?`, [this.districtId]);
    return ids.filter((id) => !this.has(target, id));
  }

  /**
   * The issue of a row pointing at an id that is missing tonight, and why it is missing in a few
   * words (for rows that point at this row in turn). A missing id whose own row was rejected or
   * left out says so; only an id truly absent is "not in" the file.
   */
  orphanIssue(at: { file: string; row: number; column: string }, target: Target, value: string, id = value): { issue: Issue; why: string } {
    const rejected = this.rejectedAt(target, id);
    if (rejected !== undefined) {
      const detail = `${rejected.file === at.file ? "" : `${rejected.file} `}row ${rejected.row}: ${rejected.reason}`;
      return {
        issue: makeIssue("REJECTED_REFERENCE", { ...at, value, expected: TARGET_NOUN[target], detail }),
        why: `${at.column} ${showValue(value)} is ${TARGET_NOUN[target]} whose row was left out (${detail})`,
      };
    }
    const expected = this.expected(target);
    return { issue: makeIssue("UNKNOWN_REFERENCE", { ...at, value, ...expected }), why: `${at.column} ${showValue(value)} is not ${expected.expected}` };
  }

  /** "a school in schools.csv", or "a school in the roster" when tonight's delivery has none. */
  expected(target: Target): { expected: string; detail: string } {
    const files = this.#targets.get(target)!.files;
    const noun = TARGET_NOUN[target];
    if (files === null) return { expected: `${noun} in the roster (tonight's delivery has no ${target} file)`, detail: target };
    return { expected: `${noun} in ${files.join(" or ") || "tonight's files"}`, detail: files.join(", ") || target };
  }
}
