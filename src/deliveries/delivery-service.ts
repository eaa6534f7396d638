import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Database, Delivery, UploadStatus } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { LocalStorage } from "../storage/local-storage.ts";
import { isUniqueViolation } from "../db/dialect-info.ts";

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

export interface ClosedDelivery {
  deliveryId: number;
  districtId: number;
  syncId: number;
  files: number;
  /** Received files taken out of the district's folder once the close was committed. */
  removedFromView: number;
}

/** Paths looked up per query when matching visible files to their uploads. */
const PATHS_PER_QUERY = 500;

/**
 * Groups a district's uploads into deliveries. A delivery opens with the first upload and
 * closes after `quietSeconds` without another; closing it creates a `waiting` sync and a
 * durable job in the same transaction, so a crash between the two cannot lose either.
 * Once that transaction has committed, the delivery's files leave the district's folder
 * (the archive keeps them), so the folder only ever holds what is waiting.
 */
export class DeliveryService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly storage: LocalStorage,
    private readonly jobs: JobQueue,
    private readonly clock: Clock,
    private readonly quietSeconds: number,
    private readonly logger: Logger,
  ) {}

  /** Archives a finished upload and records it in the district's open delivery. Returns the upload id. */
  async accept(upload: FinishedUpload): Promise<number> {
    const storedPath = await this.storage.archive(upload.districtId, upload.tempPath);
    const now = isoNow(this.clock);
    const record = () => this.db.transaction().execute(async (trx) => {
      const delivery = await this.joinOpenDelivery(trx, upload.districtId, now);
      const row = await trx
        .insertInto("uploads")
        .values({
          district_id: upload.districtId,
          delivery_id: delivery.id,
          path: upload.path,
          size: upload.size,
          sha256: upload.sha256,
          status: "accepted",
          stored_path: storedPath,
          client_ip: upload.clientIp,
          client_version: upload.clientVersion,
          started_at: upload.startedAt,
          finished_at: now,
          reason: null,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      return { uploadId: row.id, deliveryId: delivery.id };
    });
    const { uploadId, deliveryId } = await retryOnUniqueViolation(record);
    this.logger.info(
      { event: "sftp.upload.closed", districtId: upload.districtId, uploadId, deliveryId, path: upload.path, size: upload.size, sha256: upload.sha256 },
      "upload closed",
    );
    return uploadId;
  }

  /**
   * The district's open delivery, opened if there is none, marked as having had an upload now.
   * Updating first locks the open delivery (PostgreSQL): a close running at the same moment
   * either sees this upload's time and leaves it open, or closes it first and this opens a new one.
   */
  private async joinOpenDelivery(trx: Kysely<Database>, districtId: number, now: string): Promise<{ id: number }> {
    const open = await trx
      .updateTable("deliveries")
      .set({ last_upload_at: now })
      .where("district_id", "=", districtId)
      .where("status", "=", "open")
      .returning("id")
      .executeTakeFirst();
    if (open) return open;
    return trx
      .insertInto("deliveries")
      .values({ district_id: districtId, status: "open", opened_at: now, last_upload_at: now, closed_at: null })
      .returning("id")
      .executeTakeFirstOrThrow();
  }

  /**
   * An upload the server refused. It belongs to the night the district was sending, so it joins
   * the open delivery (or opens one, and keeps it open for the quiet period like an upload): the
   * sync that night becomes is held, naming the file and why, instead of being applied without it.
   * Returns the delivery it joined.
   */
  async recordRefused(upload: RefusedUpload): Promise<{ uploadId: number; deliveryId: number }> {
    const now = isoNow(this.clock);
    const record = () =>
      this.db.transaction().execute(async (trx) => {
        const delivery = await this.joinOpenDelivery(trx, upload.districtId, now);
        const row = await trx
          .insertInto("uploads")
          .values({
            district_id: upload.districtId,
            delivery_id: delivery.id,
            path: upload.path,
            size: upload.size,
            sha256: null,
            status: "refused",
            stored_path: null,
            client_ip: upload.clientIp,
            client_version: upload.clientVersion,
            started_at: upload.startedAt,
            finished_at: now,
            reason: upload.reason,
          })
          .returning("id")
          .executeTakeFirstOrThrow();
        return { uploadId: row.id, deliveryId: delivery.id };
      });
    return retryOnUniqueViolation(record);
  }

  /**
   * A transfer never finished (the connection ended, or the server stopped): kept on record, never
   * processed. It joins the district's open delivery, if any, whose night is then held unless the
   * file is sent again whole before it closes (sync/refused-uploads.ts); it opens none and does not
   * keep one open.
   */
  async recordPartial(upload: PartialUpload): Promise<{ uploadId: number; deliveryId: number | null }> {
    const recorded = await this.db.transaction().execute(async (trx) => {
      const open = await trx.selectFrom("deliveries").select("id").where("district_id", "=", upload.districtId).where("status", "=", "open").executeTakeFirst();
      const row = await trx
        .insertInto("uploads")
        .values({
          district_id: upload.districtId,
          delivery_id: open?.id ?? null,
          path: upload.path,
          size: upload.size,
          sha256: null,
          status: "partial",
          stored_path: null,
          client_ip: upload.clientIp,
          client_version: upload.clientVersion,
          started_at: upload.startedAt,
          finished_at: isoNow(this.clock),
          reason: upload.reason,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      return { uploadId: row.id, deliveryId: open?.id ?? null };
    });
    this.logger.warn(
      { event: "sftp.upload.partial", districtId: upload.districtId, path: upload.path, size: upload.size, reason: upload.reason, ...recorded },
      "partial upload discarded",
    );
    return recorded;
  }

  /** A file renamed while its delivery is still open keeps its place in the delivery under the new name. */
  async renamed(districtId: number, from: string, to: string): Promise<void> {
    const open = await this.openDelivery(districtId);
    if (!open) return;
    await this.db
      .updateTable("uploads")
      .set({ path: to })
      .where("delivery_id", "=", open.id)
      .where("path", "=", from)
      .where("status", "=", "accepted")
      .execute();
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

  /** Closes every delivery that has been quiet long enough. */
  async closeQuietDeliveries(): Promise<ClosedDelivery[]> {
    const cutoff = new Date(this.clock.now().getTime() - this.quietSeconds * 1000).toISOString();
    const due = await this.db
      .selectFrom("deliveries")
      .select("id")
      .where("status", "=", "open")
      .where("last_upload_at", "<=", cutoff)
      .orderBy("id")
      .execute();
    const closed: ClosedDelivery[] = [];
    for (const { id } of due) {
      const result = await this.close(id, cutoff);
      if (!result) continue;
      // Only now that the sync and its files are committed: a crash before this line leaves the
      // files in view, and the next close or start takes them out.
      result.removedFromView = await this.removeReceived(result.districtId).catch((error: unknown) => {
        this.logger.error({ event: "delivery.remove_failed", districtId: result.districtId, err: error }, "could not take received files out of the district's folder");
        return 0;
      });
      this.logger.info({ event: "delivery.closed", ...result }, "delivery closed");
      closed.push(result);
    }
    return closed;
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
      }
    }
    return removed;
  }

  /**
   * Called once an upload is in view: if its delivery closed between the upload's record and its
   * rename into view (a short quiet period, a busy database), that close did not see the file, so
   * it leaves the folder now.
   */
  async removeIfReceived(districtId: number, uploadId: number): Promise<boolean> {
    const upload = await this.db
      .selectFrom("uploads")
      .innerJoin("deliveries", "deliveries.id", "uploads.delivery_id")
      .select(["uploads.path", "uploads.stored_path", "deliveries.status"])
      .where("uploads.id", "=", uploadId)
      .executeTakeFirst();
    if (upload?.status !== "closed" || upload.stored_path === null) return false;
    return this.storage.removeFromView(districtId, upload.path, upload.stored_path);
  }

  /** At start: what a crash left in view after its delivery closed, for every district. */
  async removeReceivedEverywhere(): Promise<number> {
    const districts = await this.db.selectFrom("districts").select("id").orderBy("id").execute();
    let removed = 0;
    for (const { id } of districts) removed += await this.removeReceived(id);
    return removed;
  }

  private async close(deliveryId: number, cutoff: string): Promise<ClosedDelivery | undefined> {
    const now = isoNow(this.clock);
    const result = await this.db.transaction().execute(async (trx) => {
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
}

/** Another upload opened the delivery at the same moment (deliveries_one_open): join it. */
function retryOnUniqueViolation<T>(work: () => Promise<T>): Promise<T> {
  return work().catch((error: unknown) => (isUniqueViolation(error) ? work() : Promise.reject(error)));
}
