import { mkdirSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { collationKey } from "./collation-key.ts";

export type Sqlite = SqliteDatabase.Database;

const STAGE_PAGE_SIZE = 16 * 1024;

/**
 * The sync engine's own connection to the SQLite database. The server's kysely connection is
 * shared by concurrent requests whose transactions span awaits; bulk statements on it could
 * land inside someone else's transaction. A second connection has its own transactions, and
 * WAL lets it write while the first one reads. Staging lives in a per-sync attached file
 * (`stage`) without a journal: scratch data that never touches the main WAL.
 */
export class SyncConnection {
  readonly sqlite: Sqlite;
  #attached: string | null = null;

  constructor(
    databasePath: string,
    private readonly stagingDir: string,
  ) {
    this.sqlite = new SqliteDatabase(databasePath);
    this.sqlite.pragma("journal_mode = WAL");
    this.sqlite.pragma("busy_timeout = 30000");
    this.sqlite.pragma("synchronous = NORMAL");
    // Small on purpose: SQLite sizes a sort's in-memory runs by the main cache, and 8M staged
    // rows sort in ~6 s with 4 MiB runs but ~9.5 s with 32 MiB ones (they fit the CPU caches).
    // Bulk reads and appends stream through the OS page cache either way.
    this.sqlite.pragma("cache_size = -4096");
    // Sorts (keying staged rows, building indexes after a first load) may use a helper thread
    // per spare core: each sort's runs are sorted in parallel. Memory: one cache_size-sized
    // run buffer per thread.
    this.sqlite.pragma(`threads = ${Math.min(2, Math.max(0, availableParallelism() - 1))}`);
    // For columns a rollback derives from a change logged before they existed (RosterTable.derived).
    this.sqlite.function("collation_key", { deterministic: true }, (value: unknown) => (value === null || value === undefined ? null : collationKey(String(value))));
  }

  stagingPath(syncId: number): string {
    return join(this.stagingDir, `sync-${syncId}.sqlite`);
  }

  /** A fresh, empty staging database for the sync (a leftover from a crash is discarded). */
  attachStage(syncId: number): void {
    this.detachStage();
    mkdirSync(this.stagingDir, { recursive: true });
    const path = this.stagingPath(syncId);
    removeDatabaseFiles(path);
    this.sqlite.prepare("ATTACH DATABASE ? AS stage").run(path);
    this.#attached = path;
    // Staging is written once in bulk and read back in sorts and merges, never by point lookups:
    // 16 KiB pages make the sort of 8M staged enrollments into keys ~25% faster than 4 KiB ones.
    // (The main database keeps SQLite's 4 KiB: a night's diff rewrites pages all over its indexes.)
    this.sqlite.pragma(`stage.page_size = ${STAGE_PAGE_SIZE}`);
    this.sqlite.pragma("stage.journal_mode = OFF");
    this.sqlite.pragma("stage.synchronous = OFF");
    this.sqlite.pragma("stage.cache_size = -16384");
  }

  detachStage(): void {
    if (this.#attached === null) return;
    if (this.sqlite.inTransaction) this.sqlite.exec("ROLLBACK");
    this.sqlite.exec("DETACH DATABASE stage");
    removeDatabaseFiles(this.#attached);
    this.#attached = null;
  }

  /** Runs `work` holding the database's write lock (BEGIN IMMEDIATE); rolls back if it throws. */
  writeTransaction<T>(work: () => T): T {
    this.sqlite.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.sqlite.exec("COMMIT");
      return result;
    } catch (error) {
      if (this.sqlite.inTransaction) this.sqlite.exec("ROLLBACK");
      throw error;
    }
  }

  close(): void {
    this.detachStage();
    this.sqlite.close();
  }
}

function removeDatabaseFiles(path: string): void {
  for (const suffix of ["", "-journal", "-wal", "-shm"]) rmSync(path + suffix, { force: true });
}
