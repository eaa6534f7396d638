import { sql } from "../kysely.ts";
import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * At most one open delivery per district. Uploads finishing at the same moment each look for the
 * open delivery; on PostgreSQL they run side by side, and without this index each could open its
 * own (SQLite serialises them, so existing databases hold no duplicates).
 */
export function oneOpenDeliveryMigration(_d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await db.schema.createIndex("deliveries_one_open").on("deliveries").column("district_id").unique().where(sql.ref("status"), "=", "open").execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropIndex("deliveries_one_open").execute();
    },
  };
}
