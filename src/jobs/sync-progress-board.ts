/** What a running sync is doing: reading its files (which, how far), planning, applying or holding. */
export type SyncStage = "reading" | "planning" | "applying" | "holding";

export interface SyncProgressReport {
  syncId: number;
  stage: SyncStage;
  /** While reading: the file being read, which of how many. */
  file: string | null;
  fileIndex: number | null;
  files: number | null;
  /** Rows read so far, of all the sync's files. */
  rows: number;
  /** Bytes read so far and the files' total (uncompressed). */
  bytes: number;
  size: number;
  /** When the sync thread started on it (ms since the epoch). */
  startedAt: number;
}

/**
 * The progress of the syncs the sync thread is running, kept in memory on the server's thread
 * from the thread's messages: reading it never touches the database, so a page can ask while a
 * sync holds SQLite's write lock. A report is dropped once its sync is done.
 */
export class SyncProgressBoard {
  private readonly reports = new Map<number, SyncProgressReport>();

  set(report: SyncProgressReport): void {
    this.reports.set(report.syncId, report);
  }

  get(syncId: number): SyncProgressReport | undefined {
    return this.reports.get(syncId);
  }

  end(syncId: number): void {
    this.reports.delete(syncId);
  }
}
