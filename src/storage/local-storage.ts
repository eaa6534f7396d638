import { randomBytes } from "node:crypto";
import { constants, mkdirSync } from "node:fs";
import { link, mkdir, open, readdir, rm, stat } from "node:fs/promises";
import { join, relative } from "node:path";

/**
 * Where district files live on disk, under the data folder:
 *   districts/<id>/home/      what the district sees as `/` over SFTP
 *   districts/<id>/incoming/  uploads still being written (never visible, never processed)
 *   districts/<id>/archive/   every accepted upload, immutable, as the delivery saw it
 */
export class LocalStorage {
  constructor(private readonly dataDir: string) {}

  private districtDir(districtId: number): string {
    return join(this.dataDir, "districts", String(districtId));
  }

  /** Synchronous on purpose: an SFTP client pipelines its first request right behind the subsystem request. */
  homeDir(districtId: number): string {
    const dir = join(this.districtDir(districtId), "home");
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** A fresh path for an upload in progress. */
  async incomingPath(districtId: number): Promise<string> {
    const dir = join(this.districtDir(districtId), "incoming");
    await mkdir(dir, { recursive: true });
    return join(dir, `${Date.now()}-${randomBytes(6).toString("hex")}.part`);
  }

  /**
   * Keeps an immutable copy of a finished upload by hard-linking it into the archive (no copy,
   * and later replacement or removal of the visible file cannot touch it). Returns the path
   * relative to the data folder, as recorded in the database.
   */
  async archive(districtId: number, finishedPath: string): Promise<string> {
    const dir = join(this.districtDir(districtId), "archive");
    await mkdir(dir, { recursive: true });
    const target = join(dir, `${new Date().toISOString().slice(0, 10)}-${randomBytes(8).toString("hex")}`);
    await link(finishedPath, target);
    await syncDir(dir);
    return relative(this.dataDir, target);
  }

  /** Where a sync keeps the line digests of its files (see sync/line-digest.ts). */
  digestDir(districtId: number, syncId: number): string {
    return join(this.districtDir(districtId), "digests", `sync-${syncId}`);
  }

  /** Removes a district's line digests, except those of `keepSyncId`. */
  async removeDigests(districtId: number, keepSyncId: number | null): Promise<void> {
    const dir = join(this.districtDir(districtId), "digests");
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) if (name !== `sync-${keepSyncId}`) await rm(join(dir, name), { recursive: true, force: true });
  }

  /** A path under the data folder as recorded in the database. */
  relative(path: string): string {
    return relative(this.dataDir, path);
  }

  absolute(storedPath: string): string {
    return join(this.dataDir, storedPath);
  }

  async discard(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  /**
   * Removes uploads left half-written by a crash (never acknowledged to the client). Only files
   * older than `before`, so a running server's uploads in progress are never touched.
   */
  async clearIncoming(before: Date): Promise<number> {
    let removed = 0;
    const districts = await readdir(join(this.dataDir, "districts")).catch(() => [] as string[]);
    for (const district of districts) {
      const dir = join(this.dataDir, "districts", district, "incoming");
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const path = join(dir, name);
        const stats = await stat(path).catch(() => undefined);
        if (stats && stats.mtimeMs < before.getTime()) {
          await rm(path, { force: true });
          removed++;
        }
      }
    }
    return removed;
  }
}

/** Makes a new directory entry durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
