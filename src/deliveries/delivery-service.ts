import type { Kysely, Transaction } from "kysely";
import type { Logger } from "pino";
import type { Database, Delivery, UploadStatus } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { LocalStorage } from "../storage/local-storage.ts";
import { isBusy, isUniqueViolation } from "../db/dialect-info.ts";
import type { IntakeEvent, IntakeJournal } from "./intake-journal.ts";

export interface FinishedUpload {
  districtId: number;
  /** Path inside the district's space, as the client named it, e.g. `/students.csv`. */
  path: string;
  /** The finished, fsynced file in the incoming folder. */
  tempPath: string;
  size: number;
  sha256: string;
  clientIp: string;
  clientVersion: string;
  startedAt: string;
}

export interface PartialUpload {
  districtId: number;
  path: string;
  size: number;
  clientIp: string;
  clientVersion: string;
  startedAt: string;
  reason: string;
}

export interface UploadView {
  id: number;
  path: string;
  status: UploadStatus;
  size: number;
  sha256: string | null;
  deliveryId: number | null;
  clientIp: string;
  clientVersion: string;
  startedAt: string;
  finishedAt: string;
  reason: string | null;
}

/**
 * Where uploads are written down first when a sync can hold the database's write lock (SQLite):
 * the journal, and a connection of the main database that never waits for the lock.
 */
export interface IntakeJournaling {
  journal: IntakeJournal;
  writer: () => Kysely<Database>;
  /** Makes the database's commits so far durable (before journal events they hold are removed). */
  durable: () => Promise<void>;
}

export interface ClosedDelivery {
  deliveryId: number;
  districtId: number;
  syncId: number;
  files: number;
}

/**
 * Groups a district's uploads into deliveries. A delivery opens with the first upload and
 * closes after `quietSeconds` without another; closing it creates a `waiting` sync and a
 * durable job in the same transaction, so a crash between the two cannot lose either.
 *
 * With `journaling` (SQLite), what the SFTP server reports (accepted, partial, renamed) is written to
 * the intake journal first, so that an upload is on record at once even while a sync holds the
 * database's write lock, then moved into uploads and deliveries, in order, as soon as the lock is free.
 */
export class DeliveryService {
  #moving: Promise<void> | undefined;
  #moveAgain = false;
  #retry: NodeJS.Timeout | undefined;
  /** Callers waiting for their event to be moved (or for the move to be put off). */
  #waiters: Waiter[] = [];
  /** When moving was first put off by the lock being held, for the log. */
  #deferredSince: number | undefined;
  #closed = false;
  #movedThrough = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly storage: LocalStorage,
    private readonly jobs: JobQueue,
    private readonly clock: Clock,
    private readonly quietSeconds: number,
    private readonly logger: Logger,
    private readonly journaling?: IntakeJournaling,
  ) {}

  /**
   * Archives a finished upload and records it in the district's open delivery. Resolves once the
   * upload is durably on record: in the database, or in the intake journal while a sync holds the
   * database's write lock (moved into the database when the sync is done).
   */
  async accept(upload: FinishedUpload): Promise<void> {
    const storedPath = await this.storage.archive(upload.districtId, upload.tempPath);
    const { tempPath: _tempPath, ...rest } = upload;
    await this.record({ kind: "accepted", ...rest, storedPath, finishedAt: isoNow(this.clock) });
  }

  /** A transfer the client never finished: kept on record, never processed. */
  async recordPartial(upload: PartialUpload): Promise<void> {
    await this.record({ kind: "partial", ...upload, finishedAt: isoNow(this.clock) });
  }

  /** A file renamed while its delivery is still open keeps its place in the delivery under the new name. */
  async renamed(districtId: number, from: string, to: string): Promise<void> {
    await this.record({ kind: "renamed", districtId, from, to, at: isoNow(this.clock) });
  }

  private async record(event: IntakeEvent): Promise<void> {
    if (this.journaling === undefined) {
      const run = () => this.db.transaction().execute((trx) => this.apply(trx, event));
      // Another upload opened the delivery at the same moment (deliveries_one_open): join it.
      const done = await run().catch((error: unknown) => (isUniqueViolation(error) ? run() : Promise.reject(error)));
      done();
      return;
    }
    const id = await this.journaling.journal.append(event);
    // Moved already by a pass that ran while the append was being synced.
    if (this.#closed || id <= this.#movedThrough) return;
    const moved = new Promise<void>((resolve) => this.#waiters.push({ id, resolve }));
    void this.moveJournal();
    await moved;
  }

  /**
   * Moves journaled events into the database if its write lock is free now; if a sync holds it,
   * tries again shortly, never waiting for it (the server's thread stays free). Idempotent: the
   * transaction that writes the events also records how far the journal was moved.
   */
  moveJournal(): Promise<void> {
    if (this.journaling === undefined || this.#closed) return Promise.resolve();
    this.#moveAgain = true;
    return (this.#moving ??= this.#move().finally(() => (this.#moving = undefined)));
  }

  async #move(): Promise<void> {
    const { journal, writer, durable } = this.journaling!;
    while (this.#moveAgain && !this.#closed) {
      this.#moveAgain = false;
      for (;;) {
        const batch = journal.pending(MOVE_BATCH);
        if (batch.length === 0) break;
        const last = batch.at(-1)!.id;
        let logs: Array<() => void>;
        try {
          logs = await writer()
            .transaction()
            .execute(async (trx) => {
              const progress = await trx.selectFrom("intake_journal_progress").select("moved_through").where("journal_id", "=", journal.id).executeTakeFirst();
              const movedThrough = progress?.moved_through ?? 0;
              const done: Array<() => void> = [];
              for (const { id, event } of batch) if (id > movedThrough) done.push(await this.apply(trx, event));
              if (progress) await trx.updateTable("intake_journal_progress").set({ moved_through: last }).where("journal_id", "=", journal.id).execute();
              else await trx.insertInto("intake_journal_progress").values({ journal_id: journal.id, moved_through: last }).execute();
              return done;
            });
        } catch (error) {
          if (isBusy(error)) {
            if (this.#deferredSince === undefined) {
              this.#deferredSince = Date.now();
              this.logger.info({ event: "intake.deferred", pending: batch.length }, "the database is busy with a sync: uploads are journaled, and recorded once it is done");
            }
          } else {
            this.logger.error({ event: "intake.move_failed", err: error }, "could not move journaled uploads into the database; trying again");
          }
          this.#release(0);
          this.#retryLater();
          return;
        }
        // Removed from the journal only once the database holds them for good.
        await durable();
        journal.removeThrough(last);
        this.#movedThrough = last;
        for (const log of logs) log();
        this.#release(last);
        if (this.#deferredSince !== undefined) {
          this.logger.info({ event: "intake.moved", waitedMs: Date.now() - this.#deferredSince }, "journaled uploads recorded");
          this.#deferredSince = undefined;
        }
        if (batch.length < MOVE_BATCH) break;
      }
    }
  }

  /** Wakes callers whose events are moved (id ≤ through); everyone when the move is put off (0). */
  #release(through: number): void {
    const still: Waiter[] = [];
    for (const waiter of this.#waiters) {
      if (through === 0 || waiter.id <= through) waiter.resolve();
      else still.push(waiter);
    }
    this.#waiters = still;
  }

  #retryLater(): void {
    if (this.#retry !== undefined || this.#closed) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.moveJournal();
    }, MOVE_RETRY_MS);
    this.#retry.unref();
  }

  /** Writes one event inside the caller's transaction; returns what to log once it commits. */
  private async apply(trx: Transaction<Database>, event: IntakeEvent): Promise<() => void> {
    const late = (at: string) => {
      const ms = this.clock.now().getTime() - Date.parse(at);
      return ms >= 1000 ? { recordedAfterMs: ms } : {};
    };
    if (event.kind === "renamed") {
      const open = await trx.selectFrom("deliveries").select("id").where("district_id", "=", event.districtId).where("status", "=", "open").executeTakeFirst();
      if (open) {
        await trx.updateTable("uploads").set({ path: event.to }).where("delivery_id", "=", open.id).where("path", "=", event.from).where("status", "=", "accepted").execute();
      }
      return () => undefined;
    }
    if (event.kind === "partial") {
      await trx
        .insertInto("uploads")
        .values({
          district_id: event.districtId,
          delivery_id: null,
          path: event.path,
          size: event.size,
          sha256: null,
          status: "partial",
          stored_path: null,
          client_ip: event.clientIp,
          client_version: event.clientVersion,
          started_at: event.startedAt,
          finished_at: event.finishedAt,
          reason: event.reason,
        })
        .execute();
      return () =>
        this.logger.warn(
          { event: "sftp.upload.partial", districtId: event.districtId, path: event.path, size: event.size, reason: event.reason, ...late(event.finishedAt) },
          "partial upload discarded",
        );
    }
    const at = event.finishedAt;
    // Updating first locks the open delivery (PostgreSQL): a close running at the same moment
    // either sees this upload's time and leaves it open, or closes it first and this opens a new one.
    let delivery = await trx
      .updateTable("deliveries")
      .set({ last_upload_at: at })
      .where("district_id", "=", event.districtId)
      .where("status", "=", "open")
      .returning("id")
      .executeTakeFirst();
    if (!delivery) {
      delivery = await trx
        .insertInto("deliveries")
        .values({ district_id: event.districtId, status: "open", opened_at: at, last_upload_at: at, closed_at: null })
        .returning("id")
        .executeTakeFirstOrThrow();
    }
    const row = await trx
      .insertInto("uploads")
      .values({
        district_id: event.districtId,
        delivery_id: delivery.id,
        path: event.path,
        size: event.size,
        sha256: event.sha256,
        status: "accepted",
        stored_path: event.storedPath,
        client_ip: event.clientIp,
        client_version: event.clientVersion,
        started_at: event.startedAt,
        finished_at: at,
        reason: null,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    const deliveryId = delivery.id;
    return () =>
      this.logger.info(
        { event: "sftp.upload.closed", districtId: event.districtId, uploadId: row.id, deliveryId, path: event.path, size: event.size, sha256: event.sha256, ...late(at) },
        "upload closed",
      );
  }

  async listUploads(districtId: number, limit: number): Promise<UploadView[]> {
    const rows = await this.db.selectFrom("uploads").selectAll().where("district_id", "=", districtId).orderBy("id", "desc").limit(limit).execute();
    return rows.map((u) => ({
      id: u.id,
      path: u.path,
      status: u.status,
      size: Number(u.size),
      sha256: u.sha256,
      deliveryId: u.delivery_id,
      clientIp: u.client_ip,
      clientVersion: u.client_version,
      startedAt: u.started_at,
      finishedAt: u.finished_at,
      reason: u.reason,
    }));
  }

  async openDelivery(districtId: number): Promise<Delivery | undefined> {
    return this.db.selectFrom("deliveries").selectAll().where("district_id", "=", districtId).where("status", "=", "open").executeTakeFirst();
  }

  /**
   * Closes every delivery that has been quiet long enough. A district with uploads still in the
   * intake journal is left for later: its delivery closes only once they are in it. While a sync
   * holds the write lock (SQLite), nothing is closed until the next pass.
   */
  async closeQuietDeliveries(): Promise<ClosedDelivery[]> {
    let waiting = new Set<number>();
    if (this.journaling !== undefined) {
      await this.moveJournal();
      waiting = this.journaling.journal.pendingDistricts();
    }
    const cutoff = new Date(this.clock.now().getTime() - this.quietSeconds * 1000).toISOString();
    const due = await this.db
      .selectFrom("deliveries")
      .select(["id", "district_id"])
      .where("status", "=", "open")
      .where("last_upload_at", "<=", cutoff)
      .orderBy("id")
      .execute();
    const closed: ClosedDelivery[] = [];
    for (const { id, district_id } of due) {
      if (waiting.has(district_id)) continue;
      let result: ClosedDelivery | undefined;
      try {
        result = await this.closeDelivery(id, cutoff);
      } catch (error) {
        if (isBusy(error)) break;
        throw error;
      }
      if (result) closed.push(result);
    }
    return closed;
  }

  private async closeDelivery(deliveryId: number, cutoff: string): Promise<ClosedDelivery | undefined> {
    const now = isoNow(this.clock);
    // With journaling, on the connection that moves the journal and never waits for the lock.
    const db = this.journaling?.writer() ?? this.db;
    const result = await db.transaction().execute(async (trx) => {
      // Re-checked inside the transaction: an upload may have arrived since the scan.
      const updated = await trx
        .updateTable("deliveries")
        .set({ status: "closed", closed_at: now })
        .where("id", "=", deliveryId)
        .where("status", "=", "open")
        .where("last_upload_at", "<=", cutoff)
        .returning("district_id")
        .executeTakeFirst();
      if (!updated) return undefined;
      const uploads = await trx
        .selectFrom("uploads")
        .select(["id", "path", "size", "sha256", "stored_path"])
        .where("delivery_id", "=", deliveryId)
        .where("status", "=", "accepted")
        .orderBy("id")
        .execute();
      // The same name sent twice in one delivery: the later upload wins.
      const latest = new Map(uploads.map((u) => [u.path, u]));
      const sync = await trx
        .insertInto("syncs")
        .values({ district_id: updated.district_id, delivery_id: deliveryId, source: "sftp", status: "waiting", created_at: now, updated_at: now, counts: "{}", summary: "{}" })
        .returning("id")
        .executeTakeFirstOrThrow();
      for (const u of latest.values()) {
        await trx
          .insertInto("sync_files")
          .values({ sync_id: sync.id, name: u.path.replace(/^\/+/, ""), size: u.size, sha256: u.sha256 ?? "", stored_path: u.stored_path ?? "" })
          .execute();
      }
      await this.jobs.enqueue("process-sync", { syncId: sync.id }, trx);
      return { deliveryId, districtId: updated.district_id, syncId: sync.id, files: latest.size };
    });
    if (result) this.logger.info({ event: "delivery.closed", ...result }, "delivery closed");
    return result;
  }

  /** Stops moving the journal (what is left in it is moved at the next start). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    await this.#moving;
    this.#release(0);
    this.journaling?.journal.close();
  }
}

interface Waiter {
  id: number;
  resolve: () => void;
}

/** Events moved per transaction: enough for any burst of uploads, short for the lock. */
const MOVE_BATCH = 500;
/** How often moving is tried again while a sync holds the write lock. */
const MOVE_RETRY_MS = 100;
