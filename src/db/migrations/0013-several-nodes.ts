import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * What several nodes on one PostgreSQL share besides accounts and deliveries:
 * - `upload_blobs` / `upload_chunks`: closed uploads stored in the database in ~1 MiB chunks with
 *   their sha256, so that any node's worker can process any delivery (`uploads.stored_path` and
 *   `sync_files.stored_path` then read `pg:<blob id>`). Created on SQLite too, unused there.
 * - `jobs.locked_by` / `jobs.lease_until`: which node runs a job, and until when its lease holds
 *   unless the node renews it; an expired lease may be taken by another node.
 * - `login_failures`: failed logins of every node within the window, so that a guesser spreading
 *   tries over nodes is counted once (expiring rows, pruned by every node).
 */
export function severalNodesMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await d
        .addId(db.schema.createTable("upload_blobs"))
        .addColumn("district_id", "integer", (c) => c.notNull().references("districts.id").onDelete("cascade"))
        .addColumn("size", d.bigint, (c) => c.notNull())
        .addColumn("sha256", "text", (c) => c.notNull())
        .addColumn("chunks", "integer", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("upload_blobs_district").on("upload_blobs").column("district_id").execute();
      await db.schema
        .createTable("upload_chunks")
        .addColumn("blob_id", "integer", (c) => c.notNull().references("upload_blobs.id").onDelete("cascade"))
        .addColumn("seq", "integer", (c) => c.notNull())
        .addColumn("data", d.binary, (c) => c.notNull())
        .addPrimaryKeyConstraint("upload_chunks_pk", ["blob_id", "seq"])
        .execute();
      await db.schema.alterTable("jobs").addColumn("locked_by", "text").execute();
      await db.schema.alterTable("jobs").addColumn("lease_until", "text").execute();
      await d
        .addId(db.schema.createTable("login_failures"))
        .addColumn("address", "text", (c) => c.notNull())
        .addColumn("account", "text", (c) => c.notNull())
        .addColumn("node", "text", (c) => c.notNull())
        .addColumn("failed_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("login_failures_address").on("login_failures").columns(["address", "failed_at"]).execute();
      await db.schema.createIndex("login_failures_failed_at").on("login_failures").column("failed_at").execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("login_failures").execute();
      await db.schema.alterTable("jobs").dropColumn("lease_until").execute();
      await db.schema.alterTable("jobs").dropColumn("locked_by").execute();
      await db.schema.dropTable("upload_chunks").execute();
      await db.schema.dropTable("upload_blobs").execute();
    },
  };
}
