import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { sql } from "../db/kysely.ts";
import type { Kysely, Selectable } from "kysely";
import type { Logger } from "pino";
import type { RosterDatabase } from "../db/open-database.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import { isoNow } from "../clock.ts";
import type { Clock } from "../clock.ts";
import type { Database, Job, SyncIssueTable, SyncStatus } from "../db/schema.ts";
import type { DistrictService } from "../districts/district-service.ts";
import { RosterdockError } from "../errors.ts";
import type { LocalStorage } from "../storage/local-storage.ts";
import type { Changeset } from "./apply-sync.ts";
import type { ProcessOutcome, SyncProcessor, SyncProcessorOptions, SyncReporting, SyncSummary } from "./process-sync.ts";
import { findDanglingReferences } from "./roster-doctor.ts";
import type { DanglingReference } from "./roster-doctor.ts";
import type { EngineSql } from "./engine-sql.ts";
import type { StageProgress } from "./stage-delivery.ts";

/** An issue as operators read it: the stored row without its bookkeeping. */
export type SyncIssueView = Omit<Selectable<SyncIssueTable>, "id" | "sync_id">;

export interface SyncView {
  id: number;
  status: SyncStatus;
  createdAt: string;
  files: { name: string; size: number; sha256: string }[];
  counts: Record<string, { created: number; updated: number; deleted: number; unchanged: number; kept?: number }>;
  /** The first issues, errors first (at most 100); `sync show` has the totals. */
  issues: SyncIssueView[];
}

export interface SyncDetail extends SyncView {
  district: string;
  source: "sftp" | "cli";
  updatedAt: string;
  summary: Partial<SyncSummary>;
  /** Issues stored for the sync (the first 100 per file and code) and counted overall. */
  issueTotals: { stored: number; error: number; warning: number; info: number };
}

export const LISTED_ISSUES = 100;

const SEVERITY_ORDER = sql<number>`CASE severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END`;

/** Syncs as operators and scripts see them, and what they can do with them. */
export class SyncService {
  #processor: Promise<SyncProcessor> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly districts: DistrictService,
    /**
     * The engine, loaded when a sync is first processed, approved, discarded or rolled back: the
     * pipeline's modules are most of the code, and a CLI command that only lists or shows (most
     * of them) starts faster without them.
     */
    private readonly loadProcessor: () => Promise<SyncProcessor>,
    private readonly storage: LocalStorage,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** Every reference of the district's live roster that points at nothing: none, after any apply or rollback. */
  async doctor(slug: string): Promise<{ district: string; dangling: DanglingReference[] }> {
    const district = await this.districts.requireRow(slug);
    return { district: district.slug, dangling: await findDanglingReferences(this.db, district.id) };
  }

  /** The district's syncs, newest first. */
  async list(slug: string, limit = 100): Promise<SyncView[]> {
    const district = await this.districts.requireRow(slug);
    const syncs = await this.db.selectFrom("syncs").selectAll().where("district_id", "=", district.id).orderBy("id", "desc").limit(limit).execute();
    if (syncs.length === 0) return [];
    const files = await this.db
      .selectFrom("sync_files")
      .select(["sync_id", "name", "size", "sha256"])
      .where(
        "sync_id",
        "in",
        syncs.map((s) => s.id),
      )
      .orderBy("id")
      .execute();
    const views: SyncView[] = [];
    for (const s of syncs) {
      views.push({
        id: s.id,
        status: s.status,
        createdAt: s.created_at,
        files: files.filter((f) => f.sync_id === s.id).map((f) => ({ name: f.name, size: Number(f.size), sha256: f.sha256 })),
        counts: JSON.parse(s.counts) as SyncView["counts"],
        issues: await this.issues(s.id, LISTED_ISSUES),
      });
    }
    return views;
  }

  async show(syncId: number): Promise<SyncDetail> {
    const s = await this.db
      .selectFrom("syncs")
      .innerJoin("districts", "districts.id", "syncs.district_id")
      .selectAll("syncs")
      .select("districts.slug")
      .where("syncs.id", "=", syncId)
      .executeTakeFirst();
    if (!s) throw new RosterdockError("ERR_SYNC_NOT_FOUND", `No sync has id ${syncId}.`, { syncId });
    const files = await this.db.selectFrom("sync_files").select(["name", "size", "sha256"]).where("sync_id", "=", syncId).orderBy("id").execute();
    const stored = await this.db.selectFrom("sync_issues").select((eb) => eb.fn.countAll<number>().as("n")).where("sync_id", "=", syncId).executeTakeFirstOrThrow();
    const summary = JSON.parse(s.summary) as Partial<SyncSummary>;
    return {
      id: s.id,
      district: s.slug,
      status: s.status,
      source: s.source,
      createdAt: s.created_at,
      updatedAt: s.updated_at,
      files: files.map((f) => ({ name: f.name, size: Number(f.size), sha256: f.sha256 })),
      counts: JSON.parse(s.counts) as SyncView["counts"],
      summary,
      issueTotals: { stored: Number(stored.n), ...(summary.issueCounts ?? { error: 0, warning: 0, info: 0 }) },
      issues: await this.issues(syncId, LISTED_ISSUES),
    };
  }

  /** Stored issues, errors first, then in the order they were found. */
  async issues(syncId: number, limit?: number): Promise<SyncIssueView[]> {
    let query = this.db
      .selectFrom("sync_issues")
      .select(["file", "row", "column", "value", "code", "severity", "message"])
      .where("sync_id", "=", syncId)
      .orderBy(SEVERITY_ORDER)
      .orderBy("id");
    if (limit !== undefined) query = query.limit(limit);
    return query.execute();
  }

  /** One page of a sync's stored issues, errors first, filtered by severity and file, with how many match. */
  async issuesPage(
    syncId: number,
    filter: { severity?: SyncIssueView["severity"]; file?: string },
    page: { offset: number; limit: number },
  ): Promise<{ issues: SyncIssueView[]; matching: number }> {
    let base = this.db.selectFrom("sync_issues").where("sync_id", "=", syncId);
    if (filter.severity) base = base.where("severity", "=", filter.severity);
    if (filter.file !== undefined) base = base.where("file", "=", filter.file);
    const [issues, counted] = await Promise.all([
      base.select(["file", "row", "column", "value", "code", "severity", "message"]).orderBy(SEVERITY_ORDER).orderBy("id").limit(page.limit).offset(page.offset).execute(),
      base.select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow(),
    ]);
    return { issues, matching: Number(counted.n) };
  }

  /** The files a sync's stored issues name, for filtering. */
  async issueFiles(syncId: number): Promise<string[]> {
    const rows = await this.db.selectFrom("sync_issues").select("file").distinct().where("sync_id", "=", syncId).orderBy("file").execute();
    return rows.map((r) => r.file);
  }

  /** The `process-sync` job handler. */
  async processJob(job: Job, reporting: SyncReporting = {}): Promise<void> {
    await (await this.#engine()).processor.handleJob(job, reporting);
  }

  async close(): Promise<void> {
    const loading = this.#processor;
    this.#processor = undefined;
    await (await loading?.catch(() => undefined))?.close();
  }

  /** Runs the pipeline on local files without a server: a sync with source "cli", processed now. */
  async ingest(slug: string, paths: readonly string[], options: { onProgress?: (p: StageProgress) => void } = {}): Promise<ProcessOutcome> {
    const { processor, storage, clock } = await this.#engine();
    const district = await this.districts.requireRow(slug);
    const files = await collectFiles(paths);
    if (files.length === 0) throw new RosterdockError("ERR_INVALID_ARGUMENT", `No files found in ${paths.join(", ")}.`);
    const recorded: Array<{ name: string; size: number; sha256: string; stored_path: string }> = [];
    for (const path of files) {
      const [size, sha256] = await Promise.all([stat(path).then((s) => s.size), sha256File(path)]);
      let storedPath: string;
      try {
        storedPath = await storage.archive(district.id, path);
      } catch {
        storedPath = path; // another file system: the sync points at the operator's file
      }
      recorded.push({ name: basename(path), size, sha256, stored_path: storedPath });
    }
    const now = isoNow(clock);
    const syncId = await this.db.transaction().execute(async (trx) => {
      const sync = await trx
        .insertInto("syncs")
        .values({ district_id: district.id, delivery_id: null, source: "cli", status: "waiting", created_at: now, updated_at: now, counts: "{}", summary: "{}" })
        .returning("id")
        .executeTakeFirstOrThrow();
      for (const file of recorded) await trx.insertInto("sync_files").values({ sync_id: sync.id, ...file }).execute();
      return sync.id;
    });
    return processor.process(syncId, options.onProgress ? { onProgress: options.onProgress } : {});
  }

  /** Applies a held sync, planned again against the roster as it is now. */
  async approve(syncId: number, actor: string): Promise<ProcessOutcome> {
    const { processor } = await this.#engine();
    const outcome = await processor.process(syncId, { approvedBy: actor });
    await this.#audit(actor, "sync.approved", syncId, { status: outcome.status });
    return outcome;
  }

  async discard(syncId: number, actor: string): Promise<SyncDetail> {
    await (await this.#engine()).processor.discard(syncId, actor);
    await this.#audit(actor, "sync.discarded", syncId, {});
    return this.show(syncId);
  }

  /** Purges tombstones past `ROSTERDOCK_TOMBSTONE_DAYS`, of every district; the rows purged. */
  async purgeTombstones(): Promise<number> {
    return (await this.#engine()).processor.purgeTombstones();
  }

  async rollback(syncId: number, actor: string): Promise<{ sync: SyncDetail; changeset: Changeset }> {
    const changeset = await (await this.#engine()).processor.rollback(syncId, actor);
    await this.#audit(actor, "sync.rolled_back", syncId, { changes: changeset.changes });
    return { sync: await this.show(syncId), changeset };
  }

  async #audit(actor: string, action: string, syncId: number, details: Record<string, unknown>): Promise<void> {
    const sync = await this.db.selectFrom("syncs").select("district_id").where("id", "=", syncId).executeTakeFirst();
    await this.audit.record({ actor, action, districtId: sync?.district_id ?? null, details: { syncId, ...details } });
  }

  async #engine(): Promise<{ processor: SyncProcessor; storage: LocalStorage; clock: Clock }> {
    if (this.#processor === undefined) {
      const loading = this.loadProcessor();
      // A load that failed (a module missing from a broken install) is tried again next time.
      loading.catch(() => {
        if (this.#processor === loading) this.#processor = undefined;
      });
      this.#processor = loading;
    }
    return { processor: await this.#processor, storage: this.storage, clock: this.clock };
  }
}

/** Files as given, a folder's files (not its subfolders or hidden files), zips as files. */
async function collectFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const given of paths) {
    const path = resolve(given);
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new RosterdockError("ERR_NOT_FOUND", `${given}: no such file or folder.`, { path: given });
    }
    if (info.isDirectory()) {
      const entries = (await readdir(path, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith(".")).map((e) => join(path, e.name));
      files.push(...entries.sort());
    } else files.push(path);
  }
  return files;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export interface SyncServiceDeps {
  database: RosterDatabase;
  districts: DistrictService;
  storage: LocalStorage;
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
  /** Staging databases go to `<dataDir>/staging` (SQLite). */
  dataDir: string;
  /** `ROSTERDOCK_DATABASE_URL`: on PostgreSQL the engine opens a connection of its own with it. */
  databaseUrl?: string | undefined;
  options?: SyncProcessorOptions;
}

/**
 * The sync service with its engine: on SQLite over the engine's own connection and attached
 * staging files, on PostgreSQL over a connection of its own and its temporary tables. Without
 * either (a PostgreSQL database opened without its URL) it lists and shows but cannot process.
 */
export function createSyncService(deps: SyncServiceDeps): SyncService {
  const { database, districts, storage, audit, clock, logger } = deps;
  const sqlite = database.sqlite;
  const url = deps.databaseUrl;
  if (sqlite === undefined && !url) throw new Error("createSyncService: a PostgreSQL database needs its URL (databaseUrl) for the engine's own connection");
  const loadProcessor = async (): Promise<SyncProcessor> => {
    const [{ SyncProcessor }, openEngine] = await Promise.all([
      import("./process-sync.ts"),
      sqlite !== undefined
        ? import("./sqlite-engine-sql.ts").then(({ SqliteEngineSql }) => (): EngineSql => new SqliteEngineSql(sqlite.name, join(deps.dataDir, "staging")))
        : import("./postgres-engine-sql.ts").then(({ PostgresEngineSql }) => (): EngineSql => new PostgresEngineSql(url!)),
    ]);
    return new SyncProcessor(database.db, openEngine, storage, clock, logger.child({ component: "sync" }), deps.options ?? {});
  };
  return new SyncService(database.db, districts, loadProcessor, storage, audit, clock);
}
