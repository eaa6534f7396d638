import type { ColumnDefinitionBuilder, CreateTableBuilder } from "kysely";

export type DialectName = "sqlite" | "postgres";

/** What differs between the two dialects, as capabilities rather than scattered `if (sqlite)` checks. */
export interface DialectInfo {
  readonly name: DialectName;
  /** Adds an auto-generated integer primary key named `id`. */
  addId<T extends string>(table: CreateTableBuilder<T, never>): CreateTableBuilder<T, "id">;
  /** Column type for big integers (byte sizes, counts). */
  readonly bigint: "integer" | "bigint";
  /**
   * Whether a sync's apply holds the database's only write lock (SQLite: for seconds on a big
   * district), so that every other write waits for it. Intake bookkeeping then goes through the
   * intake journal (deliveries/intake-journal.ts) instead of waiting.
   */
  readonly syncsHoldTheWriteLock: boolean;
  /** Column type for raw bytes (stored uploads' chunks). */
  readonly binary: "blob" | "bytea";
  /**
   * Whether several Rosterdock nodes may share this database (PostgreSQL): closed uploads are then
   * stored in it, jobs are claimed with `FOR UPDATE SKIP LOCKED` under a lease, and failed logins
   * are counted in it. SQLite keeps them on the one node's disk and in its memory.
   */
  readonly sharedByNodes: boolean;
}

export const SQLITE_DIALECT: DialectInfo = {
  name: "sqlite",
  addId: (table) => table.addColumn("id", "integer", (c: ColumnDefinitionBuilder) => c.primaryKey().autoIncrement()),
  bigint: "integer",
  syncsHoldTheWriteLock: true,
  binary: "blob",
  sharedByNodes: false,
};

export const POSTGRES_DIALECT: DialectInfo = {
  name: "postgres",
  addId: (table) => table.addColumn("id", "serial", (c: ColumnDefinitionBuilder) => c.primaryKey()),
  bigint: "bigint",
  syncsHoldTheWriteLock: false,
  binary: "bytea",
  sharedByNodes: true,
};

/** Whether a statement failed on a unique constraint (SQLite or PostgreSQL): a row someone else inserted first. */
export function isUniqueViolation(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/**
 * Whether a statement failed because another connection holds the lock it needs, or a concurrent
 * transaction got in its way: SQLite's SQLITE_BUSY; PostgreSQL's serialization failure (40001),
 * deadlock (40P01) and lock not available (55P03). Trying again later is the answer to all.
 */
export function isBusy(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === "SQLITE_BUSY" || (typeof code === "string" && code.startsWith("SQLITE_BUSY_")) || code === "40001" || code === "40P01" || code === "55P03";
}
