/**
 * The sync engine's SQL, behind one interface with a SQLite (`SqliteEngineSql`) and a PostgreSQL
 * (`PostgresEngineSql`) implementation. Planning and safeguard judgement stay pure and shared;
 * what differs between the two stores lives in the implementations: the names of the staging
 * space and the live tables, index creation, JSON building, the bulk stage writer, and the few
 * hints and clauses one dialect has and the other does not (capability fragments below, which
 * are empty strings where a dialect has no such thing).
 *
 * Statements take `?` parameters (PostgreSQL's implementation numbers them). Native errors come
 * out as the neutral ones of src/db/dialect-info.ts (`isUniqueViolation`, `isBusy`).
 */
export type SqlParams = readonly unknown[];

export type SqlRow = Record<string, unknown>;

/** Appends a file's staged rows in bulk: `push` buffers (the hot path stays synchronous), `endBatch` writes. */
export interface StageWriter {
  /** A row's values in the table's column order, and its row in the file. */
  push(values: readonly unknown[], row: number): void;
  /** The end of a batch of rows (a parser message): what is buffered may be written now. */
  endBatch(): Promise<void>;
  /** Every row pushed is in the table. */
  end(): Promise<void>;
}

export interface StageIndex {
  name: string;
  /** The staging table, unqualified. */
  table: string;
  columns: readonly string[];
  unique?: boolean;
}

export interface LiveIndex {
  name: string;
  /** The statement that creates it again. */
  sql: string;
}

export interface EngineSql {
  /** Prefix of the sync's staging tables (`stage.` / `pg_temp.`) and of the live tables (`main.` / `public.`). */
  readonly stage: string;
  readonly main: string;

  /** Clustered staging tables keyed like the live ones: ` WITHOUT ROWID` on SQLite. */
  readonly withoutRowid: string;
  /** After a table name: read it in storage order, not through an index (SQLite's ` NOT INDEXED`). */
  readonly notIndexed: string;
  /**
   * A join whose left side drives (one key lookup per left row): SQLite's planner has no
   * statistics on staging tables and needs `CROSS JOIN`; PostgreSQL plans `JOIN` itself.
   */
  readonly drivingJoin: string;
  /** `INSERT … SELECT` that leaves out rows whose key is taken (SQLite's `INSERT OR IGNORE`). */
  insertOrIgnore(table: string, columns: readonly string[], select: string, key: readonly string[]): string;
  /** `INSERT … SELECT` whose rows replace those of the same key (SQLite's `INSERT OR REPLACE`). */
  insertOrReplace(table: string, columns: readonly string[], select: string, key: readonly string[]): string;

  /** One or more statements without parameters. */
  exec(sql: string): Promise<void>;
  /** One statement; the rows it changed. */
  run(sql: string, params?: SqlParams): Promise<number>;
  get<T = SqlRow>(sql: string, params?: SqlParams): Promise<T | undefined>;
  all<T = SqlRow>(sql: string, params?: SqlParams): Promise<T[]>;
  /** The first column of the first row. */
  value<T = unknown>(sql: string, params?: SqlParams): Promise<T | undefined>;
  /** The first column of every row. */
  column<T = unknown>(sql: string, params?: SqlParams): Promise<T[]>;
  /** `count(*)`-like queries, as a number. */
  count(sql: string, params?: SqlParams): Promise<number>;
  /** Streams the rows to `row` (no other statement may run meanwhile); bounded memory. */
  each<T = SqlRow>(sql: string, params: SqlParams, row: (row: T) => void): Promise<void>;
  /** `each` of the first column's values. */
  eachValue<T = unknown>(sql: string, params: SqlParams, value: (value: T) => void): Promise<void>;

  /** A write transaction (SQLite: BEGIN IMMEDIATE, the write lock); rolled back if `work` throws. Nests as a savepoint. */
  transaction<T>(work: () => Promise<T>): Promise<T>;
  /** A transaction over staging only (a batch of scratch writes); nests as a savepoint. */
  scratch<T>(work: () => Promise<T>): Promise<T>;

  /**
   * A writer of a staging table's rows: `columns` in the order `push` gives the values, the last
   * one receiving the row's number in its file; `fixed` columns are constants of the whole file
   * (its index).
   */
  stageWriter(table: string, columns: readonly string[], fixed: Readonly<Record<string, number>>): StageWriter;
  /**
   * Gathers a table's statistics for the planner: a staging table once it is filled (PostgreSQL
   * never analyzes temporary tables by itself), a live table after a bulk change: of a table
   * partitioned per district, the district's partition (what its queries are planned with), not
   * every district's. SQLite's statements steer its planner instead.
   */
  analyze(table: string, districtId?: number): Promise<void>;
  /**
   * (Re)creates `keyed`, a staging table of `columns` (text) whose primary key is `key`, filled
   * with every row of `source` in key order. Throws a unique violation on a repeated key.
   *
   * With `live` (the live table the rows are for, and the district), a store whose live table is
   * partitioned per district and holds no partition for the district yet (PostgreSQL) may build
   * it as that partition-to-be instead: a table shaped like the live one, keyed, with `keyed` a
   * view of it. A first load then only attaches it (`stagedDistrictPartition`). It is never
   * live before the apply attaches it, and is dropped with the staging space otherwise.
   */
  fillKeyedStage(keyed: string, columns: readonly string[], key: readonly string[], source: string, live?: { table: string; districtId: number }): Promise<void>;
  /** The partition-to-be `fillKeyedStage` built for this live table, if it built one. */
  stagedDistrictPartition(table: string): string | null;
  /** Creates an index on a staging table. */
  createStageIndex(index: StageIndex): Promise<void>;
  dropStageIndex(name: string): Promise<void>;
  /** A live table's own indexes besides its primary key, and dropping one (inside the caller's transaction). */
  secondaryIndexes(table: string): Promise<LiveIndex[]>;
  dropLiveIndex(name: string): Promise<void>;
  /**
   * Where a district's first rows of a live table go when that table is partitioned per district
   * (PostgreSQL's big roster tables, migration 0016) and holds no partition for the district yet:
   * a fresh table shaped like it, with no index, to be filled in key order and then attached by
   * `attachDistrictPartition`. Null where rows go into the live table itself (SQLite; a district
   * whose partition exists, even empty). For when the keyed stage was not built as one.
   */
  newDistrictPartition(table: string, districtId: number): Promise<string | null>;
  /**
   * Gives a filled `newDistrictPartition` or `stagedDistrictPartition` table the live table's key
   * (unless it has it) and indexes, each built by one sort, and attaches it as the district's
   * partition, inside the caller's transaction. Readers do not wait on it: they see the district's
   * rows appear when the transaction commits.
   */
  attachDistrictPartition(table: string, partition: string, districtId: number): Promise<void>;
  /** The highest id a table's id sequence has handed out (never goes back, even after deletes). */
  highestId(table: string): Promise<number>;
  /** Runs `work` with the page cache sized to `kib` (SQLite's `cache_size`); elsewhere just runs it. */
  withCache<T>(kib: number, work: () => Promise<T>): Promise<T>;

  /** SQL building the change log's JSON, and reading it back. */
  jsonObject(pairs: ReadonlyArray<readonly [string, string]>): string;
  jsonArray(items: readonly string[]): string;
  /** An aggregate: the JSON array of the expression's values (in the order rows come). */
  jsonGroupArray(expression: string): string;
  /** A top-level field of a JSON object, as text (or as an integer). */
  jsonField(json: string, field: string, type?: "integer"): string;
  /** An element of a JSON array, as text. */
  jsonItem(json: string, index: number): string;
  /** The JSON object with one field set to an integer. */
  jsonSetInteger(json: string, field: string, value: number): string;
  /**
   * The row identity of staging tables, in insertion order: SQLite's `rowid`, or a column of
   * their own elsewhere (`rowidColumn`, declared by the staging tables that need one).
   */
  readonly rowid: string;
  readonly rowidColumn: string;
  /**
   * Whether a bulk change may drop a live table's secondary indexes and build them again inside
   * its transaction. SQLite: yes, readers of the old snapshot are not blocked. PostgreSQL: no,
   * DROP INDEX would lock the table against every reader until the apply commits.
   */
  readonly rebuildsIndexesInBulk: boolean;
  /**
   * Whether the change log may predate derived columns (RosterTable.derived), so that a rollback
   * computes them with the connection's `collation_key()`: SQLite databases older than them.
   */
  readonly derivesLegacyColumns: boolean;

  /** A fresh, empty staging space for the sync (a leftover from a crash is discarded). */
  attachStage(syncId: number): Promise<void>;
  detachStage(): Promise<void>;
  close(): Promise<void>;
}

/** True for SQL booleans as either store returns them (1 / true). */
export function sqlTrue(value: unknown): boolean {
  return value === true || value === 1 || value === 1n || value === "1" || value === "t";
}
