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

/** An upload that did not arrive whole: cut off (partial) or refused (a limit, a missing folder, a full disk…); kept on record and held against its night. */
export interface UnfinishedUpload {
  districtId: number;
  path: string;
  /** Bytes received before it was cut off or refused (0 when refused at open). */
  size: number;
  clientIp: string;
  clientVersion: string;
  startedAt: string;
  reason: string;
}

export type PartialUpload = UnfinishedUpload;
export type RefusedUpload = UnfinishedUpload;

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
  /** Received files taken out of the district's folder once the delivery closed. */
  removedFromView: number;
}

/** Visible paths looked up per query when taking received files out of view. */
const PATHS_PER_QUERY = 500;

/**
 * Groups a district's uploads into deliveries. A delivery opens with the first upload and
 * closes after `quietSeconds` without another; closing it creates a `waiting` sync and a
 * durable job in the same transaction, so a crash between the two cannot lose either.
 * Once that transaction has committed, the delivery's files leave the district's folder
 * (the archive keeps them), so the folder only ever holds what is waiting.
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
   * database's write lock (moved into the database when the sync is done). Returns where the
   * archived copy is (see `removeIfReceived`).
   */
  async accept(upload: FinishedUpload): Promise<string> {
    const storedPath = await this.storage.archive(upload.districtId, upload.tempPath, upload.sha256, true);
    const { tempPath: _tempPath, ...rest } = upload;
    try {
      await this.record({ kind: "accepted", ...rest, storedPath, finishedAt: isoNow(this.clock) });
    } catch (error) {
      // The client is told the upload failed: a copy stored in the database must not count against the quota.
      await this.storage.discardArchived(upload.districtId, storedPath).catch(() => undefined);
      throw error;
    }
    return storedPath;
  }

  /**
   * A transfer never finished (the connection ended, or the server stopped): kept on record, never
   * processed. It joins the district's open delivery, if any, whose night is then held unless the
   * file is sent again whole before it closes (sync/refused-uploads.ts); it opens none and does not
   * keep one open.
   */
  async recordPartial(upload: PartialUpload): Promise<void> {
    await this.record({ kind: "partial", ...upload, finishedAt: isoNow(this.clock) });
  }

  /**
   * An upload the server refused. It belongs to the night the district was sending, so it joins
   * the open delivery (or opens one, and keeps it open for the quiet period like an upload): the
   * sync that night becomes is held, naming the file and why, instead of being applied without it.
   */
  async recordRefused(upload: RefusedUpload): Promise<void> {
    await this.record({ kind: "refused", ...upload, finishedAt: isoNow(this.clock) });
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
      const open = await trx.selectFrom("deliveries").select("id").where("district_id", "=", event.districtId).where("status", "=", "open").executeTakeFirst();
      await trx
        .insertInto("uploads")
        .values({
          district_id: event.districtId,
          delivery_id: open?.id ?? null,
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
    const delivery = await this.joinOpenDelivery(trx, event.districtId, at);
    if (event.kind === "refused") {
      await trx
        .insertInto("uploads")
        .values({
          district_id: event.districtId,
          delivery_id: delivery.id,
          path: event.path,
          size: event.size,
          sha256: null,
          status: "refused",
          stored_path: null,
          client_ip: event.clientIp,
          client_version: event.clientVersion,
          started_at: event.startedAt,
          finished_at: at,
          reason: event.reason,
        })
        .execute();
      return () => undefined;
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

  /**
   * The district's open delivery, opened if there is none, marked as having had an upload at `at`.
   * Updating first locks the open delivery (PostgreSQL): a close running at the same moment
   * either sees this upload's time and leaves it open, or closes it first and this opens a new one.
   */
  private async joinOpenDelivery(trx: Transaction<Database>, districtId: number, at: string): Promise<{ id: number }> {
    const open = await trx
      .updateTable("deliveries")
      .set({ last_upload_at: at })
      .where("district_id", "=", districtId)
      .where("status", "=", "open")
      .returning("id")
      .executeTakeFirst();
    if (open) return open;
    return trx
      .insertInto("deliveries")
      .values({ district_id: districtId, status: "open", opened_at: at, last_upload_at: at, closed_at: null })
      .returning("id")
      .executeTakeFirstOrThrow();
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
      if (!result) continue;
      // Only now that the sync and its files are committed: a crash before this line leaves the
      // files in view, and the next close or start takes them out.
      const closedNow = result;
      closedNow.removedFromView = await this.removeReceived(closedNow.districtId).catch((error: unknown) => {
        this.logger.error({ event: "delivery.remove_failed", districtId: closedNow.districtId, err: error }, "could not take received files out of the district's folder");
        return 0;
      });
      this.logger.info({ event: "delivery.closed", ...closedNow }, "delivery closed");
      closed.push(closedNow);
    }
    await this.removeReceivedHere().catch((error: unknown) =>
      this.logger.error({ event: "delivery.remove_failed", err: error }, "could not take files received here out of the districts' folders"),
    );
    return closed;
  }

  /**
   * Several nodes: files this node received whose delivery another node closed leave this node's
   * folders too (each node shows the files it received). Looked up at every close pass, only for
   * the files this node still shows; nothing to do with one node (LocalStorage). Returns how many it removed.
   */
  async removeReceivedHere(): Promise<number> {
    const here = await this.storage.receivedHere();
    let removed = 0;
    for (let i = 0; i < here.length; i += PATHS_PER_QUERY) {
      const batch = here.slice(i, i + PATHS_PER_QUERY);
      const rows = await this.db
        .selectFrom("uploads")
        .innerJoin("deliveries", "deliveries.id", "uploads.delivery_id")
        .select(["uploads.district_id", "uploads.path", "uploads.stored_path", "deliveries.status"])
        .where("uploads.district_id", "in", [...new Set(batch.map((r) => r.districtId))])
        .where("uploads.stored_path", "in", batch.map((r) => r.storedPath))
        .execute();
      // A file not recorded yet (its upload is being recorded now) waits for the next pass.
      for (const upload of rows) {
        if (upload.status !== "closed" || upload.stored_path === null) continue;
        if (this.storage.removeFromView(upload.district_id, upload.path, upload.stored_path)) removed++;
        await this.storage.forgetReceived(upload.district_id, upload.stored_path);
      }
    }
    if (removed > 0) this.logger.info({ event: "storage.received.removed", count: removed }, "took files received here out of the districts' folders: their delivery was closed");
    return removed;
  }

  /**
   * Takes out of the district's folder every file that a closed delivery received: a visible
   * file whose latest accepted upload of that name belongs to a closed delivery and is that
   * upload's very file (same inode as its archived copy). Anything else stays: files of the open
   * delivery, a newer upload of the same name, files renamed since, whatever else is there.
   * Idempotent; returns how many files it removed.
   */
  async removeReceived(districtId: number): Promise<number> {
    const visible = await this.storage.visibleFiles(districtId);
    let removed = 0;
    for (let i = 0; i < visible.length; i += PATHS_PER_QUERY) {
      const rows = await this.db
        .selectFrom("uploads")
        .innerJoin("deliveries", "deliveries.id", "uploads.delivery_id")
        .select(["uploads.path", "uploads.stored_path", "deliveries.status"])
        .where("uploads.district_id", "=", districtId)
        .where("uploads.status", "=", "accepted")
        .where("uploads.path", "in", visible.slice(i, i + PATHS_PER_QUERY))
        .orderBy("uploads.id")
        .execute();
      const latest = new Map(rows.map((r) => [r.path, r]));
      for (const upload of latest.values()) {
        if (upload.status !== "closed" || upload.stored_path === null) continue;
        if (this.storage.removeFromView(districtId, upload.path, upload.stored_path)) removed++;
        await this.storage.forgetReceived(districtId, upload.stored_path);
      }
    }
    return removed;
  }

  /**
   * Called once an upload is in view: if its delivery closed between the upload's record and its
   * rename into view (a short quiet period, a busy database), that close did not see the file, so
   * it leaves the folder now. An upload still in the intake journal has no closed delivery yet
   * (a delivery waits for its district's journaled uploads): the close takes it out then.
   */
  async removeIfReceived(districtId: number, storedPath: string): Promise<boolean> {
    const upload = await this.db
      .selectFrom("uploads")
      .innerJoin("deliveries", "deliveries.id", "uploads.delivery_id")
      .select(["uploads.path", "uploads.stored_path", "deliveries.status"])
      .where("uploads.district_id", "=", districtId)
      .where("uploads.stored_path", "=", storedPath)
      .executeTakeFirst();
    if (upload?.status !== "closed" || upload.stored_path === null) return false;
    const removed = this.storage.removeFromView(districtId, upload.path, upload.stored_path);
    await this.storage.forgetReceived(districtId, upload.stored_path);
    return removed;
  }

  /** At start: what a crash left in view after its delivery closed, for every district. */
  async removeReceivedEverywhere(): Promise<number> {
    const districts = await this.db.selectFrom("districts").select("id").orderBy("id").execute();
    let removed = 0;
    for (const { id } of districts) removed += await this.removeReceived(id);
    return removed + (await this.removeReceivedHere());
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
      return { deliveryId, districtId: updated.district_id, syncId: sync.id, files: latest.size, removedFromView: 0 };
    });
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
