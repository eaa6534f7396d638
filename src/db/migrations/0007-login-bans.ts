import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * Bans of client addresses, per address (`account` = '') or per address and account. A row stays
 * after its ban ends, so a repeat offender's next ban is longer (`strikes`); `bans clear` deletes it.
 */
export function loginBansMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      await d
        .addId(db.schema.createTable("login_bans"))
        .addColumn("address", "text", (c) => c.notNull())
        .addColumn("account", "text", (c) => c.notNull())
        .addColumn("reason", "text", (c) => c.notNull())
        .addColumn("failures", "integer", (c) => c.notNull())
        .addColumn("strikes", "integer", (c) => c.notNull())
        .addColumn("banned_at", "text", (c) => c.notNull())
        .addColumn("banned_until", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("login_bans_key").on("login_bans").columns(["address", "account"]).unique().execute();
      await db.schema.createIndex("login_bans_until").on("login_bans").column("banned_until").execute();
    },
    async down(db: Kysely<any>) {
      await db.schema.dropTable("login_bans").execute();
    },
  };
}
