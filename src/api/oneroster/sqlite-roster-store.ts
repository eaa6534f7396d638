import SqliteDatabase from "better-sqlite3";
import { collationKey } from "../../sync/collation-key.ts";
import type { Row } from "./oneroster-resources.ts";
import type { RosterQueries, RosterStore } from "./roster-reader.ts";
import { SQLITE_ROSTER_SQL } from "./roster-sql-dialect.ts";

type Statement = SqliteDatabase.Statement;

const MAX_STATEMENTS = 500;

/**
 * The roster in the SQLite file, on a read-only connection of its own. better-sqlite3 answers at
 * once, so a read transaction never waits on I/O; transactions are taken one at a time (the
 * connection has one), which costs a few microtasks, not a thread.
 */
export class SqliteRosterStore implements RosterStore {
  readonly sql = SQLITE_ROSTER_SQL;
  readonly compoundAsSubquery = false;
  readonly batchesSeekSteps = false;
  readonly #statements = new Map<string, Statement>();
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly sqlite: SqliteDatabase.Database) {}

  static open(path: string): SqliteRosterStore {
    const sqlite = new SqliteDatabase(path, { readonly: true, fileMustExist: true });
    sqlite.pragma("busy_timeout = 10000");
    sqlite.pragma("cache_size = -65536");
    sqlite.pragma("mmap_size = 1073741824");
    // SQLite's lower() folds ASCII only; `~` must find 'Núñez' from 'ÑEZ'.
    sqlite.function("fold", { deterministic: true }, (value: unknown) => (value === null || value === undefined ? null : String(value).toLowerCase()));
    // Names sort by a key stored beside them; an equality filter on a name looks its key up.
    sqlite.function("collation_key", { deterministic: true }, (value: unknown) => (value === null || value === undefined ? null : collationKey(String(value))));
    return new SqliteRosterStore(sqlite);
  }

  read<T>(work: (q: RosterQueries) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      this.sqlite.exec("BEGIN");
      try {
        return await work(this.#queries);
      } finally {
        this.sqlite.exec("COMMIT");
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  readonly #queries: RosterQueries = {
    all: async (sql, params) => this.#statement(sql).raw(false).all(params) as Row[],
    get: async (sql, params) => this.#statement(sql).raw(false).get(params) as Row | undefined,
    values: async (sql, params) => this.#statement(sql).raw(true).get(params) as unknown[] | undefined,
    readsInOrder: async (sql, params) => {
      const plan = this.sqlite.prepare(`EXPLAIN QUERY PLAN ${this.sql.render(sql)}`).all(params) as Array<{ detail: string }>;
      return !plan.some((p) => p.detail.includes("TEMP B-TREE"));
    },
  };

  async close(): Promise<void> {
    await this.#queue;
    this.sqlite.close();
  }

  #statement(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.sqlite.prepare(this.sql.render(sql));
      this.#statements.delete(sql);
      this.#statements.set(sql, statement);
      if (this.#statements.size > MAX_STATEMENTS) this.#statements.delete(this.#statements.keys().next().value!);
    } else {
      // Most recently used last, so the least recently used goes first.
      this.#statements.delete(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}
