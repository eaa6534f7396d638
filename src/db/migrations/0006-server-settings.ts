import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * What the running server says about itself (the SFTP host and port it really listens on, its
 * public URL), so that CLI commands run from another shell tell districts the server's values.
 */
export function serverSettingsMigration(_d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("server_settings")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("server_settings").execute();
    },
  };
}
