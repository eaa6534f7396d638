import { createHash, randomBytes } from "node:crypto";
import { constants, lstatSync, statSync, unlinkSync } from "node:fs";
import { link, mkdir, open, readdir, rm, stat } from "node:fs/promises";
import { join, sep } from "node:path";
import { sql } from "../db/kysely.ts";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Database } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import { RosterdockError } from "../errors.ts";
import type { DeliveryFile } from "../intake/unpack.ts";
import type { ArchiveCheck } from "./archive-usage.ts";
import { LocalStorage } from "./local-storage.ts";
import type { ArchiveMeter, LocalFiles, StoredFile } from "./upload-store.ts";

/** Bytes per stored chunk: one bytea row, read and written whole, never the whole file. */
export const CHUNK_BYTES = 1 << 20;
/** `stored_path` of an upload kept in the database. */
const PREFIX = "pg:";
/** Blobs that no upload or sync names, older than this, were left by a node that died between storing and recording them. */
const ORPHAN_AFTER_MS = 60 * 60 * 1000;

export function blobId(storedPath: string): number | undefined {
  if (!storedPath.startsWith(PREFIX)) return undefined;
  const id = Number(storedPath.slice(PREFIX.length));
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

/**
 * Closed uploads in PostgreSQL, for several nodes on one database: an upload is streamed into
 * `upload_chunks` (~1 MiB bytea rows, one transaction, its sha256 checked) before the client is
 * told it was received, and a worker on any node copies a sync's files into its local spool
 * (`<data>/spool/`, checked against their sha256, removed after the sync) for the engine to read.
 *
 * What a node keeps on disk is only what is local by nature (LocalStorage): the districts' SFTP
 * folders as this node shows them, uploads in progress, the spool, and `received/<blob id>`: a
 * hard link of each received file still in this node's view, so that whichever node closes the
 * delivery, this one takes the very file it received (same inode) out of its folder.
 */
export class PostgresStorage extends LocalStorage {
  override readonly archiveUsage: ArchiveMeter;
  #received: Map<string, { districtId: number; storedPath: string }> | undefined;

  constructor(
    dataDir: string,
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    super(dataDir);
    this.archiveUsage = new DatabaseArchiveUsage(db);
  }

  private receivedDir(districtId: number): string {
    return join(this.districtDir(districtId), "received");
  }

  private spoolRoot(): string {
    return join(this.dataDir, "spool");
  }

  /**
   * Streams the finished file into the database, a chunk at a time, hashing what it reads, and
   * fails (storing nothing) if that is not `sha256`. Each chunk is its own short statement, so a
   * big upload never holds a pooled connection for long (logins and other uploads interleave);
   * the blob counts as stored once its chunk count is written, and one left half-written by a
   * crash is removed at a later start (`clearIncoming`). `inView`: an SFTP upload about to be
   * renamed into the district's folder, linked as received by this node.
   */
  override async archive(districtId: number, finishedPath: string, sha256?: string, inView = false): Promise<string> {
    const file = await open(finishedPath, "r");
    let id: number | undefined;
    try {
      const size = (await file.stat()).size;
      id = (
        await this.db
          .insertInto("upload_blobs")
          .values({ district_id: districtId, size, sha256: sha256 ?? "", chunks: 0, created_at: isoNow(this.clock) })
          .returning("id")
          .executeTakeFirstOrThrow()
      ).id;
      const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
      const hash = createHash("sha256");
      let seq = 0;
      let total = 0;
      for (;;) {
        const filled = await readFull(file, buffer);
        if (filled === 0) break;
        const chunk = buffer.subarray(0, filled);
        hash.update(chunk);
        // Awaited before the buffer is filled again: pg has serialised it by then.
        await this.db.insertInto("upload_chunks").values({ blob_id: id, seq, data: chunk }).execute();
        seq++;
        total += filled;
        if (filled < CHUNK_BYTES) break;
      }
      const digest = hash.digest("hex");
      if (total !== size || (sha256 !== undefined && digest !== sha256)) {
        throw new RosterdockError("ERR_STORED_FILE_DAMAGED", `The upload read back from ${finishedPath} (${total} bytes, sha256 ${digest}) is not what was received (${size} bytes, sha256 ${sha256 ?? "?"}).`);
      }
      await this.db.updateTable("upload_blobs").set({ chunks: seq, sha256: digest }).where("id", "=", id).execute();
    } catch (error) {
      if (id !== undefined) {
        const failed = id;
        await this.db.deleteFrom("upload_blobs").where("id", "=", failed).execute().catch(() => undefined);
      }
      throw error;
    } finally {
      await file.close();
    }
    const storedPath = `${PREFIX}${id}`;
    if (inView) {
      const dir = this.receivedDir(districtId);
      await mkdir(dir, { recursive: true });
      await link(finishedPath, join(dir, String(id)));
      (await this.received()).set(storedPath, { districtId, storedPath });
    }
    return storedPath;
  }

  override async discardArchived(districtId: number, storedPath: string): Promise<void> {
    const id = blobId(storedPath);
    if (id === undefined) return;
    await this.forgetReceived(districtId, storedPath, true);
    await this.db.deleteFrom("upload_blobs").where("id", "=", id).execute();
  }

  override async archiveBytes(districtId: number): Promise<number> {
    return storedBytes(this.db, districtId);
  }

  /**
   * Takes a received file out of this node's view if what is visible at `path` is the very file
   * this node received as `storedPath` (same inode as its `received/` link); synchronous, like
   * LocalStorage's, for the same reason. A file another node received is not in this node's view.
   */
  override removeFromView(districtId: number, path: string, storedPath: string): boolean {
    const id = blobId(storedPath);
    if (id === undefined) return super.removeFromView(districtId, path, storedPath);
    const visible = this.homeDir(districtId) + path.split("/").join(sep);
    const marker = join(this.receivedDir(districtId), String(id));
    try {
      const shown = lstatSync(visible);
      const received = statSync(marker);
      if (!shown.isFile() || shown.ino !== received.ino || shown.dev !== received.dev) return false;
      unlinkSync(visible);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
  }

  override async receivedHere(): Promise<Array<{ districtId: number; storedPath: string }>> {
    return [...(await this.received()).values()];
  }

  /**
   * Drops the `received/` link once no other name shares its file: taken out of view, replaced by a
   * newer upload, or deleted by the district. An upload not yet renamed into view (its temporary
   * file shares it) is kept, so that its rename is still caught; `force` drops it whatever.
   */
  override async forgetReceived(districtId: number, storedPath: string, force = false): Promise<void> {
    const id = blobId(storedPath);
    if (id === undefined) return;
    const marker = join(this.receivedDir(districtId), String(id));
    const links = force ? 1 : ((await stat(marker).catch(() => undefined))?.nlink ?? 1);
    if (links > 1) return;
    (await this.received()).delete(storedPath);
    await rm(marker, { force: true });
  }

  /** This node's `received/` links, read from disk once (they outlive a restart), then kept in memory. */
  private async received(): Promise<Map<string, { districtId: number; storedPath: string }>> {
    if (this.#received) return this.#received;
    const found = new Map<string, { districtId: number; storedPath: string }>();
    const districts = await readdir(join(this.dataDir, "districts")).catch(() => [] as string[]);
    for (const district of districts) {
      if (!/^\d+$/.test(district)) continue;
      for (const name of await readdir(this.receivedDir(Number(district))).catch(() => [] as string[])) {
        if (/^\d+$/.test(name)) found.set(`${PREFIX}${name}`, { districtId: Number(district), storedPath: `${PREFIX}${name}` });
      }
    }
    return (this.#received ??= found);
  }

  /**
   * Copies the sync's stored files into a spool folder of its own, a chunk at a time, checking
   * each against its recorded size and sha256; files recorded as local paths (`ingest`) are read
   * where they are. `release` removes the folder.
   */
  override async localFiles(syncId: number, files: readonly StoredFile[]): Promise<LocalFiles> {
    const dir = join(this.spoolRoot(), `sync-${syncId}-${randomBytes(6).toString("hex")}`);
    const release = () => rm(dir, { recursive: true, force: true });
    const started = Date.now();
    const local: DeliveryFile[] = [];
    const copied: Array<{ name: string; size: number; sha256: string }> = [];
    try {
      for (const [index, file] of files.entries()) {
        const id = blobId(file.stored_path);
        if (id === undefined) {
          local.push({ name: file.name, path: this.localPath(file.stored_path) });
          continue;
        }
        await mkdir(dir, { recursive: true });
        const path = join(dir, String(index));
        const { size, sha256 } = await this.copyOut(id, path, file.sha256, file.name);
        local.push({ name: file.name, path });
        copied.push({ name: file.name, size, sha256 });
      }
    } catch (error) {
      await release();
      throw error;
    }
    if (copied.length > 0) {
      this.logger.info({ event: "storage.spool.filled", syncId, files: copied, ms: Date.now() - started }, "copied a sync's stored files into the spool");
    }
    return { files: local, release };
  }

  private async copyOut(id: number, path: string, expectedSha256: string, name: string): Promise<{ size: number; sha256: string }> {
    const blob = await this.db.selectFrom("upload_blobs").select(["size", "sha256", "chunks"]).where("id", "=", id).executeTakeFirst();
    if (!blob) throw new RosterdockError("ERR_NOT_FOUND", `The stored upload ${name} (${PREFIX}${id}) is no longer in the database; it may have been pruned.`);
    const out = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const hash = createHash("sha256");
    let size = 0;
    try {
      for (let seq = 0; seq < blob.chunks; seq++) {
        const row = await this.db.selectFrom("upload_chunks").select("data").where("blob_id", "=", id).where("seq", "=", seq).executeTakeFirst();
        if (!row) break;
        hash.update(row.data);
        size += row.data.length;
        await out.write(row.data);
      }
    } finally {
      await out.close();
    }
    const sha256 = hash.digest("hex");
    if (size !== Number(blob.size) || sha256 !== blob.sha256 || (expectedSha256 !== "" && sha256 !== expectedSha256)) {
      throw new RosterdockError("ERR_STORED_FILE_DAMAGED", `The stored upload ${name} (${PREFIX}${id}) read back as ${size} bytes with sha256 ${sha256}, not ${blob.size} bytes with sha256 ${expectedSha256 || blob.sha256}.`);
    }
    return { size, sha256 };
  }

  /**
   * At start, besides what LocalStorage clears: spool folders older than `before` (a sync that was
   * running when the node stopped; it copies its files again wherever it runs next), and blobs no
   * upload names an hour after they were stored (the node died between storing and recording one).
   */
  override async clearIncoming(before: Date, record?: Parameters<LocalStorage["clearIncoming"]>[1]): Promise<number> {
    for (const name of await readdir(this.spoolRoot()).catch(() => [] as string[])) {
      const path = join(this.spoolRoot(), name);
      const stats = await stat(path).catch(() => undefined);
      if (stats && stats.mtimeMs < before.getTime()) await rm(path, { recursive: true, force: true });
    }
    const cutoff = new Date(before.getTime() - ORPHAN_AFTER_MS).toISOString();
    const orphans = await sql<{ id: number }>`
      DELETE FROM upload_blobs b WHERE b.created_at < ${cutoff}
        AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.district_id = b.district_id AND u.stored_path = ${PREFIX} || b.id)
        AND NOT EXISTS (SELECT 1 FROM sync_files f WHERE f.stored_path = ${PREFIX} || b.id)
      RETURNING b.id`.execute(this.db);
    if (orphans.rows.length > 0) this.logger.warn({ event: "storage.orphans.removed", count: orphans.rows.length }, "removed stored uploads that no upload record names");
    return super.clearIncoming(before, record);
  }
}

/** Fills `buffer` from the file's current position unless it ends first; returns the bytes read. */
async function readFull(file: import("node:fs/promises").FileHandle, buffer: Buffer): Promise<number> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, null);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

async function storedBytes(db: Kysely<Database>, districtId: number): Promise<number> {
  const row = await db
    .selectFrom("upload_blobs")
    .select((eb) => eb.fn.coalesce(eb.fn.sum<number>("size"), sql<number>`0`).as("bytes"))
    .where("district_id", "=", districtId)
    .executeTakeFirstOrThrow();
  return Number(row.bytes);
}

/**
 * A district's archive usage is the sum of its stored uploads, read from the database at each
 * check: every node's uploads count, and pruning (deleting old blobs) takes effect at once.
 */
class DatabaseArchiveUsage implements ArchiveMeter {
  private readonly full = new Map<number, boolean>();

  constructor(private readonly db: Kysely<Database>) {}

  async check(districtId: number, quotaBytes: number): Promise<ArchiveCheck> {
    const usedBytes = await storedBytes(this.db, districtId);
    const full = usedBytes >= quotaBytes;
    const was = this.full.get(districtId) ?? false;
    if (full) this.full.set(districtId, true);
    else this.full.delete(districtId);
    return { usedBytes, quotaBytes, full, becameFull: full && !was, freed: !full && was };
  }

  added(): void {}
}
