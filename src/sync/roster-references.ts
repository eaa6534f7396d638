import type { RosterEntity } from "./roster-tables.ts";

/**
 * One way a live roster row points at another: the references that must never dangle. The sync
 * engine deletes a row's dependents with it (plan-cascade.ts) and `rosterdock doctor` checks
 * that none dangles (roster-doctor.ts). SQL fragments take the aliases of a dependent row (`d`)
 * and of a target key row (`t`, which has the target table's key columns).
 */
export interface ReferenceEdge {
  from: RosterEntity;
  to: RosterEntity;
  /** The dependent's column, as people know it. */
  column: string;
  /** The dependent row has a reference to check. */
  when(d: string): string;
  /** `d` points at `t`, written to use the target's key (a lookup from a dependent). */
  matches(d: string, t: string): string;
  /** The same, written to use the dependent's index (a lookup from a target key): `matches` unless an expression is in the way. */
  matchesFromTarget?(d: string, t: string): string;
  /** The live dependent table has an index leading with the reference (after district_id). */
  indexed: boolean;
  /** Checked only when the district has rows of the target at all (courses and terms files are optional). */
  optionalTarget?: boolean;
  /** The class's term is its school's term or a district-wide one (school_id ''): either resolves it. */
  termOfSchool?: boolean;
}

const eq = (column: string, targetColumn = column) => (d: string, t: string) => `${d}."${column}" = ${t}."${targetColumn}"`;
const notNull = (column: string) => (d: string) => `${d}."${column}" IS NOT NULL`;

/** In the order of ROSTER_TABLES' dependents: a target's cascade is known before its dependents are looked at. */
export const REFERENCE_EDGES: readonly ReferenceEdge[] = [
  { from: "courses", to: "schools", column: "school_id", when: notNull("school_id"), matches: eq("school_id"), indexed: false },
  { from: "terms", to: "schools", column: "school_id", when: (d) => `${d}."school_id" <> ''`, matches: eq("school_id"), indexed: false },
  { from: "users", to: "schools", column: "school_id", when: notNull("school_id"), matches: eq("school_id"), indexed: true },
  { from: "staff_ids", to: "schools", column: "school_id", when: notNull("school_id"), matches: eq("school_id"), indexed: true },
  { from: "staff_ids", to: "users", column: "user_key", when: () => "1 = 1", matches: eq("user_key"), indexed: false },
  { from: "classes", to: "schools", column: "school_id", when: () => "1 = 1", matches: eq("school_id"), indexed: true },
  { from: "classes", to: "courses", column: "course_id", when: () => "1 = 1", matches: eq("course_id"), indexed: true, optionalTarget: true },
  { from: "classes", to: "staff_ids", column: "teacher_id", when: () => "1 = 1", matches: eq("teacher_id", "district_user_id"), indexed: false },
  { from: "classes", to: "users", column: "teacher_key", when: () => "1 = 1", matches: eq("teacher_key", "user_key"), indexed: true },
  {
    from: "classes",
    to: "terms",
    column: "term_id",
    when: notNull("term_id"),
    matches: (d, t) => `${t}."term_id" = ${d}."term_id" AND ${t}."school_id" IN (${d}."school_id", '')`,
    indexed: true,
    optionalTarget: true,
    termOfSchool: true,
  },
  { from: "enrollments", to: "classes", column: "class_id", when: () => "1 = 1", matches: eq("class_id"), indexed: true },
  {
    from: "enrollments",
    to: "users",
    column: "student_id",
    when: () => "1 = 1",
    matches: (d, t) => `${t}."user_key" = 'student-' || ${d}."student_id"`,
    matchesFromTarget: (d, t) => `${d}."student_id" = substr(${t}."user_key", 9) AND substr(${t}."user_key", 1, 8) = 'student-'`,
    indexed: true,
  },
];
