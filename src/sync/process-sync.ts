import { rmSync } from "node:fs";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { isoNow } from "../clock.ts";
import type { Clock } from "../clock.ts";
import type { Database, Job, SyncStatus } from "../db/schema.ts";
import { RosterdockError } from "../errors.ts";
import { districtDateFormat } from "../intake/date-format.ts";
import { ISSUE_CODES, MemoryIssueSink, makeIssue } from "../intake/issue.ts";
import type { EntityName } from "../spec/roster-spec.ts";
import type { Cascade } from "./plan-cascade.ts";
import type { Issue, IssueCode } from "../intake/issue.ts";
import type { DeliveryFile, UnpackLimits } from "../intake/unpack.ts";
import type { LocalStorage } from "../storage/local-storage.ts";
import { applyPlan, rollbackChangeset, rosterVersion } from "./apply-sync.ts";
import type { Changeset } from "./apply-sync.ts";
import { DEFAULT_SAFEGUARDS, districtSafeguards, judgeSafeguards, planSync } from "./plan-sync.ts";
import type { HoldReason, LiveCounts, SafeguardThresholds, SyncPlan } from "./plan-sync.ts";
import { emptyCounts } from "./roster-tables.ts";
import type { SyncCounts } from "./roster-tables.ts";
import { DEFAULT_DIGEST_REVISIT_LIMIT, DIGEST_BYPASS_ERRORS, readDigestMeta } from "./line-digest.ts";
import type { DigestRef } from "./line-digest.ts";
import { refusedUploadHolds, refusedUploadsError } from "./refused-uploads.ts";
import { stageDelivery } from "./stage-delivery.ts";
import { sampleDiff, type EntitySample } from "./diff-sample.ts";
import { headerStyle, type HeaderStyle } from "../intake/header-style.ts";
import { purgeCutoff, purgeTombstones } from "./tombstones.ts";
import type { StageProgress, StagedDelivery } from "./stage-delivery.ts";
import type { EngineSql } from "./engine-sql.ts";
import { MAX_SYNC_ATTEMPTS } from "./max-sync-attempts.ts";
import { ParseThreads } from "./parse-thread.ts";

export const MAX_ISSUES_PER_FILE_AND_CODE = 100;
export const DEFAULT_TOMBSTONE_DAYS = 30;

export interface FileSummary {
  name: string;
  entity: string;
  rows: number;
  records: number;
  badRows: number;
  dropped: number;
  skipped: number;
  orphans: number;
  /** Rejected rows whose live record was kept unchanged. */
  kept: number;
  encoding: string | null;
  delimiter: string | null;
  /** The export the file name was recognised as (the spec's stem: `students`, `cc`, …). */
  stem?: string;
  /** How the header names its columns (see header-style.ts). */
  headerStyle?: HeaderStyle;
  failed: string | null;
}

/** `syncs.summary`: what a person needs besides the counts. */
export interface SyncSummary {
  files: FileSummary[];
  issueCounts: { error: number; warning: number; info: number };
  /** Every issue counted per code, including those beyond the stored first 100 per file and code. */
  issueCodes: Partial<Record<IssueCode, number>>;
  holdReasons: HoldReason[];
  liveCounts: LiveCounts | null;
  /** Entities the delivery spoke for; the others were left alone (but for dependents of what it deleted, see `cascades`). */
  present: string[];
  /** Dependents deleted with a record they pointed at, or rows of tonight's files left out with it. */
  cascades?: Cascade[];
  /** Line digests kept of the big files; `delta`: read against the previous night's (only changed lines read). */
  digests?: Array<{ file: string; dir: string; delta: boolean; unchanged: number; removed: number }>;
  changes: number | null;
  /** Secondary indexes the apply dropped and built again, the change being bulk (a first load, a school-year rollover). */
  rebuiltIndexes?: string[];
  approvedBy?: string;
  rolledBackBy?: string;
  discardedBy?: string;
  error?: string;
  durationMs: number;
  /** Milliseconds per stage: read and stage (with keys), plan, apply. */
  timings: { stageMs: number; planMs: number; applyMs: number };
  /** A held sync's sample of the rows it would create, update and delete (see diff-sample.ts). */
  preview?: EntitySample[];
}

export interface ProcessOptions {
  /** Apply even if the safeguards would hold (sync approve): the plan is still made against the live roster of now. */
  approvedBy?: string;
  /** An approval queued as a job: also resumes one a crash interrupted, and is a no-op once done. */
  resume?: boolean;
  onProgress?: (progress: StageProgress) => void;
  /** Told when the files are read and the sync moves on: planning, then applying (or holding). */
  onStage?: (stage: "planning" | "applying" | "holding") => void;
}

/** Where a sync's progress is told as it runs (the sync thread passes it on to the console). */
export type SyncReporting = Pick<ProcessOptions, "onProgress" | "onStage">;

export interface ProcessOutcome {
  syncId: number;
  status: SyncStatus;
  counts: SyncCounts;
  summary: SyncSummary | null;
  /** True when the sync had already been processed (a job re-run after a crash): nothing was done. */
  alreadyDone: boolean;
}

export interface SyncOutcomeEvent {
  status: "applied" | "held" | "failed";
  syncId: number;
  districtId: number;
  counts: SyncCounts;
}

export interface SyncProcessorOptions {
  safeguards?: SafeguardThresholds;
  unpackLimits?: Partial<UnpackLimits>;
  /** See `digestRevisitLimit` in config.ts (default 200,000). */
  digestRevisitLimit?: number;
  /** Days a removed record stays readable as a tombstone (`ROSTERDOCK_TOMBSTONE_DAYS`, default 30). */
  tombstoneDays?: number;
  /** Called inside the transaction that records the outcome (webhooks queue their deliveries there). */
  onOutcome?: (event: SyncOutcomeEvent, sql: EngineSql, now: string) => Promise<unknown>;
}

/**
 * The `process-sync` job: unpack → read → stage → plan → apply, hold or fail. Idempotent: a sync
 * already finished is left alone, a sync interrupted mid-way starts again from its files (staging
 * is scratch; the roster and the sync's status change together in one transaction).
 */
export class SyncProcessor {
  #connection: EngineSql | undefined;
  /** One parse thread kept from one sync to the next. */
  readonly #parseThreads = new ParseThreads();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly openConnection: () => EngineSql,
    private readonly storage: LocalStorage,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly options: SyncProcessorOptions = {},
  ) {}

  /** The engine's own connection, opened on first use (most CLI commands never need it). */
  private get sql(): EngineSql {
    return (this.#connection ??= this.openConnection());
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    await this.#parseThreads.close();
    await connection?.close();
  }

  /** For the worker: `{ syncId }` payload. A sync that keeps crashing is marked failed on the last attempt. */
  async handleJob(job: Job, reporting: SyncReporting = {}): Promise<void> {
    const { syncId, approvedBy } = JSON.parse(job.payload) as { syncId: number; approvedBy?: string };
    try {
      if (approvedBy === undefined) await this.process(syncId, reporting);
      else await this.process(syncId, { ...reporting, approvedBy, resume: true });
    } catch (error) {
      if (job.attempts >= MAX_SYNC_ATTEMPTS) await this.markFailed(syncId, error);
      throw error;
    }
  }

  async process(syncId: number, options: ProcessOptions = {}): Promise<ProcessOutcome> {
    const started = Date.now();
    const sync = await this.db.selectFrom("syncs").selectAll().where("id", "=", syncId).executeTakeFirst();
    if (!sync) throw new RosterdockError("ERR_SYNC_NOT_FOUND", `No sync has id ${syncId}.`, { syncId });
    const runnable: SyncStatus[] = options.approvedBy === undefined ? ["waiting", "processing"] : options.resume ? ["held", "processing"] : ["held"];
    if (!runnable.includes(sync.status)) {
      if (options.approvedBy !== undefined && !options.resume) {
        throw new RosterdockError("ERR_SYNC_STATE", `Sync ${syncId} is ${sync.status}; only a held sync can be approved.`, { syncId, status: sync.status });
      }
      return { syncId, status: sync.status, counts: JSON.parse(sync.counts) as SyncCounts, summary: JSON.parse(sync.summary) as SyncSummary, alreadyDone: true };
    }
    const district = await this.db.selectFrom("districts").select(["id", "settings"]).where("id", "=", sync.district_id).executeTakeFirstOrThrow();
    await this.db.updateTable("syncs").set({ status: "processing", updated_at: isoNow(this.clock) }).where("id", "=", syncId).execute();
    this.logger.info({ event: "sync.processing", syncId, districtId: district.id }, "sync processing");

    const files = await this.db.selectFrom("sync_files").select(["name", "stored_path", "sha256"]).where("sync_id", "=", syncId).orderBy("id").execute();
    // Stored in the database (several nodes): copied into this node's spool, checked, removed after the sync.
    const local = await this.storage.localFiles(syncId, files);
    try {
      return await this.#processFiles(syncId, sync.delivery_id, district, local.files, options, started);
    } finally {
      await local.release();
    }
  }

  async #processFiles(
    syncId: number,
    deliveryId: number | null,
    district: { id: number; settings: string },
    deliveryFiles: DeliveryFile[],
    options: ProcessOptions,
    started: number,
  ): Promise<ProcessOutcome> {
    const digestDir = this.storage.digestDir(district.id, syncId);
    const refused = await refusedUploadHolds(this.db, deliveryId);
    // Read against the previous night's line digests when they match the live roster; if the roster
    // changes before this sync applies, it is read again in full (the digests spoke for the old roster).
    for (let useDigests = true; ; useDigests = false) {
      try {
        const result = await this.#attempt(syncId, district, deliveryFiles, options, started, digestDir, useDigests, refused);
        if (result !== null) return result;
      } catch (error) {
        // A digest is only a shortcut: a damaged one, or one that would cost more than it saves
        // (too many lines to look at again, too few found in it), means reading the delivery in full.
        if (!useDigests || !(error instanceof Error) || !DIGEST_BYPASS_ERRORS.has(error.name)) throw error;
        const damaged = error.name === "DamagedDigestError";
        this.logger.warn(
          { event: damaged ? "sync.digest_damaged" : "sync.digest_bypassed", syncId, error: error.message },
          damaged ? "line digest damaged: reading the delivery in full" : "line digest costs more than it saves tonight: reading the delivery in full",
        );
      }
    }
  }

  async #attempt(
    syncId: number,
    district: { id: number; settings: string },
    deliveryFiles: DeliveryFile[],
    options: ProcessOptions,
    started: number,
    digestDir: string,
    useDigests: boolean,
    refused: HoldReason[],
  ): Promise<ProcessOutcome | null> {
    const issues = new MemoryIssueSink({ maxPerFileAndCode: MAX_ISSUES_PER_FILE_AND_CODE });
    const thresholds = districtSafeguards(district.settings, this.options.safeguards ?? DEFAULT_SAFEGUARDS);
    const sql = this.sql;
    rmSync(digestDir, { recursive: true, force: true });
    const previous = useDigests ? await previousDigests(sql, district.id, this.storage) : { version: await rosterVersion(sql, district.id), refs: [] };
    await sql.attachStage(syncId);
    const timings = { stageMs: 0, planMs: 0, applyMs: 0 };
    let applied = false;
    try {
      const staged = await stageDelivery(deliveryFiles, {
        sql,
        districtId: district.id,
        issues,
        digests: { dir: digestDir, previous: previous.refs, revisitLimit: this.options.digestRevisitLimit ?? DEFAULT_DIGEST_REVISIT_LIMIT },
        dateFormat: districtDateFormat(district.settings),
        parseThreads: this.#parseThreads,
        ...(this.options.unpackLimits ? { unpackLimits: this.options.unpackLimits } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      });
      timings.stageMs = Date.now() - started;
      const summaryOf = (plan: SyncPlan | null, holdReasons: HoldReason[], changeset: Changeset | null): SyncSummary => ({
        files: staged.files.map((f) => ({
          name: f.name,
          entity: f.entity,
          rows: f.stats.rows,
          records: f.stats.records - f.orphans,
          badRows: f.stats.badRows,
          dropped: f.stats.dropped,
          skipped: f.stats.skipped,
          orphans: f.orphans,
          kept: f.kept,
          encoding: f.stats.encoding,
          delimiter: f.stats.delimiter,
          stem: f.stem,
          headerStyle: headerStyle(f.stats.header, f.entity),
          failed: f.stats.failed,
        })),
        issueCounts: { ...issues.counts },
        digests: staged.digests.map((d) => ({ file: d.file, dir: this.storage.relative(d.dir), unchanged: d.unchanged, removed: d.removed, delta: d.delta })),
        issueCodes: issueCodeCounts(issues),
        holdReasons,
        liveCounts: plan?.liveCounts ?? null,
        present: presentList(staged),
        ...(plan !== null && plan.cascades.length > 0 ? { cascades: plan.cascades } : {}),
        changes: changeset?.changes ?? null,
        ...rebuiltField(changeset),
        ...(options.approvedBy !== undefined ? { approvedBy: options.approvedBy } : {}),
        durationMs: Date.now() - started,
        timings: { ...timings },
      });
      const now = () => isoNow(this.clock);
      if (staged.failed || deliveryFiles.length === 0) {
        const summary = { ...summaryOf(null, [], null), ...refusedUploadsError(refused) };
        const finished = await sql.transaction(async () => {
          if (!(await this.#stillProcessing(syncId))) return false;
          const at = now();
          await this.#finish(syncId, "failed", emptyCounts(), summary, issues.kept, at);
          await this.options.onOutcome?.({ status: "failed", syncId, districtId: district.id, counts: emptyCounts() }, sql, at);
          return true;
        });
        if (!finished) return this.#finishedElsewhere(syncId);
        this.logger.warn({ event: "sync.failed", syncId, districtId: district.id, errors: issues.counts.error }, "sync failed");
        return { syncId, status: "failed", counts: emptyCounts(), summary, alreadyDone: false };
      }
      for (;;) {
        const version = await rosterVersion(sql, district.id);
        if (staged.delta.size > 0 && version !== previous.version) return null;
        const planStarted = Date.now();
        options.onStage?.("planning");
        const plan = await planSync(sql, district.id, staged.present, staged.delta);
        countKept(plan.counts, staged.kept);
        timings.planMs = Date.now() - planStarted;
        const applyStarted = Date.now();
        const holdReasons =
          options.approvedBy === undefined
            ? [...refused, ...judgeSafeguards(plan.counts, plan.liveCounts, thresholds, staged.emptyFiles, staged.unreadable, plan.cascades)]
            : [];
        options.onStage?.(holdReasons.length > 0 ? "holding" : "applying");
        // What the operator deciding on a held sync looks at: the staging it comes from is removed below.
        const preview = holdReasons.length > 0 ? await sampleDiff(sql, plan) : undefined;
        const outcome = await sql.transaction(async () => {
          // Another node finished this very sync meanwhile (this one lost its job's lease): its outcome stands.
          if (!(await this.#stillProcessing(syncId))) return "elsewhere" as const;
          // Another sync of the district applied since the plan was made: plan again.
          if ((await rosterVersion(sql, district.id)) !== version) return null;
          for (const issue of cascadeIssues(plan, staged)) issues.add(issue);
          if (holdReasons.length > 0) {
            const summary: SyncSummary = { ...summaryOf(plan, holdReasons, null), ...(preview ? { preview } : {}) };
            const at = now();
            await this.#finish(syncId, "held", plan.counts, summary, issues.kept, at);
            await this.options.onOutcome?.({ status: "held", syncId, districtId: district.id, counts: plan.counts }, sql, at);
            return { status: "held" as const, summary, changeset: null };
          }
          const changeset: Changeset = await applyPlan(sql, plan, syncId, now());
          await this.#purge(district.id, now());
          timings.applyMs = Date.now() - applyStarted;
          const summary = summaryOf(plan, [], changeset);
          const at = now();
          await this.#finish(syncId, "applied", plan.counts, summary, issues.kept, at);
          await this.options.onOutcome?.({ status: "applied", syncId, districtId: district.id, counts: plan.counts }, sql, at);
          return { status: "applied" as const, summary, changeset };
        });
        if (outcome === null) continue;
        if (outcome === "elsewhere") return this.#finishedElsewhere(syncId);
        applied = outcome.status === "applied";
        this.logger.info(
          {
            event: outcome.status === "held" ? "sync.held" : "sync.applied",
            syncId,
            districtId: district.id,
            counts: plan.counts,
            changes: outcome.changeset?.changes ?? 0,
            ...rebuiltField(outcome.changeset),
          },
          `sync ${outcome.status}`,
        );
        return { syncId, status: outcome.status, counts: plan.counts, summary: outcome.summary, alreadyDone: false };
      }
    } finally {
      await sql.detachStage();
      // Only the district's latest applied sync's digests are ever read.
      if (applied) await this.storage.removeDigests(district.id, syncId).catch(() => undefined);
      else rmSync(digestDir, { recursive: true, force: true });
    }
  }

  /** Marks a held (or waiting) sync discarded; the roster was never touched by it. */
  async discard(syncId: number, actor: string): Promise<void> {
    const sql = this.sql;
    await sql.transaction(async () => {
      const sync = await this.#syncRow(syncId);
      if (sync.status !== "held" && sync.status !== "waiting") {
        throw new RosterdockError("ERR_SYNC_STATE", `Sync ${syncId} is ${sync.status}; only a held or waiting sync can be discarded.`, { syncId, status: sync.status });
      }
      const summary = { ...(JSON.parse(sync.summary) as object), discardedBy: actor };
      await sql.run(`UPDATE ${sql.main}syncs SET status = 'discarded', summary = ?, updated_at = ? WHERE id = ?`, [JSON.stringify(summary), isoNow(this.clock), syncId]);
    });
    this.logger.info({ event: "sync.discarded", syncId }, "sync discarded");
  }

  /** Restores the roster as it was before an applied sync (the district's most recent one). */
  async rollback(syncId: number, actor: string): Promise<Changeset> {
    const sql = this.sql;
    const changeset = await sql.transaction(async () => {
      const sync = await this.#syncRow(syncId);
      if (sync.status !== "applied") {
        throw new RosterdockError("ERR_SYNC_STATE", `Sync ${syncId} is ${sync.status}; only an applied sync can be rolled back.`, { syncId, status: sync.status });
      }
      const now = isoNow(this.clock);
      const result = await rollbackChangeset(sql, syncId, sync.district_id, now);
      await this.#purge(sync.district_id, now);
      const summary = { ...(JSON.parse(sync.summary) as object), rolledBackBy: actor };
      await sql.run(`UPDATE ${sql.main}syncs SET status = 'rolled_back', summary = ?, updated_at = ? WHERE id = ?`, [JSON.stringify(summary), now, syncId]);
      return result;
    });
    this.logger.info(
      { event: "sync.rolled_back", syncId, changes: changeset.changes, ...rebuiltField(changeset) },
      "sync rolled back",
    );
    return changeset;
  }

  /**
   * Purges every district's tombstones older than the retention (the server does so hourly; each
   * apply and rollback does it for its own district). Returns the rows purged.
   */
  async purgeTombstones(): Promise<number> {
    const purged = await this.sql.transaction(() => this.#purge(undefined, isoNow(this.clock)));
    if (purged > 0) this.logger.info({ event: "roster.tombstones.purged", rows: purged }, "tombstones past their retention purged");
    return purged;
  }

  /** Inside the caller's write transaction. */
  #purge(districtId: number | undefined, now: string): Promise<number> {
    return purgeTombstones(this.sql, districtId, purgeCutoff(now, this.options.tombstoneDays ?? DEFAULT_TOMBSTONE_DAYS), now);
  }

  async #syncRow(syncId: number): Promise<{ status: SyncStatus; district_id: number; summary: string }> {
    const sql = this.sql;
    const sync = await sql.get<{ status: SyncStatus; district_id: number; summary: string }>(`SELECT status, district_id, summary FROM ${sql.main}syncs WHERE id = ?`, [syncId]);
    if (!sync) throw new RosterdockError("ERR_SYNC_NOT_FOUND", `No sync has id ${syncId}.`, { syncId });
    return { ...sync, district_id: Number(sync.district_id) };
  }

  /** The sync's outcome and its issues, written together (inside the caller's transaction). */
  /**
   * Read inside the outcome's write transaction (which holds the roster write lock): a node that
   * lost its job's lease may still be running the sync another node has since finished, and only
   * the first outcome written may stand.
   */
  async #stillProcessing(syncId: number): Promise<boolean> {
    return (await this.sql.value(`SELECT status FROM ${this.sql.main}syncs WHERE id = ?`, [syncId])) === "processing";
  }

  async #finishedElsewhere(syncId: number): Promise<ProcessOutcome> {
    const sync = await this.db.selectFrom("syncs").selectAll().where("id", "=", syncId).executeTakeFirstOrThrow();
    this.logger.warn({ event: "sync.finished_elsewhere", syncId, status: sync.status }, "sync already finished by another node: this node's outcome is dropped");
    return { syncId, status: sync.status, counts: JSON.parse(sync.counts) as SyncCounts, summary: JSON.parse(sync.summary) as SyncSummary, alreadyDone: true };
  }

  async #finish(syncId: number, status: SyncStatus, counts: SyncCounts, summary: SyncSummary, kept: readonly Issue[], now: string): Promise<void> {
    const sql = this.sql;
    await sql.run(`DELETE FROM ${sql.main}sync_issues WHERE sync_id = ?`, [syncId]);
    const insert = `INSERT INTO ${sql.main}sync_issues (sync_id, file, "row", "column", value, code, severity, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
    for (const i of kept) await sql.run(insert, [syncId, i.file, i.row, i.column, i.value, i.code, i.severity, i.message]);
    await sql.run(`UPDATE ${sql.main}syncs SET status = ?, counts = ?, summary = ?, updated_at = ? WHERE id = ?`, [status, JSON.stringify(counts), JSON.stringify(summary), now, syncId]);
  }

  private async markFailed(syncId: number, error: unknown): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    const sql = this.sql;
    await sql.transaction(async () => {
      const at = isoNow(this.clock);
      const districtId = await sql.value(
        `UPDATE ${sql.main}syncs SET status = 'failed', summary = ?, updated_at = ? WHERE id = ? AND status IN ('waiting', 'processing') RETURNING district_id`,
        [JSON.stringify({ error: message }), at, syncId],
      );
      if (districtId !== undefined) await this.options.onOutcome?.({ status: "failed", syncId, districtId: Number(districtId), counts: emptyCounts() }, sql, at);
    });
  }
}

/** Kept records are live rows left as they were: counted as `kept`, not as unchanged. */
function countKept(counts: SyncCounts, kept: ReadonlyMap<EntityName, number>): void {
  for (const [entity, n] of kept) {
    if (n === 0) continue;
    counts[entity].kept = n;
    counts[entity].unchanged = Math.max(0, counts[entity].unchanged - n);
  }
}

/** One warning per cascade, on tonight's file of what the dependents pointed at (or the delivery's first file). */
function cascadeIssues(plan: SyncPlan, staged: StagedDelivery): Issue[] {
  return plan.cascades
    .filter((c) => c.entity !== "staff_ids")
    .map((c) => {
      const via: EntityName = c.via === "staff_ids" ? "users" : c.via;
      const file = staged.files.find((f) => f.entity === via)?.name ?? staged.files[0]?.name ?? "(delivery)";
      return makeIssue("DEPENDENTS_DELETED", { file, detail: file, count: c.deleted + c.dropped, value: c.entity, column: c.column, expected: via });
    });
}

/** `{ rebuiltIndexes }` when the changeset rebuilt any (summaries and log lines), else nothing. */
function rebuiltField(changeset: Changeset | null): { rebuiltIndexes?: string[] } {
  return changeset !== null && changeset.rebuiltIndexes.length > 0 ? { rebuiltIndexes: changeset.rebuiltIndexes } : {};
}

function issueCodeCounts(issues: MemoryIssueSink): Partial<Record<IssueCode, number>> {
  const counts: Partial<Record<IssueCode, number>> = {};
  for (const code of Object.keys(ISSUE_CODES) as IssueCode[]) {
    const n = issues.countOf(code);
    if (n > 0) counts[code] = n;
  }
  return counts;
}

function presentList(staged: StagedDelivery): string[] {
  const list: string[] = [];
  for (const entity of staged.present.entities) {
    if (entity === "users") for (const scope of [...staged.present.userScopes].sort()) list.push(`users:${scope}`);
    else list.push(entity);
  }
  return list;
}

/**
 * The line digests usable tonight: those of the district's latest changeset, if it is an
 * apply not rolled back (any other change to the roster makes them stale), with `version` the
 * roster version they speak for.
 */
async function previousDigests(sql: EngineSql, districtId: number, storage: LocalStorage): Promise<{ version: number; refs: DigestRef[] }> {
  const latest = await sql.get<{ id: number; kind: string; rolled_back_at: string | null; summary: string }>(
    `SELECT c.id, c.kind, c.rolled_back_at, s.summary FROM ${sql.main}roster_changesets c JOIN ${sql.main}syncs s ON s.id = c.sync_id WHERE c.district_id = ? ORDER BY c.id DESC LIMIT 1`,
    [districtId],
  );
  if (latest === undefined) return { version: 0, refs: [] };
  if (latest.kind !== "apply" || latest.rolled_back_at !== null) return { version: Number(latest.id), refs: [] };
  const summary = JSON.parse(latest.summary) as Partial<SyncSummary>;
  const refs: DigestRef[] = [];
  for (const digest of summary.digests ?? []) {
    const dir = storage.absolute(digest.dir);
    const meta = readDigestMeta(dir);
    if (meta !== null) refs.push({ dir, meta });
  }
  return { version: Number(latest.id), refs };
}
