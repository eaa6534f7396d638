import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/** Districts, credentials, host keys, uploads, deliveries, syncs, jobs, API tokens and the audit trail. */
export function foundationMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await d
        .addId(db.schema.createTable("districts"))
        .addColumn("slug", "text", (c) => c.notNull().unique())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("allow_ips", "text", (c) => c.notNull())
        .addColumn("settings", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();

      await d
        .addId(db.schema.createTable("credentials"))
        .addColumn("district_id", "integer", (c) => c.notNull().references("districts.id"))
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("username", "text", (c) => c.notNull())
        .addColumn("secret_hash", "text")
        .addColumn("public_key", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("revoked_at", "text")
        .execute();
      await db.schema.createIndex("credentials_username").on("credentials").columns(["username", "revoked_at"]).execute();

      await db.schema
        .createTable("host_keys")
        .addColumn("algorithm", "text", (c) => c.primaryKey())
        .addColumn("private_key", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();

      await d
        .addId(db.schema.createTable("deliveries"))
        .addColumn("district_id", "integer", (c) => c.notNull().references("districts.id"))
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("opened_at", "text", (c) => c.notNull())
        .addColumn("last_upload_at", "text", (c) => c.notNull())
        .addColumn("closed_at", "text")
        .execute();
      await db.schema.createIndex("deliveries_open").on("deliveries").columns(["status", "district_id"]).execute();

      await d
        .addId(db.schema.createTable("uploads"))
        .addColumn("district_id", "integer", (c) => c.notNull().references("districts.id"))
        .addColumn("delivery_id", "integer", (c) => c.references("deliveries.id"))
        .addColumn("path", "text", (c) => c.notNull())
        .addColumn("size", d.bigint, (c) => c.notNull())
        .addColumn("sha256", "text")
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("stored_path", "text")
        .addColumn("client_ip", "text", (c) => c.notNull())
        .addColumn("client_version", "text", (c) => c.notNull())
        .addColumn("started_at", "text", (c) => c.notNull())
        .addColumn("finished_at", "text", (c) => c.notNull())
        .addColumn("reason", "text")
        .execute();
      await db.schema.createIndex("uploads_district").on("uploads").columns(["district_id", "id"]).execute();
      await db.schema.createIndex("uploads_delivery").on("uploads").column("delivery_id").execute();

      await d
        .addId(db.schema.createTable("syncs"))
        .addColumn("district_id", "integer", (c) => c.notNull().references("districts.id"))
        .addColumn("delivery_id", "integer", (c) => c.references("deliveries.id").unique())
        .addColumn("source", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addColumn("counts", "text", (c) => c.notNull())
        .addColumn("summary", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("syncs_district").on("syncs").columns(["district_id", "id"]).execute();

      await d
        .addId(db.schema.createTable("sync_files"))
        .addColumn("sync_id", "integer", (c) => c.notNull().references("syncs.id"))
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("size", d.bigint, (c) => c.notNull())
        .addColumn("sha256", "text", (c) => c.notNull())
        .addColumn("stored_path", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("sync_files_sync").on("sync_files").column("sync_id").execute();

      await d
        .addId(db.schema.createTable("jobs"))
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("run_after", "text", (c) => c.notNull())
        .addColumn("locked_at", "text")
        .addColumn("last_error", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("jobs_ready").on("jobs").columns(["status", "run_after"]).execute();

      await d
        .addId(db.schema.createTable("api_tokens"))
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("lookup", "text", (c) => c.notNull().unique())
        .addColumn("secret_hash", "text", (c) => c.notNull())
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("last_used_at", "text")
        .addColumn("revoked_at", "text")
        .execute();

      await d
        .addId(db.schema.createTable("audit_events"))
        .addColumn("at", "text", (c) => c.notNull())
        .addColumn("actor", "text", (c) => c.notNull())
        .addColumn("action", "text", (c) => c.notNull())
        .addColumn("district_id", "integer", (c) => c.references("districts.id"))
        .addColumn("details", "text", (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<any>) {
      for (const table of ["audit_events", "api_tokens", "jobs", "sync_files", "syncs", "uploads", "deliveries", "host_keys", "credentials", "districts"]) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
