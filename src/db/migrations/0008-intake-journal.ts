import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * How far each intake journal (deliveries/intake-journal.ts) has been moved into the database,
 * written in the same transaction as the events it covers: moving an event again after a crash
 * between that commit and its removal from the journal is a no-op. Keyed by the journal's own id,
 * so a journal created afresh starts from nothing.
 */
export function intakeJournalMigration(_d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("intake_journal_progress")
        .addColumn("journal_id", "text", (c) => c.primaryKey())
        .addColumn("moved_through", "integer", (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("intake_journal_progress").execute();
    },
  };
}
