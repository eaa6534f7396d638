import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import SqliteDatabase from "better-sqlite3";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import type { Clock } from "../../src/clock.ts";

class TestClock implements Clock {
  #now = new Date("2026-03-02T08:00:00.000Z");
  now(): Date {
    return new Date(this.#now);
  }
  advance(seconds: number): void {
    this.#now = new Date(this.#now.getTime() + seconds * 1000);
  }
}

/**
 * On SQLite a sync holds the database's only write lock while it applies (seconds to a minute for
 * a big district). Uploads are written to the intake journal first, so that none waits for it,
 * and moved into uploads and deliveries once the lock is free.
 */
describe("the intake journal (SQLite)", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function open(dataDir?: string, clock = new TestClock()) {
    const dir = dataDir ?? (await mkdtemp(join(tmpdir(), "rosterdock-journal-")));
    if (!dataDir) dirs.push(dir);
    const rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dir, ROSTERDOCK_QUIET_SECONDS: "60" }), { logger: createLogger("silent"), clock });
    const districtId = dataDir ? (await rd.districts.show("lincoln")).id : (await rd.districts.create({ slug: "lincoln", name: "Lincoln" }, "test")).district.id;
    return { dir, rd, districtId, clock };
  }

  async function upload(rd: Rosterdock, districtId: number, path: string, content = "id\n1\n"): Promise<number> {
    const tempPath = await rd.storage.incomingPath(districtId);
    await writeFile(tempPath, content);
    const started = performance.now();
    await rd.deliveries.accept({
      districtId,
      path,
      tempPath,
      size: Buffer.byteLength(content),
      sha256: createHash("sha256").update(content).digest("hex"),
      clientIp: "127.0.0.1",
      clientVersion: "SSH-2.0-OpenSSH_9.2",
      startedAt: new Date().toISOString(),
    });
    return performance.now() - started;
  }

  /** Another connection holding the write lock, as the sync engine's does while it applies. */
  function holdWriteLock(dir: string) {
    const holder = new SqliteDatabase(join(dir, "rosterdock.sqlite"));
    holder.exec("BEGIN IMMEDIATE");
    return {
      release() {
        holder.exec("COMMIT");
        holder.close();
      },
    };
  }

  it("answers an upload at once while the write lock is held, and records it in its delivery once the lock is free", async () => {
    const { dir, rd, districtId, clock } = await open();
    try {
      await upload(rd, districtId, "/students.csv");
      const open = await rd.deliveries.openDelivery(districtId);
      assert.ok(open);

      const lock = holdWriteLock(dir);
      clock.advance(40);
      const ms = await upload(rd, districtId, "/teachers.csv");
      assert.ok(ms < 1000, `accepted in ${ms} ms while the lock was held`);
      await rd.deliveries.renamed(districtId, "/teachers.csv", "/staff.csv");
      assert.equal((await rd.deliveries.listUploads(districtId, 10)).length, 1, "not in the database yet");
      // The first upload's quiet period is over, the second's is not: the delivery must not close without it.
      clock.advance(30);
      assert.deepEqual(await rd.deliveries.closeQuietDeliveries(), []);
      await sleep(300);
      lock.release();

      assert.deepEqual(await rd.deliveries.closeQuietDeliveries(), [], "the second upload keeps the delivery open");
      const uploads = await rd.deliveries.listUploads(districtId, 10);
      assert.deepEqual(
        uploads.map((u) => [u.path, u.status, u.deliveryId, u.finishedAt]),
        [
          ["/staff.csv", "accepted", open.id, "2026-03-02T08:00:40.000Z"],
          ["/students.csv", "accepted", open.id, "2026-03-02T08:00:00.000Z"],
        ],
      );
      clock.advance(30);
      const closed = await rd.deliveries.closeQuietDeliveries();
      assert.equal(closed.length, 1);
      assert.deepEqual(
        (await rd.syncs.list("lincoln"))[0]!.files.map((f) => f.name),
        ["students.csv", "staff.csv"],
      );
    } finally {
      await rd.close();
    }
  });

  it("loses no upload when the process stops before the journal was moved, and moves each event once", async () => {
    const first = await open();
    const lock = holdWriteLock(first.dir);
    await upload(first.rd, first.districtId, "/students.csv");
    await first.rd.deliveries.recordPartial({
      districtId: first.districtId,
      path: "/enrollments.csv",
      size: 3,
      clientIp: "127.0.0.1",
      clientVersion: "SSH-2.0-OpenSSH_9.2",
      startedAt: new Date().toISOString(),
      reason: "The connection ended before the file was closed: the transfer was cut off.",
    });
    // Stopped (or killed: each event was on disk before its upload was answered) while the lock was held.
    await first.rd.close();
    lock.release();

    const again = await open(first.dir);
    try {
      await again.rd.deliveries.moveJournal();
      const uploads = await again.rd.deliveries.listUploads(again.districtId, 10);
      assert.deepEqual(
        uploads.map((u) => [u.path, u.status]),
        [
          ["/enrollments.csv", "partial"],
          ["/students.csv", "accepted"],
        ],
      );
      // A crash between the database's commit and the journal's removal leaves moved events in the
      // journal: moving them again changes nothing.
      const journal = new SqliteDatabase(join(first.dir, "intake-journal.sqlite"));
      const event = { kind: "accepted", districtId: again.districtId, path: "/students.csv", storedPath: "x", size: 5, sha256: "0", clientIp: "127.0.0.1", clientVersion: "x", startedAt: "", finishedAt: "" };
      journal.prepare("INSERT INTO events (id, district_id, event) VALUES (1, ?, ?)").run(again.districtId, JSON.stringify(event));
      journal.close();
      await again.rd.deliveries.moveJournal();
      assert.equal((await again.rd.deliveries.listUploads(again.districtId, 10)).length, 2);
      const left = new SqliteDatabase(join(first.dir, "intake-journal.sqlite"));
      assert.equal(left.prepare("SELECT count(*) FROM events").pluck().get(), 0);
      left.close();
    } finally {
      await again.rd.close();
    }
  });
});
