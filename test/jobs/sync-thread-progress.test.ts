import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock } from "../../src/service.ts";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import { SyncThread } from "../../src/jobs/sync-thread.ts";
import { SyncProgressBoard, type SyncProgressReport } from "../../src/jobs/sync-progress-board.ts";
import { liveProgress } from "../../src/console/sync-pages.ts";
import { RosterdockHome } from "../support/rosterdock-process.ts";

/** The board the server keeps, remembering every report it was given. */
class RecordingBoard extends SyncProgressBoard {
  readonly seen: SyncProgressReport[] = [];
  override set(report: SyncProgressReport): void {
    this.seen.push(report);
    super.set(report);
  }
}

describe("the sync thread's progress", () => {
  it("tells the server's thread each stage of a sync job and the rows read, and forgets it when done", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_LOG_LEVEL: "warn" });
    const config = loadConfig(home.env);
    const rd = await createRosterdock(config);
    const board = new RecordingBoard();
    const thread = new SyncThread(config, createLogger("warn"), board);
    try {
      const { district } = await rd.districts.create({ slug: "madison", name: "Madison" }, "test");
      const night = await generateDemoData(await mkdtemp(join(tmpdir(), "rosterdock-progress-night-")), { students: 300, teachers: 12, schools: 2 });
      const now = new Date().toISOString();
      const syncId = await rd.database.db.transaction().execute(async (trx) => {
        const sync = await trx
          .insertInto("syncs")
          .values({ district_id: district.id, delivery_id: null, source: "cli", status: "waiting", created_at: now, updated_at: now, counts: "{}", summary: "{}" })
          .returning("id")
          .executeTakeFirstOrThrow();
        for (const path of night.files.dem) {
          await trx.insertInto("sync_files").values({ sync_id: sync.id, name: basename(path), size: (await stat(path)).size, sha256: "-", stored_path: path }).execute();
        }
        return sync.id;
      });
      await rd.jobs.enqueue("process-sync", { syncId });
      const job = (await rd.jobs.claim(["process-sync"]))!;

      await thread.run(job);
      const sync = await rd.syncs.show(syncId);
      assert.equal(sync.status, "applied");
      assert.equal(thread.progress(syncId), undefined, "a finished sync's report is dropped");

      const stages = board.seen.map((r) => r.stage).filter((s, i, all) => s !== all[i - 1]);
      assert.deepEqual(stages, ["reading", "planning", "applying"]);
      assert.ok(board.seen.every((r) => r.syncId === syncId));
      const rows = board.seen.map((r) => r.rows);
      assert.deepEqual(rows, [...rows].sort((a, b) => a - b), "rows read only grow");
      const totalRows = (sync.summary.files ?? []).reduce((n, f) => n + f.rows, 0);
      assert.ok(totalRows > 300, String(totalRows));
      assert.equal(board.seen.at(-1)!.rows, totalRows, "every row read is counted");
      const reading = board.seen.filter((r) => r.stage === "reading" && r.file !== null);
      assert.ok(reading.length >= night.files.dem.length, "each file is reported as it is read");
      const odd = reading.filter((r) => !(r.files === night.files.dem.length && r.fileIndex! < r.files! && r.size > 0 && r.bytes <= r.size));
      assert.deepEqual(odd, []);

      // The console's words for a report.
      const report = reading.find((r) => r.rows > 0)!;
      const text = liveProgress(rd, { rollback: async () => 0, progress: () => report }, { ...sync, status: "processing" }, false).text;
      assert.match(text, new RegExp(`^Reading the files: ${report.file!.replace(/\./g, "\\.")} \\(file ${report.fileIndex! + 1} of ${report.files}\\), ${report.rows.toLocaleString("en-US")} rows read \\(\\d+% of [\\d.]+ (B|KiB|MiB)\\), for \\d+ s\\.$`));
    } finally {
      await thread.close();
      await rd.close();
      await home.remove();
    }
  });
});
