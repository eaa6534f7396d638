import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, it } from "node:test";
import SqliteDatabase from "better-sqlite3";
import { sql } from "../../src/db/kysely.ts";
import { openDatabase } from "../../src/db/open-database.ts";

/**
 * The server's connection serves SFTP sessions and HTTP requests on one thread. While the sync
 * engine holds the database's write lock (a big district's first load: seconds), a write on that
 * connection must wait without blocking the thread, then succeed.
 */
describe("the server's SQLite connection and the write lock", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function opened() {
    const dir = await mkdtemp(join(tmpdir(), "rosterdock-lock-"));
    dirs.push(dir);
    const database = await openDatabase({ dataDir: dir, databaseUrl: undefined });
    await sql`CREATE TABLE lock_probe (x INTEGER NOT NULL)`.execute(database.db);
    // Another connection, as the sync engine's is: it takes the write lock and keeps it.
    const holder = new SqliteDatabase(join(dir, "rosterdock.sqlite"));
    holder.pragma("busy_timeout = 0");
    return { database, holder };
  }

  /** Lets timers run for a while: only possible when no statement blocks the thread. */
  async function timersRun(times: number): Promise<number> {
    let fired = 0;
    for (let i = 0; i < times; i++) {
      await sleep(25);
      fired++;
    }
    return fired;
  }

  it("a write outside a transaction waits for the lock between awaits, then is written", async () => {
    const { database, holder } = await opened();
    holder.exec("BEGIN IMMEDIATE");
    let settled = false;
    const write = sql`INSERT INTO lock_probe (x) VALUES (1)`.execute(database.db).finally(() => (settled = true));
    assert.equal(await timersRun(20), 20);
    assert.equal(settled, false, "the write waits while the lock is held");
    holder.exec("COMMIT");
    await write;
    assert.equal(holder.prepare("SELECT count(*) FROM lock_probe").pluck().get(), 1);
    holder.close();
    await database.close();
  });

  it("a transaction waits to begin, then runs whole", async () => {
    const { database, holder } = await opened();
    holder.exec("BEGIN IMMEDIATE");
    let settled = false;
    const transaction = database.db
      .transaction()
      .execute(async (trx) => {
        await sql`INSERT INTO lock_probe (x) VALUES (1)`.execute(trx);
        await sql`INSERT INTO lock_probe (x) VALUES (2)`.execute(trx);
      })
      .finally(() => (settled = true));
    assert.equal(await timersRun(20), 20);
    assert.equal(settled, false, "the transaction waits while the lock is held");
    holder.exec("COMMIT");
    await transaction;
    assert.deepEqual(holder.prepare("SELECT x FROM lock_probe ORDER BY x").pluck().all(), [1, 2]);
    holder.close();
    await database.close();
  });

  it("a read is answered while a write on the same connection waits for the lock", async () => {
    const { database, holder } = await opened();
    holder.exec("BEGIN IMMEDIATE");
    let settled = false;
    const write = sql`INSERT INTO lock_probe (x) VALUES (1)`.execute(database.db).finally(() => (settled = true));
    await sleep(50);
    const started = performance.now();
    const read = await sql<{ n: number }>`SELECT count(*) AS n FROM lock_probe`.execute(database.db);
    assert.equal(read.rows[0]!.n, 0);
    assert.ok(performance.now() - started < 1000, `the read waited ${Math.round(performance.now() - started)} ms behind the write`);
    assert.equal(settled, false, "the write still waits");
    holder.exec("COMMIT");
    await write;
    holder.close();
    await database.close();
  });
});
