import { randomBytes } from "node:crypto";
import { constants, lstatSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { link, mkdir, open, readdir, rm, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";

/** Folders deeper than this in a district's space are not looked into for received files. */
const MAX_VIEW_DEPTH = 8;

/**
 * Where district files live on disk, under the data folder:
 *   districts/<id>/home/      what the district sees as `/` over SFTP: files waiting to be received
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

  /**
   * The files in the district's space, as the client names them (`/students.csv`, `/in/cc.csv`).
   * Links and anything not a regular file are left out.
   */
  async visibleFiles(districtId: number): Promise<string[]> {
    const found: string[] = [];
    const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.isFile()) found.push(`${prefix}/${entry.name}`);
        else if (entry.isDirectory() && depth < MAX_VIEW_DEPTH) await walk(join(dir, entry.name), `${prefix}/${entry.name}`, depth + 1);
      }
    };
    await walk(this.homeDir(districtId), "", 0);
    return found;
  }

  /**
   * Takes a received file out of the district's view if, and only if, what is visible at `path` is
   * the very file archived at `storedPath` (same inode): a newer upload of the same name stays.
   * Synchronous on purpose: the SFTP sessions rename uploads into view synchronously on this same
   * thread, so none can land between the check and the unlink. The archived link keeps the content.
   * Returns whether it removed the file.
   */
  removeFromView(districtId: number, path: string, storedPath: string): boolean {
    const visible = this.homeDir(districtId) + path.split("/").join(sep);
    try {
      const shown = lstatSync(visible);
      const archived = statSync(this.absolute(storedPath));
      if (!shown.isFile() || shown.ino !== archived.ino || shown.dev !== archived.dev) return false;
      unlinkSync(visible);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
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
