import type { Selectable } from "kysely";
import type { RosterChangeTable } from "../../db/schema.ts";
import { rosterTable, type RosterEntity } from "../../sync/roster-tables.ts";
import { tombstoneTables } from "../../sync/tombstones.ts";
import { compileGet, compileList, type CompiledList, type ListQuery } from "./oneroster-sql.ts";
import type { Resource, Row } from "./oneroster-resources.ts";
import type { FilterExpression } from "./oneroster-filter.ts";

import type { RosterSqlDialect } from "./roster-sql-dialect.ts";
import { SqliteRosterStore } from "./sqlite-roster-store.ts";
import { PostgresRosterStore } from "./postgres-roster-store.ts";

export type AppliedAt = (syncId: number) => string | null;

export interface ListPage {
  total: number;
  rows: Row[];
  fields: string[];
  /** dateLastModified of the rows' syncs. */
  appliedAt: AppliedAt;
  /** The roster version the page was read at. */
  version: string;
}

/** A stored roster change, as the change feed reads it. */
export type ChangeRow = Omit<Selectable<RosterChangeTable>, "district_id">;

/** A position in the feed: a change's id, and for a first load the rows of it already read. */
export interface FeedCursor {
  id: number;
  within: number;
}

export interface FeedEntry {
  change: ChangeRow;
  cursor: FeedCursor;
}

/** `"1234"` or `"1234.500"`. */
export function formatCursor(cursor: FeedCursor): string {
  return cursor.within === 0 ? String(cursor.id) : `${cursor.id}.${cursor.within}`;
}

export function parseCursor(text: string): FeedCursor | undefined {
  const match = /^(\d{1,16})(?:\.(\d{1,9}))?$/.exec(text);
  if (match && !Number.isSafeInteger(Number(match[1]))) return undefined;
  return match ? { id: Number(match[1]), within: Number(match[2] ?? 0) } : undefined;
}

const TOMBSTONE_TABLES = tombstoneTables();

/** Rows between two seek anchors: small enough that a page costs little, large enough to keep few anchors. */
export const SEEK_STEP = 512;
const MAX_COUNTS = 2000;
const MAX_SEEKS = 200;
const MAX_PLANS = 500;

/**
 * Statements of one read transaction, in the shared SQL of roster-sql-dialect.ts with `@name`
 * parameters (extra parameters are ignored). Rows come back as objects, or as arrays (`values`).
 */
export interface RosterQueries {
  all(sql: string, params: Readonly<Record<string, unknown>>): Promise<Row[]>;
  get(sql: string, params: Readonly<Record<string, unknown>>): Promise<Row | undefined>;
  /** The first row's values, in column order. */
  values(sql: string, params: Readonly<Record<string, unknown>>): Promise<unknown[] | undefined>;
  /** Whether the statement reads its rows in its ORDER BY's order off an index (no sort step). */
  readsInOrder(sql: string, params: Readonly<Record<string, unknown>>): Promise<boolean>;
}

/** Where a reader reads: one SQLite file or one PostgreSQL database. */
export interface RosterStore {
  readonly sql: RosterSqlDialect;
  /** Capabilities of the store's SQL (see compileList). */
  readonly compoundAsSubquery: boolean;
  /**
   * Takes many seek steps in one statement (`stepsSql`): worth it where each statement is a round
   * trip to a server (PostgreSQL), not where it is a call into the same process (SQLite).
   */
  readonly batchesSeekSteps: boolean;
  /** Runs `work` in one read-only transaction: everything it reads is one roster version. */
  read<T>(work: (q: RosterQueries) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

interface SeekIndex {
  /** anchors[i] = order columns of the row at position (i + 1) × SEEK_STEP. */
  anchors: unknown[][];
  /** True once a step found no row: the list has no more anchors. */
  complete: boolean;
  /**
   * Order columns of the rows at positions pages were asked from or will be next (offset and
   * offset + limit of each page served): a client paging through, or asking the same deep page
   * again, starts its page right there instead of stepping from the anchor before it.
   */
  exact: Map<number, unknown[]>;
  /** The step one request is taking now: requests for the same list wait for it rather than take it again. */
  stepping?: Promise<void> | undefined;
}

/** Exact positions remembered per seek index. */
const MAX_EXACT = 64;
/**
 * Steps taken by one statement at most, where the store batches them (about 65k rows): the
 * first deep page of a new roster version at offset 500,000 is eight statements instead of a
 * thousand, and requests waiting for nearer anchors go on after the first.
 */
const STEPS_PER_STATEMENT = 128;

/**
 * Reads the roster for the API, on SQLite (its own read-only connection: WAL lets it read while
 * the sync engine writes) or PostgreSQL (a pool of its own: MVCC snapshots, so a sync's apply
 * never blocks a read). The two stores run the same SQL (roster-sql-dialect.ts) and this class's
 * logic, so both give the same responses.
 *
 * Every request reads in one transaction, so its count, page and roster version agree. Between
 * syncs the roster is immutable, which makes two caches exact: totals, and for deep offsets
 * (`offset=500000`) a seek index of every SEEK_STEP-th row's order columns, built as far as asked
 * and forgotten when the district's roster version (its latest changeset) moves on. The version
 * itself is read from the database in every transaction, never remembered: another node may
 * have applied a sync.
 */
export class RosterReader {
  readonly #counts = new Map<string, number>();
  readonly #seeks = new Map<string, SeekIndex>();
  readonly #seekable = new Map<string, boolean>();
  readonly #applied = new Map<number, { version: string; at: Map<number, string> }>();
  readonly #tombstones = new Map<number, { version: string; held: ReadonlySet<string> }>();

  constructor(private readonly store: RosterStore) {}

  /** SQLite: a read-only connection to the database file. */
  static openSqlite(path: string): RosterReader {
    return new RosterReader(SqliteRosterStore.open(path));
  }

  /** PostgreSQL: a pool of its own on the database. */
  static async openPostgres(url: string): Promise<RosterReader> {
    return new RosterReader(await PostgresRosterStore.open(url));
  }

  get dialect(): RosterSqlDialect["name"] {
    return this.store.sql.name;
  }

  close(): Promise<void> {
    return this.store.close();
  }

  /**
   * The district's roster version, `<latest changeset>.<latest tombstone purge>`: it moves with
   * every apply and rollback, and when a purge removes records the API showed.
   */
  version(districtId: number): Promise<string> {
    return this.store.read((q) => this.#version(q, districtId));
  }

  async #version(q: RosterQueries, districtId: number): Promise<string> {
    const row = await q.get(
      "SELECT (SELECT coalesce(max(id), 0) FROM roster_changesets WHERE district_id = @d) || '.' || (SELECT coalesce(max(id), 0) FROM tombstone_purges WHERE district_id = @d) AS v",
      { d: districtId },
    );
    return String(row!.v);
  }

  district(slug: string): Promise<{ id: number; slug: string } | undefined> {
    return this.store.read(async (q) => {
      const row = await q.get("SELECT id, slug FROM districts WHERE slug = @slug", { slug });
      return row === undefined ? undefined : { id: Number(row.id), slug: String(row.slug) };
    });
  }

  list(district: { id: number; slug: string }, query: ListQuery, limit: number, offset: number): Promise<ListPage> {
    return this.store.read(async (q) => {
      const version = await this.#version(q, district.id);
      const resource = await this.#armsHeld(q, query.resource, district.id, version, query.filter !== undefined && activeOnly(query.filter));
      const compiled = compileList({ ...query, resource }, { compoundAsSubquery: this.store.compoundAsSubquery });
      const params = { ...compiled.params, d: district.id, slug: district.slug };
      // The order columns too: sorts on a column that is constant in every arm ('active') share a page statement, not seek anchors.
      const signature = `${district.id}\u0000${compiled.pageSql}\u0000${compiled.order.join(",")}\u0000${JSON.stringify(compiled.params)}`;
      const total = await this.#count(q, `${version}\u0000${signature}`, compiled.countSql, params);
      const appliedAt = await this.#appliedAt(q, district.id, version);
      if (offset >= total) return { total, rows: [], fields: compiled.fields, appliedAt, version };
      const rows = await this.#page(q, compiled, params, `${version}\u0000${signature}`, limit, offset);
      return { total, rows, fields: compiled.fields, appliedAt, version };
    });
  }

  get(
    district: { id: number; slug: string },
    resource: Resource,
    sourcedId: string,
    fields?: readonly string[],
  ): Promise<{ row: Row; fields: string[]; appliedAt: AppliedAt; version: string } | undefined> {
    return this.store.read(async (q) => {
      const version = await this.#version(q, district.id);
      const compiled = compileGet(await this.#armsHeld(q, resource, district.id, version), sourcedId, fields);
      const row = await q.get(compiled.sql, { ...compiled.params, d: district.id, slug: district.slug });
      if (row === undefined) return undefined;
      return { row, fields: compiled.fields, appliedAt: await this.#appliedAt(q, district.id, version), version };
    });
  }

  /**
   * The resource without the tombstone arms of tables holding none of the district's rows: a
   * district with no removed users reads users as it did before tombstones existed (one arm,
   * seekable through its indexes), and so does a filter that asks for active records only.
   * Looked up once per roster version.
   */
  async #armsHeld(q: RosterQueries, resource: Resource, districtId: number, version: string, activeOnly = false): Promise<Resource> {
    let cached = this.#tombstones.get(districtId);
    if (cached === undefined || cached.version !== version) {
      const held = new Set<string>();
      for (const table of TOMBSTONE_TABLES) {
        if ((await q.get(`SELECT 1 AS one FROM ${table} WHERE district_id = @d LIMIT 1`, { d: districtId })) !== undefined) held.add(table);
      }
      cached = { version, held };
      remember(this.#tombstones, districtId, cached, MAX_COUNTS);
    }
    const held = cached.held;
    const arms = resource.arms.filter((arm) => arm.tombstones === undefined || (!activeOnly && held.has(arm.tombstones)));
    return arms.length === resource.arms.length ? resource : { ...resource, arms };
  }

  /** When each of the district's syncs was applied: one row per sync, reloaded when the roster version moves. */
  async #appliedAt(q: RosterQueries, districtId: number, version: string): Promise<AppliedAt> {
    let cached = this.#applied.get(districtId);
    if (cached === undefined || cached.version !== version) {
      const rows = await q.all("SELECT sync_id, created_at FROM roster_changesets WHERE district_id = @d AND kind = 'apply'", { d: districtId });
      cached = { version, at: new Map(rows.map((r) => [Number(r.sync_id), String(r.created_at)])) };
      this.#applied.set(districtId, cached);
    }
    const at = cached.at;
    return (syncId) => at.get(syncId) ?? null;
  }

  /** True when the district has a record of the resource with that sourcedId. */
  async exists(district: { id: number; slug: string }, resource: Resource, sourcedId: string): Promise<boolean> {
    return (await this.get(district, resource, sourcedId, ["sourcedId"])) !== undefined;
  }

  /**
   * Up to `limit` feed entries after the cursor, in order, with when each record's sync was
   * applied. Only applying and rolling back write changes, so held, failed or discarded syncs
   * have none; the staff-id map is internal and skipped (the cursor still moves past it). A first
   * load is stored as one marker (`op = 'load'`); it is read out here as one `create` per row that
   * still carries the loading sync, in key order, with cursors `<marker id>.<position>`. A row
   * changed since then left that set, but its later change follows in the feed with the whole
   * record, so nothing is lost.
   */
  changes(districtId: number, after: FeedCursor, limit: number): Promise<{ entries: FeedEntry[]; next: FeedCursor; appliedAt: Map<number, string> }> {
    return this.store.read(async (q) => {
      const scanned = (await q.all(
        `SELECT c.id, c.sync_id, c.entity, c.key, c.op, c.before_json, c.after_json FROM roster_changes c
         WHERE c.district_id = @d AND (c.id > @after OR (c.id = @after AND c.op = 'load' AND @within > 0)) ORDER BY c.id LIMIT @limit`,
        { d: districtId, after: after.id, within: after.within, limit },
      )) as unknown as ChangeRow[];
      const entries: FeedEntry[] = [];
      let next = after;
      for (const change of scanned) {
        if (entries.length >= limit) break;
        if (change.op !== "load") {
          next = { id: change.id, within: 0 };
          if (change.entity !== "staff_ids") entries.push({ change, cursor: next });
          continue;
        }
        const start = change.id === after.id ? after.within : 0;
        const wanted = limit - entries.length;
        const loaded = change.entity === "staff_ids" ? [] : await this.#loadedRows(q, districtId, change, start, wanted);
        loaded.forEach((row, i) => entries.push({ change: row, cursor: { id: change.id, within: start + i + 1 } }));
        if (loaded.length === wanted) {
          // The page is full: continue inside this load next time.
          next = { id: change.id, within: start + loaded.length };
          break;
        }
        next = { id: change.id, within: 0 };
      }
      const syncIds = new Set<number>();
      for (const { change } of entries) {
        // A row restored by a rollback keeps the sync that last changed it before.
        const restored = change.after_json === null ? undefined : (JSON.parse(change.after_json) as { last_sync_id?: number }).last_sync_id;
        syncIds.add(typeof restored === "number" ? restored : change.sync_id);
      }
      const appliedAt = new Map<number, string>();
      for (const id of syncIds) {
        const row = await q.get("SELECT created_at FROM roster_changesets WHERE sync_id = @s AND kind = 'apply'", { s: id });
        if (row !== undefined) appliedAt.set(id, String(row.created_at));
      }
      return { entries, next, appliedAt };
    });
  }

  /** The rows a load marker stands for, from `start`, as `create` changes. */
  async #loadedRows(q: RosterQueries, districtId: number, marker: ChangeRow, start: number, count: number): Promise<ChangeRow[]> {
    const table = rosterTable(marker.entity as RosterEntity);
    const scopes = (JSON.parse(marker.after_json ?? "{}") as { scopes?: string[] }).scopes;
    const columns = [...table.key, ...table.columns];
    const scopeFilter = scopes ? ` AND scope IN (${scopes.map((s) => `'${s.replace(/'/g, "''")}'`).join(", ")})` : "";
    const rows = await q.all(
      `SELECT ${columns.map((c) => `"${c}"`).join(", ")} FROM ${table.live} WHERE district_id = @d AND last_sync_id = @sync${scopeFilter}
       ORDER BY ${table.key.map((c) => `rd_bytes("${c}")`).join(", ")} LIMIT @count OFFSET @start`,
      { d: districtId, sync: marker.sync_id, count, start },
    );
    return rows.map((row) => ({
      id: marker.id,
      sync_id: marker.sync_id,
      entity: marker.entity,
      key: JSON.stringify(table.key.map((c) => row[c])),
      op: "create",
      before_json: null,
      after_json: JSON.stringify(row),
    }));
  }

  /** Small lookups the change feed needs to shape records (a class's term, an enrollment's school). */
  lookup(sql: string, params: Record<string, unknown>): Promise<Row | undefined> {
    return this.store.read((q) => q.get(sql, params));
  }

  async #count(q: RosterQueries, key: string, sql: string, params: Record<string, unknown>): Promise<number> {
    const cached = this.#counts.get(key);
    if (cached !== undefined) return cached;
    const total = Number((await q.get(sql, params))!.n);
    remember(this.#counts, key, total, MAX_COUNTS);
    return total;
  }

  async #page(q: RosterQueries, compiled: CompiledList, params: Record<string, unknown>, key: string, limit: number, offset: number): Promise<Row[]> {
    const seek = compiled.seek;
    if (seek === undefined || offset < SEEK_STEP || !(await this.#canSeek(q, seek.stepSql, compiled.order.length, params))) {
      return q.all(compiled.pageSql, { ...params, limit, offset });
    }
    const index = this.#seekIndex(key);
    let start = this.#exactAt(index, offset);
    if (start === undefined) {
      const wanted = Math.floor(offset / SEEK_STEP) - 1;
      await this.#extend(index, wanted, () => this.#step(q, seek, params, index, wanted, compiled.order.length));
      const usable = Math.min(wanted, index.anchors.length - 1);
      if (usable < 0) return q.all(compiled.pageSql, { ...params, limit, offset });
      start = this.#nearestBelow(index, offset, { position: (usable + 1) * SEEK_STEP, anchor: index.anchors[usable]! });
      if (seek.merged && offset > start.position) {
        // Merged arms build every row they pass, skipped ones too: skip with the step (order
        // columns only) to the page's first row, then build just the page.
        const first = await q.values(seek.stepSql, { ...params, ...anchorParams(start.anchor), skip: offset - start.position - 1 });
        if (first === undefined) return [];
        start = { position: offset, anchor: first };
        rememberExact(index, offset, first);
      }
    }
    // One row more than the page: its order columns are where the next page starts.
    const rows = await q.all(seek.pageSql, { ...params, ...anchorParams(start.anchor), limit: limit + 1, offset: offset - start.position });
    if (rows.length > limit) {
      const next = rows.pop()!;
      rememberExact(index, offset + limit, compiled.order.map((c) => next[c]));
    }
    return rows;
  }

  /**
   * Steps until the index has anchor `wanted` (or the list ends), one step of the list at a time
   * whichever request takes it: the first deep pages after a sync, asked at once, would otherwise
   * each take the same thousand steps. A request waiting on another's step goes on as soon as its
   * own anchor is there, and steps itself if that step failed.
   */
  async #extend(index: SeekIndex, wanted: number, step: () => Promise<void>): Promise<void> {
    while (index.anchors.length <= wanted && !index.complete) {
      const pending = index.stepping;
      if (pending !== undefined) {
        await pending.catch(() => undefined);
        continue;
      }
      const taken = step();
      index.stepping = taken;
      try {
        await taken;
      } finally {
        if (index.stepping === taken) index.stepping = undefined;
      }
    }
  }

  /** The next anchor of the index (or, batched, the anchors up to `wanted`), read in the caller's transaction. */
  async #step(q: RosterQueries, seek: NonNullable<CompiledList["seek"]>, params: Record<string, unknown>, index: SeekIndex, wanted: number, width: number): Promise<void> {
    const last = index.anchors[index.anchors.length - 1];
    // Batched only where the planner reads even the largest batch in index order: for so many rows
    // it might prefer to sort the whole list, and one step at a time never sorts (see #canSeek).
    const batched = { ...params, step: SEEK_STEP };
    if (
      seek.stepsSql !== undefined &&
      seek.firstStepsSql !== undefined &&
      this.store.batchesSeekSteps &&
      (await this.#readsInOrder(q, seek.stepsSql, { ...batched, span: STEPS_PER_STATEMENT * SEEK_STEP + 1 }))
    ) {
      const count = Math.min(wanted + 1 - index.anchors.length, STEPS_PER_STATEMENT);
      const rows =
        last === undefined
          ? await q.all(seek.firstStepsSql, { ...batched, span: count * SEEK_STEP + 1 })
          : await q.all(seek.stepsSql, { ...batched, ...anchorParams(last), span: count * SEEK_STEP });
      for (const row of rows) index.anchors.push(Array.from({ length: width }, (_, i) => row[`o${i}`]));
      if (rows.length < count) index.complete = true;
      return;
    }
    const found =
      last === undefined ? await q.values(seek.firstStepSql, { ...params, skip: SEEK_STEP }) : await q.values(seek.stepSql, { ...params, ...anchorParams(last), skip: SEEK_STEP - 1 });
    if (found === undefined) index.complete = true;
    else index.anchors.push(found);
  }

  #exactAt(index: SeekIndex, offset: number): { position: number; anchor: unknown[] } | undefined {
    const anchor = index.exact.get(offset);
    return anchor === undefined ? undefined : { position: offset, anchor };
  }

  /** The remembered exact position closest below `offset`, if closer than the anchor `from`. */
  #nearestBelow(index: SeekIndex, offset: number, from: { position: number; anchor: unknown[] }): { position: number; anchor: unknown[] } {
    let best = from;
    for (const [position, anchor] of index.exact) if (position <= offset && position > best.position) best = { position, anchor };
    return best;
  }

  #seekIndex(key: string): SeekIndex {
    let index = this.#seeks.get(key);
    if (index === undefined) {
      index = { anchors: [], complete: false, exact: new Map() };
      remember(this.#seeks, key, index, MAX_SEEKS);
    }
    return index;
  }

  /** Seeking pays only when an index delivers the order; a sorted scan per step would cost more than OFFSET. */
  async #canSeek(q: RosterQueries, stepSql: string, anchors: number, params: Record<string, unknown>): Promise<boolean> {
    const probe: Record<string, unknown> = { ...params, skip: 0 };
    for (let i = 0; i < anchors; i++) probe[`a${i}`] = "";
    return this.#readsInOrder(q, stepSql, probe);
  }

  /** Whether `sql` reads in index order (no sort of the list), asked once per statement; anchors are probed as ''. */
  async #readsInOrder(q: RosterQueries, sql: string, params: Record<string, unknown>): Promise<boolean> {
    let ok = this.#seekable.get(sql);
    if (ok === undefined) {
      const probe: Record<string, unknown> = { ...params };
      for (let i = 0; sql.includes(`@a${i}`); i++) probe[`a${i}`] ??= "";
      ok = await q.readsInOrder(sql, probe);
      remember(this.#seekable, sql, ok, MAX_PLANS);
    }
    return ok;
  }
}

/** True when the filter keeps active records only (`status='active'`, alone or ANDed): tombstone arms cannot match. */
function activeOnly(filter: FilterExpression): boolean {
  if (filter.kind === "predicate") return filter.field === "status" && filter.op === "=" && filter.value === "active";
  return filter.kind === "and" && filter.clauses.some(activeOnly);
}

function anchorParams(anchor: unknown[]): Record<string, unknown> {
  return Object.fromEntries(anchor.map((value, i) => [`a${i}`, value]));
}

function rememberExact(index: SeekIndex, position: number, anchor: unknown[]): void {
  remember(index.exact, position, anchor, MAX_EXACT);
}

/** A small LRU: Map keeps insertion order, so the first key is the least recently stored. */
function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
}
