import type { DeliveryFile } from "../intake/unpack.ts";
import type { ArchiveCheck } from "./archive-usage.ts";

/** How full each district's archive is, against its quota (see ROSTERDOCK_ARCHIVE_QUOTA_BYTES). */
export interface ArchiveMeter {
  check(districtId: number, quotaBytes: number): Promise<ArchiveCheck>;
  /** A file was just archived (`name` inside the district's archive). */
  added(districtId: number, name: string, bytes: number): void;
}

/** A sync's file as recorded in `sync_files`. */
export interface StoredFile {
  name: string;
  stored_path: string;
  sha256: string;
}

/** A sync's files as local paths the engine can read, until `release`. */
export interface LocalFiles {
  files: DeliveryFile[];
  /** Removes what was copied into the local spool for the sync (nothing where the files were local already). */
  release(): Promise<void>;
}

/**
 * Where closed uploads are kept, behind one interface (a file per backend):
 * - LocalStorage (local-storage.ts): the node's `archive/` folder, hard links of the received files
 *   (SQLite, one node);
 * - PostgresStorage (postgres-storage.ts): the database, in ~1 MiB chunks with their sha256, so that
 *   any node's worker can process any delivery; the node keeps only temporary spool files.
 * Everything else a node keeps on disk (the districts' SFTP folders, uploads in progress, line
 * digests) is local in both, and lives in LocalStorage, which PostgresStorage extends.
 */
export interface UploadStore {
  readonly archiveUsage: ArchiveMeter;
  /**
   * Keeps an immutable copy of a finished upload and returns where (`stored_path`). With
   * `sha256`, the copy is checked against it before this resolves. `inView`: an SFTP upload about
   * to be renamed into the district's folder (not `ingest`'s operator files).
   */
  archive(districtId: number, finishedPath: string, sha256?: string, inView?: boolean): Promise<string>;
  /** Undoes `archive` for an upload that could not be recorded (its client is told it failed). */
  discardArchived(districtId: number, storedPath: string): Promise<void>;
  /** Bytes the district's archive holds (`district show`). */
  archiveBytes(districtId: number): Promise<number>;
  /** The sync's files as local paths (copied into the spool and checked against their sha256 where they are not local). */
  localFiles(syncId: number, files: readonly StoredFile[]): Promise<LocalFiles>;
  /**
   * Uploads received by this node that are still in its districts' folders, whose delivery may
   * have been closed by another node: the deliveries' close takes them out of view here too.
   */
  receivedHere(): Promise<Array<{ districtId: number; storedPath: string }>>;
  /** The upload's delivery is closed: this node need not watch for it any more, once it is out of view (or whatever, with `force`). */
  forgetReceived(districtId: number, storedPath: string, force?: boolean): Promise<void>;
}
