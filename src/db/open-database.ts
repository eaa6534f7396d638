import { mkdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, SqliteDriver, sql } from "./kysely.ts";
import type { DatabaseConnection, Driver, QueryResult, SqliteDialectConfig } from "kysely";
import type { Config } from "../config.ts";
import { POSTGRES_DIALECT, SQLITE_DIALECT, isBusy, type DialectInfo } from "./dialect-info.ts";
import { migrationProvider } from "./migrations/index.ts";
import { syncWal } from "./sync-wal.ts";
import type { Database } from "./schema.ts";

export interface RosterDatabase {
  readonly db: Kysely<Database>;
  readonly dialect: DialectInfo;
  /** The raw SQLite handle, for bulk staging where kysely's per-statement overhead matters. */
  readonly sqlite: SqliteDatabase.Database | undefined;
  /**
   * A connection of its own (opened on first use) whose transactions fail at once with SQLITE_BUSY
   * while another connection holds the write lock, instead of waiting. For moving the intake
   * journal into the database (`dialect.syncsHoldTheWriteLock`); on PostgreSQL, the pool itself.
   */
  failFastWriter(): Kysely<Database>;
  /** Makes every commit so far survive a power loss, without blocking the thread (SQLite: see syncWal; PostgreSQL: already so). */
  durable(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the configured database (SQLite in the data folder unless a PostgreSQL URL is set) and migrates it. */
export async function openDatabase(config: Pick<Config, "dataDir" | "databaseUrl">): Promise<RosterDatabase> {
  const opened = config.databaseUrl ? await openPostgres(config.databaseUrl) : openSqlite(config.dataDir);
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
  const path = join(dataDir, "rosterdock.sqlite");
  const sqlite = connectSqlite(path);
  const db = new Kysely<Database>({ dialect: new ServerSqliteDialect({ database: sqlite }, sqlite, true) });
  let writer: Kysely<Database> | undefined;
  return {
    db,
    dialect: SQLITE_DIALECT,
    sqlite,
    failFastWriter: () => {
      if (writer) return writer;
      const connection = connectSqlite(path);
      return (writer = new Kysely<Database>({ dialect: new ServerSqliteDialect({ database: connection }, connection, false) }));
    },
    durable: () => syncWal(path),
    close: async () => {
      await writer?.destroy();
      await db.destroy();
    },
  };
}

function connectSqlite(path: string): SqliteDatabase.Database {
  const sqlite = new SqliteDatabase(path);
  sqlite.pragma("journal_mode = WAL");
  // No wait inside SQLite: it would block the thread, and these connections serve the SFTP and HTTP
  // servers. Waits for the write lock happen between awaits (PatientConnection), or not at all.
  sqlite.pragma("busy_timeout = 0");
  // Commits reach the OS at once (a crash of the process loses none) but are fsynced only at
  // checkpoints; where a commit must survive a power loss, `durable()` fsyncs off the thread.
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("foreign_keys = ON");
  return sqlite;
}

/**
 * How long a write waits for the database's write lock, without blocking the thread. The longest
 * holder is the sync engine applying a big district's first load in one transaction (about 15 s
 * for 1M users and 8M enrollments on 2 cores); a wait past this fails with SQLITE_BUSY.
 */
const WRITE_LOCK_PATIENCE_MS = 120_000;

/**
 * Transactions take the write lock when they begin. With SQLite's default (deferred) a transaction
 * that reads, then writes after another connection (the CLI, the sync thread) committed fails at
 * once with "database is locked", without waiting for the busy timeout.
 */
class ServerSqliteDialect extends SqliteDialect {
  constructor(
    private readonly settings: SqliteDialectConfig,
    private readonly sqlite: SqliteDatabase.Database,
    /** Wait for the write lock (PatientConnection), or fail at once with SQLITE_BUSY. */
    private readonly patient: boolean,
  ) {
    super(settings);
  }

  override createDriver(): Driver {
    const { sqlite, patient } = this;
    return new (class extends SqliteDriver {
      override async acquireConnection(): Promise<DatabaseConnection> {
        const connection = await super.acquireConnection();
        if (!patient) return connection;
        return new PatientConnection(connection, sqlite, {
          release: () => super.releaseConnection(),
          reacquire: async () => void (await super.acquireConnection()),
        });
      }

      override async beginTransaction(connection: DatabaseConnection): Promise<void> {
        await connection.executeQuery(CompiledQuery.raw("begin immediate"));
      }
    })(this.settings);
  }
}

/**
 * Waits for the write lock between awaits: a statement that finds the database locked (SQLITE_BUSY)
 * outside a transaction has done nothing, so it is tried again after a short sleep, up to
 * WRITE_LOCK_PATIENCE_MS. Meanwhile the thread goes on serving SFTP sessions and HTTP requests,
 * and the connection is handed to them between tries: a write waiting for a sync (the worker
 * claiming a job while `rosterdock ingest` applies) must not hold up every read (logins) behind it.
 * `begin immediate` is such a statement; inside a transaction this connection holds the write lock.
 */
class PatientConnection implements DatabaseConnection {
  constructor(
    private readonly inner: DatabaseConnection,
    private readonly sqlite: SqliteDatabase.Database,
    private readonly mutex: { release(): Promise<void>; reacquire(): Promise<void> },
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const deadline = Date.now() + WRITE_LOCK_PATIENCE_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.inner.executeQuery<R>(query);
      } catch (error) {
        if (!isBusy(error) || this.sqlite.inTransaction || Date.now() >= deadline) throw error;
        await this.mutex.release();
        try {
          await sleep(Math.min(100, 2 ** attempt));
        } finally {
          await this.mutex.reacquire();
        }
      }
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/** pg is loaded here only: a SQLite installation never loads it. */
async function openPostgres(url: string): Promise<RosterDatabase> {
  const { default: pg } = await import("pg");
  // int8 (counts, sizes) fits in a JS number for any roster we accept. Set on this pool only:
  // pg's global parsers belong to every other user of the module in the process.
  const types = {
    getTypeParser: ((oid: number, format?: "text" | "binary") =>
      oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
  };
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10, types }) }) });
  return { db, dialect: POSTGRES_DIALECT, sqlite: undefined, failFastWriter: () => db, durable: async () => undefined, close: () => db.destroy() };
}

/**
 * Runs the migrations not yet recorded. A database that has them all (every start but the first
 * after an upgrade) is left alone after one read of `kysely_migration`: kysely's migrator starts
 * by listing every table's columns, which on PostgreSQL fails ("relation … does not exist") when
 * another node's sync drops a staging table or partition-to-be meanwhile. Where the migrator must
 * run, that one error is retried.
 */
async function migrate(db: Kysely<Database>, dialect: DialectInfo): Promise<void> {
  const provider = migrationProvider(dialect);
  if (await allRecorded(db, Object.keys(await provider.getMigrations()))) return;
  const migrator = new Migrator({ db, provider });
  for (let attempt = 1; ; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    const failed = results?.find((r) => r.status === "Error");
    if (!error && !failed) return;
    if (failed === undefined && isTableDroppedMeanwhile(error) && attempt < 5) continue;
    throw new Error(`Database migration ${failed?.migrationName ?? ""} failed: ${String(error)}`, { cause: error });
  }
}

/** Whether `kysely_migration` records exactly these migrations (false when it does not exist yet). */
async function allRecorded(db: Kysely<Database>, names: readonly string[]): Promise<boolean> {
  let recorded: string[];
  try {
    recorded = (await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(db)).rows.map((r) => r.name);
  } catch {
    return false;
  }
  const known = new Set(names);
  return recorded.length === names.length && recorded.every((name) => known.has(name));
}

/** PostgreSQL's undefined_table, as a table listed a moment before is dropped by another session. */
function isTableDroppedMeanwhile(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "42P01";
}
