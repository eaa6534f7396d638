import type { EntityName } from "../spec/roster-spec.ts";

/** What a sync diffs and applies: the spec's entities plus the staff-id map behind `classes.teacher_id`. */
export type RosterEntity = EntityName | "staff_ids";

export interface RosterTable {
  readonly entity: RosterEntity;
  /** Live table (main database); staged rows are loaded into `stage.<entity>`, then clustered by key into `keyedStage(entity)`. */
  readonly live: string;
  /** Natural key, without district_id. */
  readonly key: readonly string[];
  /** Compared and stored columns besides the key. */
  readonly columns: readonly string[];
  /**
   * Columns computed from others, as SQL over a logged row's JSON: what a rollback restores for
   * them from a change logged before they existed (the sync connection has `collation_key()`).
   */
  readonly derived?: Readonly<Record<string, (json: string) => string>>;
}

/** In dependency order: a table's references point at tables before it. */
export const ROSTER_TABLES: readonly RosterTable[] = [
  { entity: "schools", live: "roster_schools", key: ["school_id"], columns: ["school_name", "school_number", "state_id", "low_grade", "high_grade"] },
  { entity: "courses", live: "roster_courses", key: ["course_id"], columns: ["course_name", "school_id"] },
  { entity: "terms", live: "roster_terms", key: ["term_id", "school_id"], columns: ["term_name", "start_date", "end_date"] },
  {
    entity: "users",
    live: "roster_users",
    key: ["user_key"],
    columns: [
      "scope",
      "district_user_id",
      "role",
      "first_name",
      "middle_name",
      "last_name",
      "email",
      "username",
      "school_id",
      "school_ids",
      "grade",
      "student_number",
      "teacher_number",
      "state_id",
      "birth_date",
      "gender",
      // Sort keys of the names (collation-key.ts), written with them.
      "family_name_key",
      "given_name_key",
    ],
    derived: {
      family_name_key: (json) => `collation_key(json_extract(${json}, '$.last_name'))`,
      given_name_key: (json) => `collation_key(json_extract(${json}, '$.first_name'))`,
    },
  },
  { entity: "staff_ids", live: "roster_staff_ids", key: ["district_user_id"], columns: ["user_key", "school_id"] },
  {
    entity: "classes",
    live: "roster_classes",
    key: ["class_id"],
    columns: ["class_name", "school_id", "course_id", "teacher_id", "teacher_key", "term_id", "section_number", "period", "room"],
  },
  { entity: "enrollments", live: "roster_enrollments", key: ["class_id", "student_id"], columns: ["start_date", "end_date"] },
];

export function rosterTable(entity: RosterEntity): RosterTable {
  return ROSTER_TABLES.find((t) => t.entity === entity)!;
}

/**
 * The staged rows of an entity clustered by the live table's key (WITHOUT ROWID, filled by one
 * sort after loading): plan and apply read both sides in key order, as merges.
 */
export function keyedStage(sql: StagingSpace, entity: RosterEntity): string {
  return `${sql.stage}${q(`${entity}_keyed`)}`;
}

/** Where the sync's staging tables are (see EngineSql.stage). */
export interface StagingSpace {
  readonly stage: string;
}

/** A staging table by its unqualified name. */
export function staged(sql: StagingSpace, name: string): string {
  return `${sql.stage}${q(name)}`;
}

/** Keys of live rows a second night looks at again: their lines did not come back (see unchanged-lines.ts). */
export function removedTable(sql: StagingSpace, entity: RosterEntity): string {
  return `${sql.stage}${q(`removed_${entity}`)}`;
}

export function allColumns(table: RosterTable): string[] {
  return [...table.key, ...table.columns];
}

/** Entities reported in a sync's `counts` (the staff-id map is an internal detail of users). */
export const COUNTED_ENTITIES: readonly EntityName[] = ["schools", "users", "classes", "enrollments", "courses", "terms"];

export interface ChangeCounts {
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  /** Live records kept as they were because their row was rejected tonight (present only when some were). */
  kept?: number;
}

export type SyncCounts = Record<EntityName, ChangeCounts>;

export function emptyCounts(): SyncCounts {
  return Object.fromEntries(COUNTED_ENTITIES.map((e) => [e, { created: 0, updated: 0, deleted: 0, unchanged: 0 }])) as SyncCounts;
}

/** The API's sourcedId for a user. Student and staff ids are separate sequences, hence the prefix. */
export function userKey(scope: "student" | "staff", districtUserId: string, teacherNumber: string | null): string {
  if (scope === "student") return `student-${districtUserId}`;
  return teacherNumber === null ? `staff-id-${districtUserId}` : `staff-${teacherNumber}`;
}

/** Double-quoted SQL identifier. Only our own constant names pass through here. */
export function q(name: string): string {
  return `"${name}"`;
}
