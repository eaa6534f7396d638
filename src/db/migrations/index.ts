import type { Migration, MigrationProvider } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";
import { foundationMigration } from "./0001-foundation.ts";

/** Every migration, in order; each is written once for both dialects. */
export function migrationProvider(dialect: DialectInfo): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return {
        "0001-foundation": foundationMigration(dialect),
      };
    },
  };
}
