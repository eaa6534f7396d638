import type { Selectable } from "kysely";
import type { RosterChangeTable } from "../../db/schema.ts";
import SqliteDatabase from "better-sqlite3";
import { rosterTable, type RosterEntity } from "../../sync/roster-tables.ts";
import { tombstoneTables } from "../../sync/tombstones.ts";
import { collationKey } from "../../sync/collation-key.ts";
import { compileGet, compileList, type CompiledList, type ListQuery } from "./oneroster-sql.ts";
import type { Resource, Row } from "./oneroster-resources.ts";
import type { FilterExpression } from "./oneroster-filter.ts";

type Statement = SqliteDatabase.Statement;

export type AppliedAt = (syncId: number) => string | null;

export interface ListPage {
  total: number;
  rows: Row[];
  fields: string[];
  /** dateLastModified of the rows' syncs. */
  appliedAt: AppliedAt;
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
const MAX_STATEMENTS = 500;
const MAX_COUNTS = 2000;
const MAX_SEEKS = 200;

interface SeekIndex {
  /** anchors[i] = order columns of the row at position (i + 1) × SEEK_STEP. */
  anchors: unknown[][];
  /** True once a step found no row: the list has no more anchors. */
  complete: boolean;
}

/**
 * Reads the roster for the API on its own read-only connection: WAL lets it read while the sync
 * engine writes, and synchronous better-sqlite3 calls skip kysely's one-connection queue.
 *
 * Every request reads in one transaction, so its count, page and roster version agree. Between
 * syncs the roster is immutable, which makes two caches exact: totals, and for deep offsets
 * (`offset=500000`) a seek index of every SEEK_STEP-th row's order columns, built as far as asked
 * and forgotten when the district's roster version (its latest changeset) moves on.
 */
export class RosterReader {
  readonly #statements = new Map<string, Statement>();
  readonly #counts = new Map<string, number>();
  readonly #seeks = new Map<string, SeekIndex>();
  readonly #seekable = new Map<string, boolean>();
  readonly #applied = new Map<number, { version: string; at: Map<number, string> }>();
  readonly #tombstones = new Map<number, { version: string; held: ReadonlySet<string> }>();
  readonly #version: Statement;
  readonly #read: <T>(work: () => T) => T;

  private constructor(private readonly sqlite: SqliteDatabase.Database) {
    this.#version = sqlite
      .prepare(
        "SELECT (SELECT coalesce(max(id), 0) FROM roster_changesets WHERE district_id = @d) || '.' || (SELECT coalesce(max(id), 0) FROM tombstone_purges WHERE district_id = @d)",
      )
      .pluck(true);
    this.#read = <T>(work: () => T): T => sqlite.transaction(work)() as T;
  }

  static open(path: string): RosterReader {
    const sqlite = new SqliteDatabase(path, { readonly: true, fileMustExist: true });
    sqlite.pragma("busy_timeout = 10000");
    sqlite.pragma("cache_size = -65536");
    sqlite.pragma("mmap_size = 1073741824");
    // SQLite's lower() folds ASCII only; `~` must find 'Núñez' from 'ÑEZ'.
    sqlite.function("fold", { deterministic: true }, (value: unknown) => (value === null || value === undefined ? null : String(value).toLowerCase()));
    // Names sort by a key stored beside them; an equality filter on a name looks its key up.
    sqlite.function("collation_key", { deterministic: true }, (value: unknown) => (value === null || value === undefined ? null : collationKey(String(value))));
    return new RosterReader(sqlite);
  }

  close(): void {
    this.sqlite.close();
  }

  /**
   * The district's roster version, `<latest changeset>.<latest tombstone purge>`: it moves with
   * every apply and rollback, and when a purge removes records the API showed.
   */
  version(districtId: number): string {
    return String(this.#version.get({ d: districtId }));
  }

  district(slug: string): { id: number; slug: string } | undefined {
    return this.#statement("SELECT id, slug FROM districts WHERE slug = ?").get(slug) as { id: number; slug: string } | undefined;
  }

  list(district: { id: number; slug: string }, query: ListQuery, limit: number, offset: number): ListPage {
    return this.#read(() => {
      const version = this.version(district.id);
      const resource = this.#armsHeld(query.resource, district.id, version, query.filter !== undefined && activeOnly(query.filter));
      const compiled = compileList({ ...query, resource });
      const params = { ...compiled.params, d: district.id, slug: district.slug };
      const signature = `${district.id}\u0000${compiled.pageSql}\u0000${JSON.stringify(compiled.params)}`;
      const total = this.#count(`${version}\u0000${signature}`, compiled.countSql, params);
      const appliedAt = this.#appliedAt(district.id, version);
      if (offset >= total) return { total, rows: [], fields: compiled.fields, appliedAt };
      const rows = this.#page(compiled, params, `${version}\u0000${signature}`, limit, offset);
      return { total, rows, fields: compiled.fields, appliedAt };
    });
  }

  get(district: { id: number; slug: string }, resource: Resource, sourcedId: string, fields?: readonly string[]): { row: Row; fields: string[]; appliedAt: AppliedAt } | undefined {
    return this.#read(() => {
      const version = this.version(district.id);
      const compiled = compileGet(this.#armsHeld(resource, district.id, version), sourcedId, fields);
      const row = this.#statement(compiled.sql).get({ ...compiled.params, d: district.id, slug: district.slug }) as Row | undefined;
      if (row === undefined) return undefined;
      return { row, fields: compiled.fields, appliedAt: this.#appliedAt(district.id, version) };
    });
  }

  /**
   * The resource without the tombstone arms of tables holding none of the district's rows: a
   * district with no removed users reads users as it did before tombstones existed (one arm,
   * seekable through its indexes), and so does a filter that asks for active records only.
   * Looked up once per roster version.
   */
  #armsHeld(resource: Resource, districtId: number, version: string, activeOnly = false): Resource {
    let cached = this.#tombstones.get(districtId);
    if (cached === undefined || cached.version !== version) {
      const held = new Set<string>();
      for (const table of TOMBSTONE_TABLES) {
        if (this.#statement(`SELECT 1 FROM ${table} WHERE district_id = ? LIMIT 1`).get(districtId) !== undefined) held.add(table);
      }
      cached = { version, held };
      remember(this.#tombstones, districtId, cached, MAX_COUNTS);
    }
    const held = cached.held;
    const arms = resource.arms.filter((arm) => arm.tombstones === undefined || (!activeOnly && held.has(arm.tombstones)));
    return arms.length === resource.arms.length ? resource : { ...resource, arms };
  }

  /** When each of the district's syncs was applied: one row per sync, reloaded when the roster version moves. */
  #appliedAt(districtId: number, version: string): AppliedAt {
    let cached = this.#applied.get(districtId);
    if (cached === undefined || cached.version !== version) {
      const rows = this.#statement("SELECT sync_id, created_at FROM roster_changesets WHERE district_id = ? AND kind = 'apply'").raw(true).all(districtId) as Array<[number, string]>;
      cached = { version, at: new Map(rows) };
      this.#applied.set(districtId, cached);
    }
    const at = cached.at;
    return (syncId) => at.get(syncId) ?? null;
  }

  /** True when the district has a record of the resource with that sourcedId. */
  exists(district: { id: number; slug: string }, resource: Resource, sourcedId: string): boolean {
    return this.get(district, resource, sourcedId, ["sourcedId"]) !== undefined;
  }

  /**
   * Changes after the cursor, in order, with when each record's sync was applied. Only applying
   * and rolling back write changes, so held, failed or discarded syncs have none; the staff-id
   * map is internal and skipped (the cursor still moves past it).
   */
  /**
   * Up to `limit` feed entries after the cursor, in order. A first load is stored as one marker
   * (`op = 'load'`); it is read out here as one `create` per row that still carries the loading
   * sync, in key order, with cursors `<marker id>.<position>`. A row changed since then left that
   * set, but its later change follows in the feed with the whole record, so nothing is lost.
   */
  changes(districtId: number, after: FeedCursor, limit: number): { entries: FeedEntry[]; next: FeedCursor; appliedAt: Map<number, string> } {
    return this.#read(() => {
      const scanned = this.#statement(
        `SELECT c.id, c.sync_id, c.entity, c.key, c.op, c.before_json, c.after_json FROM roster_changes c
         WHERE c.district_id = @d AND (c.id > @after OR (c.id = @after AND c.op = 'load' AND @within > 0)) ORDER BY c.id LIMIT @limit`,
      ).all({ d: districtId, after: after.id, within: after.within, limit }) as ChangeRow[];
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
        const loaded = change.entity === "staff_ids" ? [] : this.#loadedRows(districtId, change, start, wanted);
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
      const applied = this.#statement("SELECT created_at FROM roster_changesets WHERE sync_id = ? AND kind = 'apply'").pluck(true);
      for (const id of syncIds) {
        const at = applied.get(id) as string | undefined;
        if (at !== undefined) appliedAt.set(id, at);
      }
      return { entries, next, appliedAt };
    });
  }

  /** The rows a load marker stands for, from `start`, as `create` changes. */
  #loadedRows(districtId: number, marker: ChangeRow, start: number, count: number): ChangeRow[] {
    const table = rosterTable(marker.entity as RosterEntity);
    const scopes = (JSON.parse(marker.after_json ?? "{}") as { scopes?: string[] }).scopes;
    const columns = [...table.key, ...table.columns];
    const scopeFilter = scopes ? ` AND scope IN (${scopes.map((s) => `'${s.replace(/'/g, "''")}'`).join(", ")})` : "";
    const rows = this.#statement(
      `SELECT ${columns.map((c) => `"${c}"`).join(", ")} FROM ${table.live} WHERE district_id = @d AND last_sync_id = @sync${scopeFilter}
       ORDER BY ${table.key.map((c) => `"${c}"`).join(", ")} LIMIT @count OFFSET @start`,
    ).all({ d: districtId, sync: marker.sync_id, count, start }) as Record<string, unknown>[];
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
  lookup(sql: string, params: Record<string, unknown>): Row | undefined {
    return this.#statement(sql).get(params) as Row | undefined;
  }

  #count(key: string, sql: string, params: Record<string, unknown>): number {
    const cached = this.#counts.get(key);
    if (cached !== undefined) return cached;
    const total = Number((this.#statement(sql).get(params) as { n: number }).n);
    remember(this.#counts, key, total, MAX_COUNTS);
    return total;
  }

  #page(compiled: CompiledList, params: Record<string, unknown>, key: string, limit: number, offset: number): Row[] {
    const seek = compiled.seek;
    if (seek === undefined || offset < SEEK_STEP || !this.#canSeek(seek.stepSql, params)) {
      return this.#statement(compiled.pageSql).all({ ...params, limit, offset }) as Row[];
    }
    const index = this.#seekIndex(key);
    const wanted = Math.floor(offset / SEEK_STEP) - 1;
    const step = this.#statement(seek.stepSql).raw(true);
    const firstStep = this.#statement(seek.firstStepSql).raw(true);
    while (index.anchors.length <= wanted && !index.complete) {
      const last = index.anchors[index.anchors.length - 1];
      const found = last === undefined ? (firstStep.get({ ...params, skip: SEEK_STEP }) as unknown[] | undefined) : (step.get({ ...params, ...anchorParams(last), skip: SEEK_STEP - 1 }) as unknown[] | undefined);
      if (found === undefined) index.complete = true;
      else index.anchors.push(found);
    }
    const usable = Math.min(wanted, index.anchors.length - 1);
    if (usable < 0) return this.#statement(compiled.pageSql).all({ ...params, limit, offset }) as Row[];
    const position = (usable + 1) * SEEK_STEP;
    let anchor = index.anchors[usable]!;
    if (seek.merged && offset > position) {
      // Arms merged by SQLite build every row they pass, skipped ones too: skip with the step
      // (order columns only) to the page's first row, then build just the page.
      const first = step.get({ ...params, ...anchorParams(anchor), skip: offset - position - 1 }) as unknown[] | undefined;
      if (first === undefined) return [];
      anchor = first;
    }
    return this.#statement(seek.pageSql).all({ ...params, ...anchorParams(anchor), limit, offset: seek.merged ? 0 : offset - position }) as Row[];
  }

  #seekIndex(key: string): SeekIndex {
    let index = this.#seeks.get(key);
    if (index === undefined) {
      index = { anchors: [], complete: false };
      remember(this.#seeks, key, index, MAX_SEEKS);
    }
    return index;
  }

  /** Seeking pays only when an index delivers the order; a sorted scan per step would cost more than OFFSET. */
  #canSeek(stepSql: string, params: Record<string, unknown>): boolean {
    let ok = this.#seekable.get(stepSql);
    if (ok === undefined) {
      const probe: Record<string, unknown> = { ...params, skip: 0 };
      for (let i = 0; i < 16; i++) probe[`a${i}`] = "";
      const plan = this.sqlite.prepare(`EXPLAIN QUERY PLAN ${stepSql}`).all(probe) as Array<{ detail: string }>;
      ok = !plan.some((p) => p.detail.includes("TEMP B-TREE"));
      remember(this.#seekable, stepSql, ok, MAX_STATEMENTS);
    }
    return ok;
  }

  #statement(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.sqlite.prepare(sql);
      remember(this.#statements, sql, statement, MAX_STATEMENTS);
    }
    return statement;
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

/** A small LRU: Map keeps insertion order, so the first key is the least recently stored. */
function remember<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
}
