import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * Operators (the vendor's support staff) who sign in to the web console, and their console
 * sessions. Emails are stored lower-cased, so the unique index makes them unique whatever the
 * case they were typed in. Sessions live here, not in memory: a restart keeps them, and disabling
 * an operator deletes theirs.
 */
export function operatorsMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await d
        .addId(db.schema.createTable("operators"))
        .addColumn("email", "text", (c) => c.notNull())
        .addColumn("password_hash", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("disabled_at", "text")
        .addColumn("last_sign_in_at", "text")
        .execute();
      await db.schema.createIndex("operators_email").on("operators").column("email").unique().execute();
      await db.schema
        .createTable("console_sessions")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("operator_id", "integer", (c) => c.references("operators.id").onDelete("cascade"))
        .addColumn("data", "text", (c) => c.notNull())
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("console_sessions_operator").on("console_sessions").column("operator_id").execute();
      await db.schema.createIndex("console_sessions_expires").on("console_sessions").column("expires_at").execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("console_sessions").execute();
      await db.schema.dropTable("operators").execute();
    },
  };
}
