import { sql } from "../kysely.ts";
import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

type Column = readonly [name: string, type: "integer" | "text", notNull: boolean];

/** The roster tables the OneRoster API shows, as 0002 created them (key columns first). */
const MIRRORED: ReadonlyArray<{ entity: string; key: string[]; columns: Column[] }> = [
  {
    entity: "schools",
    key: ["district_id", "school_id"],
    columns: [
      ["district_id", "integer", true],
      ["school_id", "text", true],
      ["school_name", "text", true],
      ["school_number", "text", false],
      ["state_id", "text", false],
      ["low_grade", "text", false],
      ["high_grade", "text", false],
      ["last_sync_id", "integer", true],
    ],
  },
  {
    entity: "courses",
    key: ["district_id", "course_id"],
    columns: [
      ["district_id", "integer", true],
      ["course_id", "text", true],
      ["course_name", "text", true],
      ["school_id", "text", false],
      ["last_sync_id", "integer", true],
    ],
  },
  {
    entity: "terms",
    key: ["district_id", "term_id", "school_id"],
    columns: [
      ["district_id", "integer", true],
      ["term_id", "text", true],
      ["school_id", "text", true],
      ["term_name", "text", true],
      ["start_date", "text", true],
      ["end_date", "text", true],
      ["last_sync_id", "integer", true],
    ],
  },
  {
    entity: "users",
    key: ["district_id", "user_key"],
    columns: [
      ["district_id", "integer", true],
      ["user_key", "text", true],
      ["scope", "text", true],
      ["district_user_id", "text", true],
      ["role", "text", true],
      ["first_name", "text", true],
      ["middle_name", "text", false],
      ["last_name", "text", true],
      ["email", "text", false],
      ["username", "text", false],
      ["school_id", "text", false],
      ["school_ids", "text", true],
      ["grade", "text", false],
      ["student_number", "text", false],
      ["teacher_number", "text", false],
      ["state_id", "text", false],
      ["birth_date", "text", false],
      ["last_sync_id", "integer", true],
    ],
  },
  {
    entity: "classes",
    key: ["district_id", "class_id"],
    columns: [
      ["district_id", "integer", true],
      ["class_id", "text", true],
      ["class_name", "text", true],
      ["school_id", "text", true],
      ["course_id", "text", true],
      ["teacher_id", "text", true],
      ["teacher_key", "text", true],
      ["term_id", "text", false],
      ["section_number", "text", false],
      ["period", "text", false],
      ["room", "text", false],
      ["last_sync_id", "integer", true],
    ],
  },
  {
    entity: "enrollments",
    key: ["district_id", "class_id", "student_id"],
    columns: [
      ["district_id", "integer", true],
      ["class_id", "text", true],
      ["student_id", "text", true],
      ["start_date", "text", false],
      ["end_date", "text", false],
      ["last_sync_id", "integer", true],
    ],
  },
  {
    // The teacher enrollments the API makes from classes: one per (class, teacher) that stopped being one.
    entity: "class_teachers",
    key: ["district_id", "class_id", "teacher_key"],
    columns: [
      ["district_id", "integer", true],
      ["class_id", "text", true],
      ["teacher_key", "text", true],
      ["school_id", "text", true],
    ],
  },
];

/**
 * Indexes of the tombstone tables: `removed_at` for the purge and `dateLastModified>…` filters,
 * and the live tables' API indexes (0004) that order lists, so that a list reads live and removed
 * records in the same index order and merges them without a sort.
 */
const INDEXES: ReadonlyArray<readonly [name: string, table: string, columns: string[]]> = [
  ...MIRRORED.map(({ entity }): readonly [string, string, string[]] => [`tombstones_${entity}_removed`, `tombstones_${entity}`, ["district_id", "removed_at"]]),
  ["tombstones_users_role", "tombstones_users", ["district_id", "role", "user_key"]],
  ["tombstones_users_school", "tombstones_users", ["district_id", "school_id", "user_key"]],
  ["tombstones_users_family_name", "tombstones_users", ["district_id", "last_name", "role", "user_key"]],
  ["tombstones_users_given_name", "tombstones_users", ["district_id", "first_name", "role", "user_key"]],
  ["tombstones_users_email", "tombstones_users", ["district_id", "email"]],
  ["tombstones_classes_school", "tombstones_classes", ["district_id", "school_id", "class_id"]],
  ["tombstones_classes_teacher", "tombstones_classes", ["district_id", "teacher_key", "class_id"]],
  ["tombstones_classes_term", "tombstones_classes", ["district_id", "term_id", "class_id"]],
  ["tombstones_classes_course", "tombstones_classes", ["district_id", "course_id", "class_id"]],
  // No student index on removed enrollments: no list reads them in student order, and a school
  // year's rollover tombstones every enrollment of the district, whose index would be sorted anew.
];

/**
 * Tombstones: records a sync or a rollback removed from the live roster, kept for
 * `ROSTERDOCK_TOMBSTONE_DAYS` so that OneRoster clients reading `dateLastModified>…` see them go
 * (`status: "tobedeleted"`). Each mirrors a live roster table (same columns and key) plus when and
 * by which sync the record was removed; the live tables, which the sync engine diffs, are left
 * exactly as they were. `tombstone_purges` logs each purge; it also moves the API's view of the
 * roster, so no cached response outlives a purge.
 */
export function tombstonesMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      for (const { entity, key, columns } of MIRRORED) {
        let table = db.schema.createTable(`tombstones_${entity}`);
        for (const [name, type, notNull] of columns) table = table.addColumn(name, type, (c) => (notNull ? c.notNull() : c));
        table = table
          .addColumn("removed_at", "text", (c) => c.notNull())
          .addColumn("removed_by_sync_id", "integer", (c) => c.notNull())
          .addPrimaryKeyConstraint(`tombstones_${entity}_pkey`, key as never[]);
        await (d.name === "sqlite" ? table.modifyEnd(sql`without rowid`) : table).execute();
      }
      for (const [name, table, columns] of INDEXES) await db.schema.createIndex(name).on(table).columns(columns).execute();
      await d
        .addId(db.schema.createTable("tombstone_purges"))
        .addColumn("district_id", "integer", (c) => c.notNull())
        .addColumn("purged_at", "text", (c) => c.notNull())
        .addColumn("removed_before", "text", (c) => c.notNull())
        .addColumn("rows", "integer", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("tombstone_purges_district").on("tombstone_purges").columns(["district_id", "id"]).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("tombstone_purges").execute();
      for (const { entity } of [...MIRRORED].reverse()) await db.schema.dropTable(`tombstones_${entity}`).execute();
    },
  };
}
