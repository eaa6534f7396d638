import type { Migration, MigrationProvider } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";
import { foundationMigration } from "./0001-foundation.ts";
import { rosterMigration } from "./0002-roster.ts";
import { clientsAndWebhooksMigration } from "./0003-clients-and-webhooks.ts";
import { apiIndexesMigration } from "./0004-api-indexes.ts";
import { oneOpenDeliveryMigration } from "./0005-one-open-delivery.ts";
import { serverSettingsMigration } from "./0006-server-settings.ts";
import { loginBansMigration } from "./0007-login-bans.ts";
import { intakeJournalMigration } from "./0008-intake-journal.ts";
import { tombstonesMigration } from "./0009-tombstones.ts";
import { userDemographicsMigration } from "./0010-user-demographics.ts";
import { credentialHandoffsMigration } from "./0011-credential-handoffs.ts";
import { operatorsMigration } from "./0012-operators.ts";
import { severalNodesMigration } from "./0013-several-nodes.ts";
import { rosterReadFunctionsMigration } from "./0015-roster-read-functions.ts";
import { rosterPartitionsMigration } from "./0016-roster-partitions.ts";

/** Every migration, in order; each is written once for both dialects. */
export function migrationProvider(dialect: DialectInfo): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return {
        "0001-foundation": foundationMigration(dialect),
        "0002-roster": rosterMigration(dialect),
        "0003-clients-and-webhooks": clientsAndWebhooksMigration(dialect),
        "0004-api-indexes": apiIndexesMigration(dialect),
        "0005-one-open-delivery": oneOpenDeliveryMigration(dialect),
        "0006-server-settings": serverSettingsMigration(dialect),
        "0007-login-bans": loginBansMigration(dialect),
        "0008-intake-journal": intakeJournalMigration(dialect),
        "0009-tombstones": tombstonesMigration(dialect),
        "0010-user-demographics": userDemographicsMigration(dialect),
        "0011-credential-handoffs": credentialHandoffsMigration(dialect),
        "0012-operators": operatorsMigration(dialect),
        "0013-several-nodes": severalNodesMigration(dialect),
        "0015-roster-read-functions": rosterReadFunctionsMigration(dialect),
        "0016-roster-partitions": rosterPartitionsMigration(dialect),
      };
    },
  };
}
