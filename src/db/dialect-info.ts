import type { ColumnDefinitionBuilder, CreateTableBuilder } from "kysely";

export type DialectName = "sqlite" | "postgres";

/** What differs between the two dialects, as capabilities rather than scattered `if (sqlite)` checks. */
export interface DialectInfo {
  readonly name: DialectName;
  /** Adds an auto-generated integer primary key named `id`. */
  addId<T extends string>(table: CreateTableBuilder<T, never>): CreateTableBuilder<T, "id">;
  /** Column type for big integers (byte sizes, counts). */
  readonly bigint: "integer" | "bigint";
}

export const SQLITE_DIALECT: DialectInfo = {
  name: "sqlite",
  addId: (table) => table.addColumn("id", "integer", (c: ColumnDefinitionBuilder) => c.primaryKey().autoIncrement()),
  bigint: "integer",
};

export const POSTGRES_DIALECT: DialectInfo = {
  name: "postgres",
  addId: (table) => table.addColumn("id", "serial", (c: ColumnDefinitionBuilder) => c.primaryKey()),
  bigint: "bigint",
};

/** Whether a statement failed on a unique constraint (SQLite or PostgreSQL): a row someone else inserted first. */
export function isUniqueViolation(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}
