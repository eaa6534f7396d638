import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/** OAuth clients (their access tokens are api_tokens rows that expire), webhook endpoints and their delivery log. */
export function clientsAndWebhooksMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.alterTable("api_tokens").addColumn("expires_at", "text").execute();
      await db.schema.alterTable("api_tokens").addColumn("client_id", "integer").execute();
      await db.schema.alterTable("api_tokens").addColumn("districts", "text").execute();

      await d
        .addId(db.schema.createTable("oauth_clients"))
        .addColumn("client_id", "text", (c) => c.notNull().unique())
        .addColumn("secret_hash", "text", (c) => c.notNull())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("districts", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("revoked_at", "text")
        .execute();

      await d
        .addId(db.schema.createTable("webhook_endpoints"))
        .addColumn("url", "text", (c) => c.notNull())
        .addColumn("district_id", "integer", (c) => c.references("districts.id"))
        .addColumn("events", "text", (c) => c.notNull())
        .addColumn("secret", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("disabled_at", "text")
        .execute();

      await d
        .addId(db.schema.createTable("webhook_deliveries"))
        .addColumn("endpoint_id", "integer", (c) => c.notNull().references("webhook_endpoints.id"))
        .addColumn("event", "text", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("last_status_code", "integer")
        .addColumn("last_error", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("webhook_deliveries_endpoint").on("webhook_deliveries").columns(["endpoint_id", "id"]).execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("webhook_deliveries").execute();
      await db.schema.dropTable("webhook_endpoints").execute();
      await db.schema.dropTable("oauth_clients").execute();
      await db.schema.alterTable("api_tokens").dropColumn("districts").execute();
      await db.schema.alterTable("api_tokens").dropColumn("client_id").execute();
      await db.schema.alterTable("api_tokens").dropColumn("expires_at").execute();
    },
  };
}
