import { sql } from "../kysely.ts";
import type { CreateTableBuilder, Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * The live roster (one set of tables shared by every district, each row scoped by
 * `district_id`), the per-sync issues, and the change log that rollback and the change feed
 * read. Roster tables are keyed by (district_id, natural key) and, in SQLite, stored
 * WITHOUT ROWID: clustered by key, a sync's diff is an ordered merge and its inserts append.
 * No foreign keys: the sync engine checks references itself, and FK checks on millions of
 * enrollment rows would dominate the apply.
 */
export function rosterMigration(d: DialectInfo): Migration {
  const keyed = <T extends string, C extends string>(table: CreateTableBuilder<T, C>, name: string, key: C[]) => {
    const withKey = table.addPrimaryKeyConstraint(`${name}_pkey`, key);
    return d.name === "sqlite" ? withKey.modifyEnd(sql`without rowid`) : withKey;
  };
  return {
    async up(db: Kysely<any>) {
      await keyed(
        db.schema
          .createTable("roster_schools")
          .addColumn("district_id", "integer", (c) => c.notNull())
          .addColumn("school_id", "text", (c) => c.notNull())
          .addColumn("school_name", "text", (c) => c.notNull())
          .addColumn("school_number", "text")
          .addColumn("state_id", "text")
          .addColumn("low_grade", "text")
          .addColumn("high_grade", "text")
          .addColumn("last_sync_id", "integer", (c) => c.notNull()),
        "roster_schools",
        ["district_id", "school_id"],
      ).execute();

      await keyed(
        db.schema
          .createTable("roster_courses")
          .addColumn("district_id", "integer", (c) => c.notNull())
          .addColumn("course_id", "text", (c) => c.notNull())
          .addColumn("course_name", "text", (c) => c.notNull())
          .addColumn("school_id", "text")
          .addColumn("last_sync_id", "integer", (c) => c.notNull()),
        "roster_courses",
        ["district_id", "course_id"],
      ).execute();

      // school_id is '' for a district-wide term: a key column cannot be null.
      await keyed(
        db.schema
          .createTable("roster_terms")
          .addColumn("district_id", "integer", (c) => c.notNull())
          .addColumn("term_id", "text", (c) => c.notNull())
          .addColumn("school_id", "text", (c) => c.notNull())
          .addColumn("term_name", "text", (c) => c.notNull())
          .addColumn("start_date", "text", (c) => c.notNull())
          .addColumn("end_date", "text", (c) => c.notNull())
          .addColumn("last_sync_id", "integer", (c) => c.notNull()),
        "roster_terms",
        ["district_id", "term_id", "school_id"],
      ).execute();

      // One row per person: user_key is the API's sourcedId (student-<id>, staff-<teacher_number>, staff-id-<id>).
      await keyed(
        db.schema
          .createTable("roster_users")
          .addColumn("district_id", "integer", (c) => c.notNull())
          .addColumn("user_key", "text", (c) => c.notNull())
          .addColumn("scope", "text", (c) => c.notNull())
          .addColumn("district_user_id", "text", (c) => c.notNull())
          .addColumn("role", "text", (c) => c.notNull())
          .addColumn("first_name", "text", (c) => c.notNull())
          .addColumn("middle_name", "text")
          .addColumn("last_name", "text", (c) => c.notNull())
          .addColumn("email", "text")
          .addColumn("username", "text")
          .addColumn("school_id", "text")
          .addColumn("school_ids", "text", (c) => c.notNull())
          .addColumn("grade", "text")
          .addColumn("student_number", "text")
          .addColumn("teacher_number", "text")
          .addColumn("state_id", "text")
          .addColumn("birth_date", "text")
          .addColumn("last_sync_id", "integer", (c) => c.notNull()),
        "roster_users",
        ["district_id", "user_key"],
      ).execute();

      // Every staff id a file may use (PowerSchool: one Teachers.ID per school) → the person.
      await keyed(
        db.schema
          .createTable("roster_staff_ids")
          .addColumn("district_id", "integer", (c) => c.notNull())
          .addColumn("district_user_id", "text", (c) => c.notNull())
          .addColumn("user_key", "text", (c) => c.notNull())
          .addColumn("school_id", "text")
          .addColumn("last_sync_id", "integer", (c) => c.notNull()),
        "roster_staff_ids",
        ["district_id", "district_user_id"],
      ).execute();

      await keyed(
        db.schema
          .createTable("roster_classes")
          .addColumn("district_id", "integer", (c) => c.notNull())
          .addColumn("class_id", "text", (c) => c.notNull())
          .addColumn("class_name", "text", (c) => c.notNull())
          .addColumn("school_id", "text", (c) => c.notNull())
          .addColumn("course_id", "text", (c) => c.notNull())
          .addColumn("teacher_id", "text", (c) => c.notNull())
          .addColumn("teacher_key", "text", (c) => c.notNull())
          .addColumn("term_id", "text")
          .addColumn("section_number", "text")
          .addColumn("period", "text")
          .addColumn("room", "text")
          .addColumn("last_sync_id", "integer", (c) => c.notNull()),
        "roster_classes",
        ["district_id", "class_id"],
      ).execute();

      await keyed(
        db.schema
          .createTable("roster_enrollments")
          .addColumn("district_id", "integer", (c) => c.notNull())
          .addColumn("class_id", "text", (c) => c.notNull())
          .addColumn("student_id", "text", (c) => c.notNull())
          .addColumn("start_date", "text")
          .addColumn("end_date", "text")
          .addColumn("last_sync_id", "integer", (c) => c.notNull()),
        "roster_enrollments",
        ["district_id", "class_id", "student_id"],
      ).execute();

      // The change log: ids only grow, so an id is a change-feed cursor. A sync's changes are one
      // contiguous id range (one writer, one transaction), recorded in roster_changesets.
      await d
        .addId(db.schema.createTable("roster_changes"))
        .addColumn("sync_id", "integer", (c) => c.notNull())
        .addColumn("district_id", "integer", (c) => c.notNull())
        .addColumn("entity", "text", (c) => c.notNull())
        .addColumn("key", "text", (c) => c.notNull())
        .addColumn("op", "text", (c) => c.notNull())
        .addColumn("before_json", "text")
        .addColumn("after_json", "text")
        .execute();

      await d
        .addId(db.schema.createTable("roster_changesets"))
        .addColumn("sync_id", "integer", (c) => c.notNull().references("syncs.id"))
        .addColumn("district_id", "integer", (c) => c.notNull().references("districts.id"))
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("first_change_id", d.bigint, (c) => c.notNull())
        .addColumn("last_change_id", d.bigint, (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("rolled_back_at", "text")
        .execute();
      await db.schema.createIndex("roster_changesets_district").on("roster_changesets").columns(["district_id", "id"]).execute();
      await db.schema.createIndex("roster_changesets_sync").on("roster_changesets").column("sync_id").execute();

      await d
        .addId(db.schema.createTable("sync_issues"))
        .addColumn("sync_id", "integer", (c) => c.notNull().references("syncs.id"))
        .addColumn("file", "text", (c) => c.notNull())
        .addColumn("row", "integer")
        .addColumn("column", "text")
        .addColumn("value", "text")
        .addColumn("code", "text", (c) => c.notNull())
        .addColumn("severity", "text", (c) => c.notNull())
        .addColumn("message", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("sync_issues_sync").on("sync_issues").columns(["sync_id", "id"]).execute();
    },
    async down(db: Kysely<any>) {
      for (const table of [
        "sync_issues",
        "roster_changesets",
        "roster_changes",
        "roster_enrollments",
        "roster_classes",
        "roster_staff_ids",
        "roster_users",
        "roster_terms",
        "roster_courses",
        "roster_schools",
      ]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
