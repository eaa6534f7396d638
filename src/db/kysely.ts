import { createRequire } from "node:module";
import type * as KyselyModule from "kysely";

/**
 * kysely, from its CommonJS build. Its ES module build is a few hundred small files, and through
 * the TypeScript loader every process and thread paid ~0.25 s to load them (a third of a CLI
 * command's start); the CommonJS build loads in a fraction of that. Every value of kysely comes
 * from here, so that one copy of it is loaded; its types come from "kysely" itself.
 */
const kysely = createRequire(import.meta.url)("kysely") as typeof KyselyModule;

export const sql = kysely.sql;
export const Kysely = kysely.Kysely;
export type Kysely<DB> = KyselyModule.Kysely<DB>;
export const Migrator = kysely.Migrator;
export type Migrator = KyselyModule.Migrator;
export const PostgresDialect = kysely.PostgresDialect;
export type PostgresDialect = KyselyModule.PostgresDialect;
export const SqliteDialect = kysely.SqliteDialect;
export type SqliteDialect = KyselyModule.SqliteDialect;
export const SqliteDriver = kysely.SqliteDriver;
export type SqliteDriver = KyselyModule.SqliteDriver;
export const CompiledQuery = kysely.CompiledQuery;
export type CompiledQuery<O = unknown> = KyselyModule.CompiledQuery<O>;
