import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * Indexes behind the OneRoster API's filters, sorts and nested routes, and the change feed. The
 * primary key columns are listed last so that, in both dialects, an equality on the leading
 * columns yields rows already in sourcedId order (paging without a sort).
 */
const INDEXES: ReadonlyArray<readonly [name: string, table: string, columns: string[]]> = [
  ["roster_users_role", "roster_users", ["district_id", "role", "user_key"]],
  ["roster_users_school", "roster_users", ["district_id", "school_id", "user_key"]],
  ["roster_users_family_name", "roster_users", ["district_id", "last_name", "role", "user_key"]],
  ["roster_users_given_name", "roster_users", ["district_id", "first_name", "role", "user_key"]],
  ["roster_users_email", "roster_users", ["district_id", "email"]],
  ["roster_users_sync", "roster_users", ["district_id", "last_sync_id"]],
  ["roster_staff_ids_school", "roster_staff_ids", ["district_id", "school_id"]],
  ["roster_classes_school", "roster_classes", ["district_id", "school_id", "class_id"]],
  ["roster_classes_teacher", "roster_classes", ["district_id", "teacher_key", "class_id"]],
  ["roster_classes_term", "roster_classes", ["district_id", "term_id", "class_id"]],
  ["roster_classes_course", "roster_classes", ["district_id", "course_id", "class_id"]],
  ["roster_enrollments_student", "roster_enrollments", ["district_id", "student_id", "class_id"]],
  ["roster_changes_district", "roster_changes", ["district_id", "id"]],
];

export function apiIndexesMigration(_d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      for (const [name, table, columns] of INDEXES) await db.schema.createIndex(name).on(table).columns(columns).execute();
    },
    async down(db: Kysely<any>) {
      for (const [name] of INDEXES) await db.schema.dropIndex(name).execute();
    },
  };
}
