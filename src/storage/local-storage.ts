import { randomBytes } from "node:crypto";
import { constants, lstatSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { link, mkdir, open, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative, sep } from "node:path";
import { ArchiveUsage, measureFolder } from "./archive-usage.ts";
import type { ArchiveMeter, LocalFiles, StoredFile, UploadStore } from "./upload-store.ts";

/** Folders deeper than this in a district's space are not looked into for received files (the most ROSTERDOCK_MAX_FOLDER_DEPTH allows). */
const MAX_VIEW_DEPTH = 32;

/** Beside each upload in progress, `<temp>.part` + this: who sent it and under what name, for the record if the server dies mid-transfer. */
const SIDECAR = ".json";

/** What is known of an upload in progress, kept beside its temporary file. */
export interface IncomingUpload {
  /** The client's path, e.g. `/students.csv`. */
  path: string;
  startedAt: string;
  clientIp: string;
  clientVersion: string;
}

/** An upload the server was still receiving when it stopped (found at the next start). */
export interface CutUpload extends Partial<IncomingUpload> {
  districtId: number;
  /** Bytes written before the server stopped. */
  size: number;
  /** When its temporary file was last written. */
  lastWrittenAt: string;
}

/**
 * Where district files live on disk, under the data folder:
 *   districts/<id>/home/      what the district sees as `/` over SFTP: files waiting to be received
 *   districts/<id>/incoming/  uploads still being written (never visible, never processed)
 *   districts/<id>/archive/   every accepted upload, immutable, as the delivery saw it
 */
export class LocalStorage implements UploadStore {
  /** Each district's archive size, kept up to date by `archive` (see ROSTERDOCK_ARCHIVE_QUOTA_BYTES). */
  readonly archiveUsage: ArchiveMeter;

  constructor(protected readonly dataDir: string) {
    this.archiveUsage = new ArchiveUsage((districtId) => this.archiveDir(districtId));
  }

  protected districtDir(districtId: number): string {
    return join(this.dataDir, "districts", String(districtId));
  }

  /** Synchronous on purpose: an SFTP client pipelines its first request right behind the subsystem request. */
  homeDir(districtId: number): string {
    const dir = join(this.districtDir(districtId), "home");
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  archiveDir(districtId: number): string {
    return join(this.districtDir(districtId), "archive");
  }

  /**
   * A fresh path for an upload in progress. With `upload`, what is known of it is written beside
   * it, so that a crash mid-transfer can still be recorded at the next start as that file, cut off.
   * Not fsynced: a crash that loses it loses only the name in that record.
   */
  async incomingPath(districtId: number, upload?: IncomingUpload): Promise<string> {
    const dir = join(this.districtDir(districtId), "incoming");
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${Date.now()}-${randomBytes(6).toString("hex")}.part`);
    if (upload) await writeFile(path + SIDECAR, JSON.stringify(upload), { mode: 0o640 });
    return path;
  }

  /** The upload at `tempPath` is over (received and renamed into view, or discarded): what was kept beside it goes. */
  async incomingDone(tempPath: string): Promise<void> {
    await rm(tempPath + SIDECAR, { force: true });
  }

  /**
   * Keeps an immutable copy of a finished upload by hard-linking it into the archive (no copy,
   * and later replacement or removal of the visible file cannot touch it). Returns the path
   * relative to the data folder, as recorded in the database.
   */
  async archive(districtId: number, finishedPath: string, _sha256?: string, _inView?: boolean): Promise<string> {
    const dir = this.archiveDir(districtId);
    await mkdir(dir, { recursive: true });
    const name = `${new Date().toISOString().slice(0, 10)}-${randomBytes(8).toString("hex")}`;
    const target = join(dir, name);
    await link(finishedPath, target);
    await syncDir(dir);
    this.archiveUsage.added(districtId, name, (await stat(target)).size);
    return relative(this.dataDir, target);
  }

  /** An archived copy that could not be recorded stays (as before uploads were stored in the database): it is harmless and counted. */
  async discardArchived(_districtId: number, _storedPath: string): Promise<void> {}

  async archiveBytes(districtId: number): Promise<number> {
    return (await measureFolder(this.archiveDir(districtId))).bytes;
  }

  /** The archived files are local already: their paths, nothing to release. */
  async localFiles(_syncId: number, files: readonly StoredFile[]): Promise<LocalFiles> {
    return { files: files.map((f) => ({ name: f.name, path: this.localPath(f.stored_path) })), release: async () => undefined };
  }

  /** A local `stored_path` (relative to the data folder; absolute for `ingest`'s files on another file system). */
  protected localPath(storedPath: string): string {
    return isAbsolute(storedPath) ? storedPath : this.absolute(storedPath);
  }

  /** One node: every delivery's close runs here and sees its files. */
  async receivedHere(): Promise<Array<{ districtId: number; storedPath: string }>> {
    return [];
  }

  async forgetReceived(_districtId: number, _storedPath: string, _force?: boolean): Promise<void> {}

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

  /** Removes a file; an upload's temporary file goes with what was kept beside it. */
  async discard(path: string): Promise<void> {
    await rm(path, { force: true });
    if (path.endsWith(".part")) await rm(path + SIDECAR, { force: true });
  }

  /**
   * Removes uploads left half-written by a crash (never acknowledged to the client), each first
   * handed to `record` (a `partial` upload) with what was kept beside it; one that `record` fails
   * to record (and logs) stays for the next start. Only files older than `before`, so a running server's uploads in progress
   * are never touched. A temporary file with a second link was archived, hence recorded as accepted
   * (the crash came before its rename into view): it is not a cut-off transfer.
   */
  async clearIncoming(before: Date, record: (upload: CutUpload) => Promise<void> = async () => undefined): Promise<number> {
    let removed = 0;
    const districts = await readdir(join(this.dataDir, "districts")).catch(() => [] as string[]);
    for (const district of districts) {
      const dir = join(this.dataDir, "districts", district, "incoming");
      const names = await readdir(dir).catch(() => [] as string[]);
      const present = new Set(names);
      for (const name of names) {
        const path = join(dir, name);
        const stats = await stat(path).catch(() => undefined);
        if (!stats || stats.mtimeMs >= before.getTime()) continue;
        if (name.endsWith(SIDECAR)) {
          // Left behind by a crash after its upload was renamed into view or discarded.
          if (!present.has(name.slice(0, -SIDECAR.length))) await rm(path, { force: true });
          continue;
        }
        if (stats.isFile() && stats.nlink === 1 && /^\d+$/.test(district)) {
          const known = await readSidecar(path + SIDECAR);
          const recorded = await record({ ...known, districtId: Number(district), size: stats.size, lastWrittenAt: stats.mtime.toISOString() }).then(
            () => true,
            () => false,
          );
          if (!recorded) continue;
        }
        await rm(path, { force: true });
        await rm(path + SIDECAR, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

async function readSidecar(path: string): Promise<Partial<IncomingUpload>> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    const known: Partial<IncomingUpload> = {};
    for (const key of ["path", "startedAt", "clientIp", "clientVersion"] as const) if (typeof parsed[key] === "string") known[key] = parsed[key];
    return known;
  } catch {
    // Missing (an upload begun by an older version) or cut short by the crash itself: the name is unknown.
    return {};
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
