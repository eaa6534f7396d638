import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { syncWal } from "../db/sync-wal.ts";

/** What the SFTP server records about a district's files, in the order it happened. */
export type IntakeEvent =
  | {
      kind: "accepted";
      districtId: number;
      path: string;
      /** Where the archived copy is, relative to the data folder. */
      storedPath: string;
      size: number;
      sha256: string;
      clientIp: string;
      clientVersion: string;
      startedAt: string;
      finishedAt: string;
    }
  | {
      kind: "partial";
      districtId: number;
      path: string;
      size: number;
      clientIp: string;
      clientVersion: string;
      startedAt: string;
      finishedAt: string;
      reason: string;
    }
  | {
      kind: "refused";
      districtId: number;
      path: string;
      size: number;
      clientIp: string;
      clientVersion: string;
      startedAt: string;
      finishedAt: string;
      reason: string;
    }
  | { kind: "renamed"; districtId: number; from: string; to: string; at: string };

export interface JournaledEvent {
  id: number;
  event: IntakeEvent;
}

/**
 * A small SQLite file of its own (`intake-journal.sqlite` in the data folder) where the SFTP server
 * writes each upload it accepts, durably (WAL, fsynced at every commit), without the main
 * database's write lock: a sync applying a big district holds that lock for seconds to a minute,
 * and an upload's CLOSE is answered only once the upload is on record. DeliveryService moves the
 * events into the main database's uploads and deliveries when the lock is free, and only then
 * removes them here. Opened on first use: only `serve` records uploads.
 */
export class IntakeJournal {
  #sqlite: SqliteDatabase.Database | undefined;
  #id: string | undefined;

  constructor(readonly path: string) {}

  private get sqlite(): SqliteDatabase.Database {
    if (this.#sqlite) return this.#sqlite;
    mkdirSync(dirname(this.path), { recursive: true });
    const sqlite = new SqliteDatabase(this.path);
    sqlite.pragma("journal_mode = WAL");
    // Not FULL: an fsync at every commit would block the server's thread (measured: up to ~100 ms
    // on a busy disk). append() fsyncs the WAL on the thread pool instead.
    sqlite.pragma("synchronous = NORMAL");
    // Only this process writes here; never wait inside SQLite on the server's thread.
    sqlite.pragma("busy_timeout = 0");
    sqlite.exec(`
      CREATE TABLE IF NOT EXISTS journal (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, district_id INTEGER NOT NULL, event TEXT NOT NULL);
    `);
    // The journal's identity: the main database keeps how far it moved each journal by this id, so
    // a journal file made afresh (its event ids starting at 1 again) is never taken for one already moved.
    sqlite.prepare("INSERT OR IGNORE INTO journal (key, value) VALUES ('id', ?)").run(randomUUID());
    this.#id = sqlite.prepare("SELECT value FROM journal WHERE key = 'id'").pluck().get() as string;
    return (this.#sqlite = sqlite);
  }

  get id(): string {
    void this.sqlite;
    return this.#id!;
  }

  /** Writes the event; resolves with its id (events are moved in id order) once it is on disk. */
  async append(event: IntakeEvent): Promise<number> {
    const result = this.sqlite.prepare("INSERT INTO events (district_id, event) VALUES (?, ?)").run(event.districtId, JSON.stringify(event));
    await syncWal(this.path);
    return Number(result.lastInsertRowid);
  }

  /** The oldest events not yet removed, oldest first. */
  pending(limit: number): JournaledEvent[] {
    const rows = this.sqlite.prepare("SELECT id, event FROM events ORDER BY id LIMIT ?").all(limit) as Array<{ id: number; event: string }>;
    return rows.map((r) => ({ id: r.id, event: JSON.parse(r.event) as IntakeEvent }));
  }

  /** Districts with events not yet moved: their open deliveries must not close yet. */
  pendingDistricts(): Set<number> {
    return new Set(this.sqlite.prepare("SELECT DISTINCT district_id FROM events").pluck().all() as number[]);
  }

  /** Forgets events up to `id`, once the main database holds them. */
  removeThrough(id: number): void {
    this.sqlite.prepare("DELETE FROM events WHERE id <= ?").run(id);
  }

  close(): void {
    this.#sqlite?.close();
    this.#sqlite = undefined;
  }
}
