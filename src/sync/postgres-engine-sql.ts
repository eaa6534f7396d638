import { pipeline } from "node:stream/promises";
import { Readable } from "node:stream";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { PARTITIONED_TABLES, districtPartitionName } from "../db/district-partition-name.ts";
import { isBusy } from "../db/dialect-info.ts";
import { sqlTrue } from "./engine-sql.ts";
import type { EngineSql, LiveIndex, SqlParams, SqlRow, StageIndex, StageWriter } from "./engine-sql.ts";

const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Rows fetched per round trip when streaming a query's rows (`each`). */
const FETCH_ROWS = 10_000;

/**
 * Every engine write transaction takes this advisory lock first: roster writes (applies,
 * rollbacks, purges) of every node then follow one another, as on SQLite, so that a changeset's
 * change ids are one unbroken run of `roster_changes`. Readers never take it: they keep reading
 * the previous roster (MVCC) while an apply runs, and uploads never wait on it.
 */
const ROSTER_WRITE_LOCK = 0x526f_7374; // "Rost"

/**
 * Settings of the engine's own connection. It reads every row of its cursors (`each`): plan them
 * for all rows, not the first tenth. (Measured and left out: `temp_buffers = 1GB` made a 1M
 * first night's staging slower, 90 s against 57 s; sort memory is the server's to set.)
 */
const ENGINE_SESSION_SETTINGS = "SET cursor_tuple_fraction = 1.0";

/**
 * The engine's SQL on PostgreSQL, over a connection of its own (not the server's pool: a sync
 * holds one long transaction, and its staging tables are the connection's temporary tables,
 * which are unlogged and vanish with the session). Staging is written with COPY FROM STDIN.
 */
export class PostgresEngineSql implements EngineSql {
  readonly stage = "pg_temp.";
  readonly main = "public.";
  readonly withoutRowid = "";
  readonly notIndexed = "";
  readonly drivingJoin = "JOIN";
  readonly rowid = "engine_rowid";
  readonly rowidColumn = ", engine_rowid bigint GENERATED ALWAYS AS IDENTITY";
  readonly rebuildsIndexesInBulk = false;
  readonly derivesLegacyColumns = false;
  readonly #connectionString: string;
  /** The open connection, or null before the first statement and after it was lost. */
  #client: pg.Client | null = null;
  #connected: Promise<void> | undefined;
  #depth = 0;
  #cursors = 0;
  /** The sync whose staging space is attached. */
  #syncId: number | null = null;
  /** Keyed stages built as a district's partition-to-be, by live table (see fillKeyedStage). */
  readonly #staged = new Map<string, { bare: string; districtId: number }>();
  #partitioned: Set<string> | undefined;

  constructor(connectionString: string) {
    this.#connectionString = connectionString;
  }

  /**
   * The connection, opened on first use. A connection lost (the server restarting) is replaced
   * at the next statement; what it held (a transaction, the staging tables) went with it, and
   * the sync that used it fails and runs again.
   */
  async #ready(): Promise<pg.Client> {
    let client = this.#client;
    if (client === null) {
      // int8 (counts, ids) fits in a JS number for any roster we accept; set on this client only.
      const types = {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      };
      const opened = new pg.Client({ connectionString: this.#connectionString, types });
      const lost = () => {
        if (this.#client !== opened) return;
        this.#client = null;
        this.#connected = undefined;
        this.#depth = 0;
      };
      // An idle connection's error surfaces at the next statement, not as a crash.
      opened.on("error", lost);
      opened.on("end", lost);
      this.#client = client = opened;
      this.#connected = opened.connect().then(
        () => opened.query(ENGINE_SESSION_SETTINGS).then(() => undefined),
        (error: unknown) => {
          lost();
          throw error;
        },
      );
    }
    await this.#connected;
    return client;
  }

  async #query<T>(sql: string, params: SqlParams = []): Promise<pg.QueryResult<T & pg.QueryResultRow>> {
    const client = await this.#ready();
    return params.length === 0 ? client.query<T & pg.QueryResultRow>(sql) : client.query<T & pg.QueryResultRow>(numbered(sql), params as unknown[]);
  }

  insertOrIgnore(table: string, columns: readonly string[], select: string, key: readonly string[]): string {
    return `INSERT INTO ${table} (${columns.join(", ")}) ${select} ON CONFLICT (${key.join(", ")}) DO NOTHING`;
  }

  insertOrReplace(table: string, columns: readonly string[], select: string, key: readonly string[]): string {
    const others = columns.filter((c) => !key.includes(c));
    const update = others.length === 0 ? "NOTHING" : `UPDATE SET ${others.map((c) => `${c} = EXCLUDED.${c}`).join(", ")}`;
    return `INSERT INTO ${table} (${columns.join(", ")}) ${select} ON CONFLICT (${key.join(", ")}) DO ${update}`;
  }

  async exec(sql: string): Promise<void> {
    await this.#query(sql);
  }

  async run(sql: string, params: SqlParams = []): Promise<number> {
    return (await this.#query(sql, params)).rowCount ?? 0;
  }

  async get<T = SqlRow>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    return (await this.#query<T>(sql, params)).rows[0];
  }

  async all<T = SqlRow>(sql: string, params: SqlParams = []): Promise<T[]> {
    return (await this.#query<T>(sql, params)).rows;
  }

  async value<T = unknown>(sql: string, params: SqlParams = []): Promise<T | undefined> {
    const client = await this.#ready();
    const result = await client.query<unknown[]>({ text: params.length === 0 ? sql : numbered(sql), values: params as unknown[], rowMode: "array" });
    return result.rows[0]?.[0] as T | undefined;
  }

  async column<T = unknown>(sql: string, params: SqlParams = []): Promise<T[]> {
    const client = await this.#ready();
    const result = await client.query<unknown[]>({ text: params.length === 0 ? sql : numbered(sql), values: params as unknown[], rowMode: "array" });
    return result.rows.map((r) => r[0] as T);
  }

  async count(sql: string, params: SqlParams = []): Promise<number> {
    return Number((await this.value(sql, params)) ?? 0);
  }

  /** Through a cursor, FETCH_ROWS at a time; the parameters are bound as literals (DECLARE takes none). */
  async each<T = SqlRow>(sql: string, params: SqlParams, row: (row: T) => void): Promise<void> {
    await this.#cursor(sql, params, false, (r) => row(r as T));
  }

  async eachValue<T = unknown>(sql: string, params: SqlParams, value: (value: T) => void): Promise<void> {
    await this.#cursor(sql, params, true, (r) => value((r as unknown[])[0] as T));
  }

  async #cursor(sql: string, params: SqlParams, arrays: boolean, row: (row: unknown) => void): Promise<void> {
    const client = await this.#ready();
    const name = `engine_cursor_${++this.#cursors}`;
    const work = async () => {
      await client.query(`DECLARE ${name} NO SCROLL CURSOR FOR ${bindLiterals(client, sql, params)}`);
      try {
        for (;;) {
          const page = await client.query<unknown[] & pg.QueryResultRow>({ text: `FETCH ${FETCH_ROWS} FROM ${name}`, ...(arrays ? { rowMode: "array" } : {}) });
          for (const r of page.rows) row(r);
          if (page.rows.length < FETCH_ROWS) break;
        }
      } finally {
        await client.query(`CLOSE ${name}`).catch(() => undefined);
      }
    };
    // A cursor lives in a transaction: a read-only one of its own when none is open.
    if (this.#depth > 0) await work();
    else await this.#within("BEGIN READ ONLY", false, work);
  }

  transaction<T>(work: () => Promise<T>): Promise<T> {
    return this.#within("BEGIN", true, work);
  }

  scratch<T>(work: () => Promise<T>): Promise<T> {
    return this.#within("BEGIN", false, work);
  }

  async #within<T>(begin: string, writes: boolean, work: () => Promise<T>): Promise<T> {
    const client = await this.#ready();
    const savepoint = this.#depth > 0 ? `engine_${this.#depth}` : null;
    await client.query(savepoint === null ? begin : `SAVEPOINT ${savepoint}`);
    this.#depth++;
    try {
      if (savepoint === null && writes) await client.query(`SELECT pg_advisory_xact_lock(${ROSTER_WRITE_LOCK})`);
      const result = await work();
      this.#depth--;
      await client.query(savepoint === null ? "COMMIT" : `RELEASE SAVEPOINT ${savepoint}`);
      return result;
    } catch (error) {
      this.#depth--;
      await client.query(savepoint === null ? "ROLLBACK" : `ROLLBACK TO SAVEPOINT ${savepoint}; RELEASE SAVEPOINT ${savepoint}`).catch(() => undefined);
      throw error;
    }
  }

  stageWriter(table: string, columns: readonly string[], fixed: Readonly<Record<string, number>>): StageWriter {
    return new CopyWriter(() => this.#ready(), `${this.stage}${q(table)}`, columns, fixed);
  }

  async analyze(table: string, districtId?: number): Promise<void> {
    if (districtId !== undefined && table.startsWith(this.main)) {
      const bare = table.slice(this.main.length).replace(/^"(.*)"$/, "$1");
      const partition = await this.value<string | null>("SELECT to_regclass(?)::text", [`${this.main}${q(districtPartitionName(bare, districtId))}`]);
      if (partition !== null && partition !== undefined) {
        await this.exec(`ANALYZE ${this.main}${q(districtPartitionName(bare, districtId))}`);
        return;
      }
    }
    await this.exec(`ANALYZE ${table}`);
  }

  /**
   * Written in key order, then keyed: a primary key built by one sort after loading, rather than a
   * B-tree grown row by row (the way SQLite's clustered tables must be filled). Analyzed once keyed.
   *
   * A district's first rows of a table partitioned per district are keyed as its partition-to-be
   * (`<table>_sync<sync id>`, shaped like the live table, `last_sync_id` the sync's), `keyed`
   * being a view of it: a first load then attaches it as it is, where it would otherwise write
   * every row twice more (into the live table, and into its key).
   */
  async fillKeyedStage(keyed: string, columns: readonly string[], key: readonly string[], source: string, live?: { table: string; districtId: number }): Promise<void> {
    const list = columns.map(q).join(", ");
    const keyList = key.map(q).join(", ");
    await this.#dropKeyed(keyed);
    if (live !== undefined && this.#syncId !== null && (await this.#partitionedPerDistrict(live.table)) && !(await this.#hasPartition(live.table, live.districtId))) {
      const bare = `${live.table}_sync${this.#syncId}`;
      const partition = `${this.main}${q(bare)}`;
      await this.exec(`DROP TABLE IF EXISTS ${partition}`);
      await this.exec(`CREATE TABLE ${partition} (LIKE ${this.main}${q(live.table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
      this.#staged.set(live.table, { bare, districtId: live.districtId });
      await this.exec(
        `INSERT INTO ${partition} (district_id, ${list}, last_sync_id)
         SELECT ${Math.trunc(live.districtId)}, ${columns.map((c) => `${q(c)}::text`).join(", ")}, ${this.#syncId} FROM ${source} ORDER BY ${keyList}`,
      );
      await this.exec(`ALTER TABLE ${partition} ADD CONSTRAINT ${q(`${bare}_pkey`)} ${await this.#primaryKey(live.table)}`);
      await this.exec(`CREATE VIEW ${keyed} AS SELECT ${list} FROM ${partition}`);
      await this.analyze(partition);
      return;
    }
    if (live !== undefined) this.#staged.delete(live.table);
    await this.exec(`CREATE TABLE ${keyed} AS SELECT ${columns.map((c) => `${q(c)}::text AS ${q(c)}`).join(", ")} FROM ${source} ORDER BY ${keyList}`);
    await this.exec(`ALTER TABLE ${keyed} ADD PRIMARY KEY (${keyList})`);
    await this.analyze(keyed);
  }

  /** The keyed stage, a table or (over a partition-to-be) a view. */
  async #dropKeyed(keyed: string): Promise<void> {
    const kind = await this.value<string>("SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(?)", [keyed]);
    if (kind === "v") await this.exec(`DROP VIEW ${keyed}`);
    else if (kind !== undefined) await this.exec(`DROP TABLE ${keyed}`);
  }

  stagedDistrictPartition(table: string): string | null {
    const staged = this.#staged.get(table);
    return staged === undefined ? null : `${this.main}${q(staged.bare)}`;
  }

  /** Live tables partitioned per district (migration 0016), read once. */
  async #partitionedPerDistrict(table: string): Promise<boolean> {
    this.#partitioned ??= new Set(await this.column<string>("SELECT c.relname::text FROM pg_class c WHERE c.relkind = 'p' AND c.relnamespace = to_regnamespace(?)", [this.main.slice(0, -1)]));
    return this.#partitioned.has(table);
  }

  async #hasPartition(table: string, districtId: number): Promise<boolean> {
    return sqlTrue(
      await this.value(
        `SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = to_regclass(?) AND pg_get_expr(c.relpartbound, c.oid) = ?)`,
        [`${this.main}${q(table)}`, `FOR VALUES IN (${Math.trunc(districtId)})`],
      ),
    );
  }

  async #primaryKey(table: string): Promise<string> {
    const key = await this.value<string>("SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.conrelid = to_regclass(?) AND c.contype = 'p'", [`${this.main}${q(table)}`]);
    if (key === undefined) throw new Error(`${table} has no primary key`);
    return key;
  }

  async createStageIndex(index: StageIndex): Promise<void> {
    await this.exec(`CREATE ${index.unique ? "UNIQUE " : ""}INDEX ${q(index.name)} ON ${this.stage}${q(index.table)} (${index.columns.map(q).join(", ")})`);
  }

  async dropStageIndex(name: string): Promise<void> {
    await this.exec(`DROP INDEX ${this.stage}${q(name)}`);
  }

  async secondaryIndexes(table: string): Promise<LiveIndex[]> {
    return this.all<LiveIndex>(
      `SELECT i.indexname AS name, i.indexdef AS sql FROM pg_indexes i
       WHERE i.schemaname = 'public' AND i.tablename = ?
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%I.%I', i.schemaname, i.indexname)::regclass)
       ORDER BY i.indexname`,
      [table],
    );
  }

  async dropLiveIndex(name: string): Promise<void> {
    await this.exec(`DROP INDEX ${this.main}${q(name)}`);
  }

  async newDistrictPartition(table: string, districtId: number): Promise<string | null> {
    if (!(await this.#partitionedPerDistrict(table)) || (await this.#hasPartition(table, districtId))) return null;
    // Inside the roster write lock (see ROSTER_WRITE_LOCK): no other node attaches one meanwhile.
    const name = `${this.main}${q(`${districtPartitionName(table, districtId)}_new`)}`;
    await this.exec(`DROP TABLE IF EXISTS ${name}`);
    await this.exec(`CREATE TABLE ${name} (LIKE ${this.main}${q(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
    return name;
  }

  /**
   * The key (unless the table has it) and each index built on the filled table, by a sort each (in
   * parallel where the server allows), the table renamed `<table>_d<district id>`, then `ATTACH
   * PARTITION`: it takes SHARE UPDATE EXCLUSIVE on the live table, which no reader's or writer's
   * lock conflicts with, finds the key and indexes already there, and checks the rows against the
   * partition's bound in one scan. (`CREATE TABLE … PARTITION OF` would lock every reader of every
   * district out until the apply commits.) Analyzed, as a bulk change is.
   */
  async attachDistrictPartition(table: string, partition: string, districtId: number): Promise<void> {
    const live = `${this.main}${q(table)}`;
    const bare = districtPartitionName(table, districtId);
    const keyName = await this.value<string>("SELECT c.conname::text FROM pg_constraint c WHERE c.conrelid = to_regclass(?) AND c.contype = 'p'", [partition]);
    if (keyName === undefined) await this.exec(`ALTER TABLE ${partition} ADD CONSTRAINT ${q(`${bare}_pkey`)} ${await this.#primaryKey(table)}`);
    for (const index of await this.secondaryIndexes(table)) {
      const shape = /^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (USING .*)$/.exec(index.sql);
      if (shape === null) throw new Error(`unexpected definition of index ${index.name}: ${index.sql}`);
      const suffix = index.name.startsWith(`${table}_`) ? index.name.slice(table.length + 1) : index.name;
      await this.exec(`CREATE ${shape[1] ?? ""}INDEX ${q(`${bare}_${suffix}`)} ON ${partition} ${shape[2]}`);
    }
    await this.exec(`ALTER TABLE ${partition} RENAME TO ${q(bare)}`);
    if (keyName !== undefined) await this.exec(`ALTER TABLE ${this.main}${q(bare)} RENAME CONSTRAINT ${q(keyName)} TO ${q(`${bare}_pkey`)}`);
    await this.exec(`ALTER TABLE ${live} ATTACH PARTITION ${this.main}${q(bare)} FOR VALUES IN (${Math.trunc(districtId)})`);
    for (const [live, staged] of this.#staged) if (`${this.main}${q(staged.bare)}` === partition) this.#staged.delete(live);
    await this.analyze(`${this.main}${q(bare)}`);
  }

  async highestId(table: string): Promise<number> {
    // Inside the roster write lock nothing else draws from the sequence (see ROSTER_WRITE_LOCK).
    const sequence = await this.value<string>("SELECT pg_get_serial_sequence(?, 'id')", [`${this.main}${table}`]);
    if (sequence === undefined || sequence === null) throw new Error(`${table} has no id sequence`);
    const row = await this.get<{ last_value: number; is_called: boolean }>(`SELECT last_value, is_called FROM ${sequence}`);
    return row === undefined || !row.is_called ? 0 : Number(row.last_value);
  }

  withCache<T>(_kib: number, work: () => Promise<T>): Promise<T> {
    return work();
  }

  jsonObject(pairs: ReadonlyArray<readonly [string, string]>): string {
    return `json_build_object(${pairs.map(([name, value]) => `'${name}', ${value}`).join(", ")})::text`;
  }

  jsonArray(items: readonly string[]): string {
    return `json_build_array(${items.join(", ")})::text`;
  }

  jsonGroupArray(expression: string): string {
    // As SQLite's json_group_array and JSON.stringify write it: no spaces, `[]` for no rows.
    return `coalesce('[' || string_agg(to_json(${expression})::text, ',') || ']', '[]')`;
  }

  jsonField(json: string, field: string, type?: "integer"): string {
    const text = `(${json}::json ->> '${field}')`;
    return type === "integer" ? `${text}::integer` : text;
  }

  jsonItem(json: string, index: number): string {
    return `(${json}::json ->> ${Math.trunc(index)})`;
  }

  jsonSetInteger(json: string, field: string, value: number): string {
    return `(${json}::jsonb || jsonb_build_object('${field}', ${Math.trunc(value)}))::text`;
  }

  async attachStage(syncId: number): Promise<void> {
    await this.#discardStage();
    this.#syncId = syncId;
    // Partitions-to-be this sync left when its node died (it runs again under the same id).
    for (const table of PARTITIONED_TABLES) await this.exec(`DROP TABLE IF EXISTS ${this.main}${q(`${table}_sync${Math.trunc(syncId)}`)}`);
    await this.#dropLeftoverStages();
  }

  /**
   * Partitions-to-be of syncs that are over (applied, held, failed, discarded, rolled back) and
   * still there: left by a node that lost its connection or died on a sync's last attempt, when no
   * run of that sync came to drop them. A waiting or processing sync's are left alone (another
   * node may be keying them). A table some session still holds is left for the next sweep.
   */
  async #dropLeftoverStages(): Promise<void> {
    const pattern = `^(${PARTITIONED_TABLES.join("|")})_sync([0-9]+)$`;
    const leftovers = await this.column<string>(
      `SELECT c.relname::text FROM pg_class c
       WHERE c.relkind = 'r' AND c.relnamespace = to_regnamespace(?) AND NOT c.relispartition AND c.relname::text ~ ?
         AND NOT EXISTS (SELECT 1 FROM ${this.main}syncs s WHERE s.id = (regexp_match(c.relname::text, ?))[2]::bigint AND s.status IN ('waiting', 'processing'))
       ORDER BY 1`,
      [this.main.slice(0, -1), pattern, pattern],
    );
    if (leftovers.length === 0) return;
    await this.exec("SET lock_timeout = '2s'");
    try {
      for (const name of leftovers) {
        try {
          await this.exec(`DROP TABLE IF EXISTS ${this.main}${q(name)}`);
        } catch (error) {
          if (!isBusy(error)) throw error;
        }
      }
    } finally {
      await this.exec("RESET lock_timeout");
    }
  }

  async detachStage(): Promise<void> {
    await this.#discardStage();
    this.#syncId = null;
  }

  /** The temporary tables, and the partitions-to-be no apply attached (a held, failed or discarded sync's). */
  async #discardStage(): Promise<void> {
    if (this.#client === null) return;
    const client = await this.#ready();
    if (this.#depth > 0) {
      this.#depth = 0;
      await client.query("ROLLBACK");
    }
    await client.query("DISCARD TEMP");
    for (const { bare } of this.#staged.values()) await client.query(`DROP TABLE IF EXISTS ${this.main}${q(bare)}`);
    this.#staged.clear();
  }

  async close(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    this.#connected = undefined;
    await client?.end().catch(() => undefined);
  }
}

/**
 * A file's rows in COPY's text format, buffered while a batch is read (the hot path stays
 * synchronous) and sent as one COPY per batch: the connection runs other statements between
 * batches (kept records are looked up there).
 */
class CopyWriter implements StageWriter {
  readonly #statement: string;
  readonly #fixed: string;
  #lines: string[] = [];

  constructor(
    private readonly connect: () => Promise<pg.Client>,
    table: string,
    columns: readonly string[],
    fixed: Readonly<Record<string, number>>,
  ) {
    const names = [...columns, ...Object.keys(fixed)];
    this.#statement = `COPY ${table} (${names.map(q).join(", ")}) FROM STDIN`;
    this.#fixed = Object.values(fixed)
      .map((v) => `\t${Math.trunc(v)}`)
      .join("");
  }

  push(values: readonly unknown[], row: number): void {
    let line = "";
    for (const value of values) line += `${copyText(value)}\t`;
    this.#lines.push(`${line}${Math.trunc(row)}${this.#fixed}\n`);
  }

  async endBatch(): Promise<void> {
    if (this.#lines.length === 0) return;
    const lines = this.#lines;
    this.#lines = [];
    const client = await this.connect();
    await pipeline(Readable.from([lines.join("")]), client.query(copyFrom(this.#statement)));
  }

  end(): Promise<void> {
    return this.endBatch();
  }
}

/** A value in COPY's text format: `\N` for null, backslash escapes for the characters it reserves. */
function copyText(value: unknown): string {
  if (value === null || value === undefined) return "\\N";
  const text = String(value);
  return /[\\\t\n\r]/.test(text) ? text.replace(/[\\\t\n\r]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r")) : text;
}

/** `?` parameters as `$1`, `$2`…, leaving quoted text and names alone. */
function numbered(sql: string): string {
  let n = 0;
  return mapOutsideQuotes(sql, () => `$${++n}`);
}

/** The statement with its `?` parameters written in as literals (for DECLARE, which takes no parameters). */
function bindLiterals(client: pg.Client, sql: string, params: SqlParams): string {
  let n = 0;
  return mapOutsideQuotes(sql, () => {
    const value = params[n++];
    if (value === null || value === undefined) return "NULL";
    if (typeof value === "number" || typeof value === "bigint") {
      if (typeof value === "number" && !Number.isFinite(value)) throw new Error("A statement parameter is not a finite number.");
      return String(value);
    }
    return client.escapeLiteral(String(value));
  });
}

function mapOutsideQuotes(sql: string, parameter: () => string): string {
  let out = "";
  let quote: string | null = null;
  for (const c of sql) {
    if (quote !== null) {
      if (c === quote) quote = null;
      out += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      out += c;
    } else out += c === "?" ? parameter() : c;
  }
  return out;
}
