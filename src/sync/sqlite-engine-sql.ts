import type { Statement } from "better-sqlite3";
import type { EngineSql, LiveIndex, SqlParams, StageIndex, StageWriter } from "./engine-sql.ts";
import { SyncConnection } from "./sync-connection.ts";
import type { Sqlite } from "./sync-connection.ts";

const ROWS_PER_STATEMENT = 100;
/** Statements kept prepared; a night runs a few hundred distinct ones, most of them once. */
const CACHED_STATEMENTS = 256;

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * The engine's SQL on SQLite, over its own connection (SyncConnection: its pragmas, and the
 * per-sync attached staging file `stage`). Everything runs synchronously underneath; the
 * promises only give the engine one shape for both stores.
 */
export class SqliteEngineSql implements EngineSql {
  readonly stage = "stage.";
  readonly main = "main.";
  readonly withoutRowid = " WITHOUT ROWID";
  readonly notIndexed = " NOT INDEXED";
  readonly drivingJoin = "CROSS JOIN";
  readonly rowid = "rowid";
  readonly rowidColumn = "";
  readonly rebuildsIndexesInBulk = true;
  readonly derivesLegacyColumns = true;
  readonly connection: SyncConnection;
  readonly #statements = new Map<string, Statement<unknown[]>>();
  /** Open transactions and savepoints, outermost first. */
  #depth = 0;

  constructor(databasePath: string, stagingDir: string) {
    this.connection = new SyncConnection(databasePath, stagingDir);
  }

  get sqlite(): Sqlite {
    return this.connection.sqlite;
  }

  #prepare(sql: string): Statement<unknown[]> {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      if (this.#statements.size >= CACHED_STATEMENTS) this.#statements.clear();
      statement = this.sqlite.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  insertOrIgnore(table: string, columns: readonly string[], select: string): string {
    return `INSERT OR IGNORE INTO ${table} (${columns.join(", ")}) ${select}`;
  }

  insertOrReplace(table: string, columns: readonly string[], select: string): string {
    return `INSERT OR REPLACE INTO ${table} (${columns.join(", ")}) ${select}`;
  }

  async exec(sql: string): Promise<void> {
    this.sqlite.exec(sql);
  }

  async run(sql: string, params: SqlParams = []): Promise<number> {
    return this.#prepare(sql).run(...params).changes;
  }

  async get<T>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    return this.#prepare(sql).pluck(false).get(...params) as T | undefined;
  }

  async all<T>(sql: string, params: SqlParams = []): Promise<T[]> {
    return this.#prepare(sql).pluck(false).all(...params) as T[];
  }

  async value<T>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    return this.#prepare(sql).pluck(true).get(...params) as T | undefined;
  }

  async column<T>(sql: string, params: SqlParams = []): Promise<T[]> {
    return this.#prepare(sql).pluck(true).all(...params) as T[];
  }

  async count(sql: string, params: SqlParams = []): Promise<number> {
    return Number(this.#prepare(sql).pluck(true).get(...params));
  }

  async each<T>(sql: string, params: SqlParams, row: (row: T) => void): Promise<void> {
    // Not the cached statement: one being iterated cannot run again until the iteration ends.
    for (const r of this.sqlite.prepare(sql).iterate(...params) as Iterable<T>) row(r);
  }

  async eachValue<T>(sql: string, params: SqlParams, value: (value: T) => void): Promise<void> {
    for (const v of this.sqlite.prepare(sql).pluck(true).iterate(...params) as Iterable<T>) value(v);
  }

  transaction<T>(work: () => Promise<T>): Promise<T> {
    return this.#within("BEGIN IMMEDIATE", work);
  }

  scratch<T>(work: () => Promise<T>): Promise<T> {
    return this.#within("BEGIN", work);
  }

  async #within<T>(begin: string, work: () => Promise<T>): Promise<T> {
    const savepoint = this.#depth > 0 ? `engine_${this.#depth}` : null;
    this.sqlite.exec(savepoint === null ? begin : `SAVEPOINT ${savepoint}`);
    this.#depth++;
    try {
      const result = await work();
      this.#depth--;
      this.sqlite.exec(savepoint === null ? "COMMIT" : `RELEASE ${savepoint}`);
      return result;
    } catch (error) {
      this.#depth--;
      if (this.sqlite.inTransaction) this.sqlite.exec(savepoint === null ? "ROLLBACK" : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
      throw error;
    }
  }

  stageWriter(table: string, columns: readonly string[], fixed: Readonly<Record<string, number>>): StageWriter {
    return new BatchInserter(this, table, columns, fixed);
  }

  /** For the stage writer: a batch's rows go in one transaction of their own. */
  beginBatch(): void {
    if (this.#depth === 0) this.sqlite.exec("BEGIN");
    else this.sqlite.exec(`SAVEPOINT engine_${this.#depth}`);
    this.#depth++;
  }

  commitBatch(): void {
    this.#depth--;
    this.sqlite.exec(this.#depth === 0 ? "COMMIT" : `RELEASE engine_${this.#depth}`);
  }

  async analyze(_table: string): Promise<void> {}

  /** WITHOUT ROWID, filled from one sort (NOT INDEXED: walking an index over the unsorted rows would read them in random order). */
  async fillKeyedStage(keyed: string, columns: readonly string[], key: readonly string[], source: string): Promise<void> {
    const list = columns.map(q).join(", ");
    const keyList = key.map(q).join(", ");
    this.sqlite.exec(`DROP TABLE IF EXISTS ${keyed}`);
    this.sqlite.exec(`CREATE TABLE ${keyed} (${columns.map((c) => `${q(c)} TEXT`).join(", ")}, PRIMARY KEY (${keyList})) WITHOUT ROWID`);
    this.sqlite.exec(`INSERT INTO ${keyed} (${list}) SELECT ${list} FROM ${source} NOT INDEXED ORDER BY ${keyList}`);
  }

  async createStageIndex(index: StageIndex): Promise<void> {
    this.sqlite.exec(`CREATE ${index.unique ? "UNIQUE " : ""}INDEX ${this.stage}${q(index.name)} ON ${q(index.table)} (${index.columns.map(q).join(", ")})`);
  }

  async dropStageIndex(name: string): Promise<void> {
    this.sqlite.exec(`DROP INDEX ${this.stage}${q(name)}`);
  }

  async secondaryIndexes(table: string): Promise<LiveIndex[]> {
    const rows = this.sqlite.prepare("SELECT name, sql FROM main.sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name").all(table) as LiveIndex[];
    return rows.map((r) => ({ name: r.name, sql: r.sql.replace(/^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(IF\s+NOT\s+EXISTS\s+)?/i, (m) => `${m}main.`) }));
  }

  async dropLiveIndex(name: string): Promise<void> {
    this.sqlite.exec(`DROP INDEX main.${q(name)}`);
  }

  stagedDistrictPartition(_table: string): string | null {
    return null;
  }

  async newDistrictPartition(_table: string, _districtId: number): Promise<string | null> {
    return null;
  }

  async attachDistrictPartition(table: string): Promise<void> {
    throw new Error(`${table} is one table on SQLite: it has no district partitions`);
  }

  async highestId(table: string): Promise<number> {
    // AUTOINCREMENT ids never go back, even after deletes; sqlite_sequence has the high mark.
    return Number(this.#prepare("SELECT seq FROM main.sqlite_sequence WHERE name = ?").pluck(true).get(table) ?? 0);
  }

  async withCache<T>(kib: number, work: () => Promise<T>): Promise<T> {
    const previous = this.sqlite.pragma("main.cache_size", { simple: true }) as number;
    this.sqlite.pragma(`main.cache_size = ${-kib}`);
    try {
      return await work();
    } finally {
      this.sqlite.pragma(`main.cache_size = ${previous}`);
    }
  }

  jsonObject(pairs: ReadonlyArray<readonly [string, string]>): string {
    return `json_object(${pairs.map(([name, value]) => `'${name}', ${value}`).join(", ")})`;
  }

  jsonArray(items: readonly string[]): string {
    return `json_array(${items.join(", ")})`;
  }

  jsonGroupArray(expression: string): string {
    return `json_group_array(${expression})`;
  }

  jsonField(json: string, field: string): string {
    return `json_extract(${json}, '$.${field}')`;
  }

  jsonItem(json: string, index: number): string {
    return `json_extract(${json}, '$[${Math.trunc(index)}]')`;
  }

  jsonSetInteger(json: string, field: string, value: number): string {
    return `json_set(${json}, '$.${field}', ${Math.trunc(value)})`;
  }

  async attachStage(syncId: number): Promise<void> {
    this.#statements.clear();
    this.connection.attachStage(syncId);
  }

  async detachStage(): Promise<void> {
    this.#statements.clear();
    this.#depth = 0;
    this.connection.detachStage();
  }

  async close(): Promise<void> {
    this.#statements.clear();
    this.connection.close();
  }
}

/**
 * Multi-row INSERTs of up to 100 rows into a file's staging table: a fraction of the per-statement
 * cost of single rows. The fixed columns (the file's index) are part of the statement, not
 * parameters, and the parameters are filled in place: on 8M rows each saves about a tenth of
 * the insert time. A batch's statements run in one transaction.
 */
class BatchInserter implements StageWriter {
  readonly #width: number;
  readonly #many: Statement<unknown[]>;
  readonly #one: Statement<unknown[]>;
  readonly #params: unknown[];
  #filled = 0;
  #inBatch = false;

  constructor(
    private readonly sql: SqliteEngineSql,
    table: string,
    columns: readonly string[],
    fixed: Readonly<Record<string, number>>,
  ) {
    const all = [...columns, ...Object.keys(fixed)];
    this.#width = columns.length;
    const tuple = `(${all.map((c) => (c in fixed ? String(Math.trunc(fixed[c]!)) : "?")).join(",")})`;
    const insert = `INSERT INTO ${sql.stage}${q(table)} (${all.map(q).join(",")}) VALUES `;
    this.#many = sql.sqlite.prepare(insert + Array.from({ length: ROWS_PER_STATEMENT }, () => tuple).join(","));
    this.#one = sql.sqlite.prepare(insert + tuple);
    this.#params = new Array<unknown>(ROWS_PER_STATEMENT * this.#width);
  }

  push(values: readonly unknown[], row: number): void {
    const params = this.#params;
    let k = this.#filled;
    for (let i = 0; i < values.length; i++) params[k++] = values[i];
    params[k++] = row;
    if (k === params.length) {
      if (!this.#inBatch) {
        this.sql.beginBatch();
        this.#inBatch = true;
      }
      this.#many.run(params);
      k = 0;
    }
    this.#filled = k;
  }

  async endBatch(): Promise<void> {
    // Rows short of a full statement wait for the next batch.
    if (!this.#inBatch) return;
    this.#inBatch = false;
    this.sql.commitBatch();
  }

  async end(): Promise<void> {
    if (this.#filled > 0) {
      if (!this.#inBatch) this.sql.beginBatch();
      this.#inBatch = true;
      for (let at = 0; at < this.#filled; at += this.#width) this.#one.run(this.#params.slice(at, at + this.#width));
      this.#filled = 0;
    }
    await this.endBatch();
  }
}
