import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * One-time links that hand a district its SFTP credentials. A row holds the link's lookup hash
 * and the password sealed under a key only the link itself carries; the sealed password is
 * cleared once revealed, revoked, replaced or expired, and the row stays as the link's history.
 */
export function credentialHandoffsMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await d
        .addId(db.schema.createTable("credential_handoffs"))
        .addColumn("district_id", "integer", (c) => c.notNull().references("districts.id"))
        .addColumn("lookup", "text", (c) => c.notNull().unique())
        .addColumn("sealed_password", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("created_by", "text", (c) => c.notNull())
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addColumn("revealed_at", "text")
        .addColumn("revealed_from", "text")
        .addColumn("ended_at", "text")
        .addColumn("ended_reason", "text")
        .execute();
      await db.schema.createIndex("credential_handoffs_district").on("credential_handoffs").columns(["district_id", "ended_at"]).execute();
      await db.schema.createIndex("credential_handoffs_expiry").on("credential_handoffs").column("expires_at").execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("credential_handoffs").execute();
    },
  };
}
