import { mkdirSync } from "node:fs";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, SqliteDriver } from "kysely";
import type { DatabaseConnection, Driver, SqliteDialectConfig } from "kysely";
import pg from "pg";
import type { Config } from "../config.ts";
import { POSTGRES_DIALECT, SQLITE_DIALECT, type DialectInfo } from "./dialect-info.ts";
import { migrationProvider } from "./migrations/index.ts";
import type { Database } from "./schema.ts";

export interface RosterDatabase {
  readonly db: Kysely<Database>;
  readonly dialect: DialectInfo;
  /** The raw SQLite handle, for bulk staging where kysely's per-statement overhead matters. */
  readonly sqlite: SqliteDatabase.Database | undefined;
  close(): Promise<void>;
}

/** Opens the configured database (SQLite in the data folder unless a PostgreSQL URL is set) and migrates it. */
export async function openDatabase(config: Pick<Config, "dataDir" | "databaseUrl">): Promise<RosterDatabase> {
  const opened = config.databaseUrl ? openPostgres(config.databaseUrl) : openSqlite(config.dataDir);
  try {
    await migrate(opened.db, opened.dialect);
  } catch (error) {
    await opened.close();
    throw error;
  }
  return opened;
}

function openSqlite(dataDir: string): RosterDatabase {
  mkdirSync(dataDir, { recursive: true });
  const sqlite = new SqliteDatabase(join(dataDir, "rosterdock.sqlite"));
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("busy_timeout = 10000");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  return { db, dialect: SQLITE_DIALECT, sqlite, close: () => db.destroy() };
}

/**
 * Transactions take the write lock when they begin. With SQLite's default (deferred) a transaction
 * that reads, then writes after another connection (the CLI, the sync thread) committed fails at
 * once with "database is locked", without waiting for the busy timeout.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly settings: SqliteDialectConfig) {
    super(settings);
  }

  override createDriver(): Driver {
    return new (class extends SqliteDriver {
      override async beginTransaction(connection: DatabaseConnection): Promise<void> {
        await connection.executeQuery(CompiledQuery.raw("begin immediate"));
      }
    })(this.settings);
  }
}

function openPostgres(url: string): RosterDatabase {
  // int8 (counts, sizes) fits in a JS number for any roster we accept. Set on this pool only:
  // pg's global parsers belong to every other user of the module in the process.
  const types = {
    getTypeParser: ((oid: number, format?: "text" | "binary") =>
      oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10, types }) }) });
  return { db, dialect: POSTGRES_DIALECT, sqlite: undefined, close: () => db.destroy() };
}

async function migrate(db: Kysely<Database>, dialect: DialectInfo): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error || failed) {
    throw new Error(`Database migration ${failed?.migrationName ?? ""} failed: ${String(error)}`, { cause: error });
  }
}
