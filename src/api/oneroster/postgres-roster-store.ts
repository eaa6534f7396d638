import pg from "pg";
import type { Row } from "./oneroster-resources.ts";
import type { RosterQueries, RosterStore } from "./roster-reader.ts";
import { positionalParameters, postgresRosterSql, type RosterSqlDialect } from "./roster-sql-dialect.ts";

const MAX_STATEMENTS = 2000;

/**
 * The roster in PostgreSQL, through a pool of its own (the API's reads never queue behind the
 * sync engine's or the intake's connections). Each read is one REPEATABLE READ, READ ONLY
 * transaction: one snapshot, so a count, its page and the roster version agree while another
 * node applies a sync (MVCC: the apply neither waits for reads nor makes them wait).
 */
export class PostgresRosterStore implements RosterStore {
  readonly compoundAsSubquery = true;
  readonly batchesSeekSteps = true;
  readonly #statements = new Map<string, { text: string; names: string[] }>();

  private constructor(
    private readonly pool: pg.Pool,
    readonly sql: RosterSqlDialect,
  ) {}

  static async open(url: string, options: { connections?: number } = {}): Promise<PostgresRosterStore> {
    // Counts are int8; they fit in a JS number. Set on this pool only: pg's global parsers are shared.
    const types = {
      getTypeParser: ((oid: number, format?: "text" | "binary") =>
        oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    };
    const pool = new pg.Pool({ connectionString: url, max: options.connections ?? 8, types });
    // An idle connection dropped by the server must not take the process down.
    pool.on("error", () => undefined);
    try {
      const { rows } = await pool.query<{ collate: string; provider: string | null }>(
        "SELECT datcollate AS collate, to_jsonb(d) ->> 'datlocprovider' AS provider FROM pg_database d WHERE datname = current_database()",
      );
      const row = rows[0];
      // A C (or POSIX) libc default collation already orders text byte by byte, as SQLite does.
      const byteOrderedText = row !== undefined && (row.provider === null || row.provider === "c") && (row.collate === "C" || row.collate === "POSIX");
      return new PostgresRosterStore(pool, postgresRosterSql({ byteOrderedText }));
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  async read<T>(work: (q: RosterQueries) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
      try {
        const result = await work(this.#queries(client));
        await client.query("COMMIT");
        return result;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => (broken = true));
        throw error;
      }
    } finally {
      client.release(broken);
    }
  }

  #queries(client: pg.PoolClient): RosterQueries {
    const rows = async (sql: string, params: Readonly<Record<string, unknown>>) => (await client.query<Row>(this.#statement(sql, params))).rows;
    return {
      all: rows,
      get: async (sql, params) => (await rows(sql, params))[0],
      values: async (sql, params) => (await client.query<unknown[]>({ ...this.#statement(sql, params), rowMode: "array" })).rows[0],
      readsInOrder: async (sql, params) => {
        const { text, values } = this.#statement(sql, params);
        const { rows } = await client.query<{ "QUERY PLAN": unknown }>({ text: `EXPLAIN (FORMAT JSON) ${text}`, values });
        return !sortsUnbounded(rows[0]?.["QUERY PLAN"]);
      },
    };
  }

  /** The statement in PostgreSQL's SQL and its parameters' values, rendered once per text and parameter types. */
  #statement(sql: string, params: Readonly<Record<string, unknown>>): { text: string; values: unknown[] } {
    const signature = `${sql}\u0000${Object.entries(params)
      .map(([name, value]) => `${name}:${typeof value === "number" && !Number.isInteger(value) ? "float" : typeof value}`)
      .join(",")}`;
    let statement = this.#statements.get(signature);
    if (statement === undefined) {
      statement = positionalParameters(this.sql.render(sql), params);
      if (this.#statements.size >= MAX_STATEMENTS) this.#statements.delete(this.#statements.keys().next().value!);
      this.#statements.set(signature, statement);
    }
    return { text: statement.text, values: statement.names.map((name) => params[name] ?? null) };
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * Whether an EXPLAIN (FORMAT JSON) plan sorts rows it did not read in order off an index: a sort
 * with no LIMIT beneath it. Sorting the arms' top-N rows (compileList's compound) is bounded.
 */
export function sortsUnbounded(plan: unknown): boolean {
  if (Array.isArray(plan)) return plan.some(sortsUnbounded);
  if (typeof plan !== "object" || plan === null) return false;
  const node = plan as Record<string, unknown>;
  if ((node["Node Type"] === "Sort" || node["Node Type"] === "Incremental Sort") && !hasNode(node.Plans, "Limit")) return true;
  return Object.values(node).some((value) => typeof value === "object" && sortsUnbounded(value));
}

function hasNode(plan: unknown, type: string): boolean {
  if (Array.isArray(plan)) return plan.some((p) => hasNode(p, type));
  if (typeof plan !== "object" || plan === null) return false;
  const node = plan as Record<string, unknown>;
  return node["Node Type"] === type || hasNode(node.Plans, type);
}
