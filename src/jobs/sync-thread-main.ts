import { parentPort, workerData } from "node:worker_threads";
import type { Config } from "../config.ts";
import { isRosterdockError } from "../errors.ts";
import { createRosterdock } from "../service.ts";
import type { Job } from "../db/schema.ts";
import type { SyncReporting } from "../sync/process-sync.ts";
import type { SyncThreadRequest } from "./sync-thread.ts";
import type { SyncProgressReport } from "./sync-progress-board.ts";
import { lowerThreadPriority } from "./lower-thread-priority.ts";

// Uploads and API requests on the server's thread come before a sync's work.
lowerThreadPriority();

/** The sync thread: the same services as the server, its own connections, one request at a time. */
const rd = await createRosterdock(Object.freeze(workerData.config as Config));
const port = parentPort!;

/** Reading progress is posted at most this often; a change of stage at once. */
const PROGRESS_EVERY_MS = 250;

/** Tells the server's thread how a sync job is going, for the console's sync page. */
function reporting(job: Job): SyncReporting {
  const { syncId } = JSON.parse(job.payload) as { syncId: number };
  const startedAt = Date.now();
  let last: SyncProgressReport = { syncId, stage: "reading", file: null, fileIndex: null, files: null, rows: 0, bytes: 0, size: 0, startedAt };
  let postedAt = 0;
  const post = (report: SyncProgressReport, force: boolean) => {
    last = report;
    const now = Date.now();
    if (!force && now - postedAt < PROGRESS_EVERY_MS) return;
    postedAt = now;
    port.postMessage({ progress: report });
  };
  post(last, true);
  return {
    onProgress: (p) =>
      post({ ...last, stage: "reading", file: p.file, fileIndex: p.fileIndex, files: p.files, rows: p.totalRows, bytes: p.totalBytes, size: p.totalSize }, p.bytes === p.size),
    onStage: (stage) => post({ ...last, stage, file: null, fileIndex: null }, true),
  };
}

async function handle(request: SyncThreadRequest): Promise<unknown> {
  if (request.kind === "job") return rd.syncs.processJob(request.job, reporting(request.job));
  if (request.kind === "purge-tombstones") return rd.syncs.purgeTombstones();
  return (await rd.syncs.rollback(request.syncId, request.actor)).changeset.changes;
}

let queue = Promise.resolve();
port.on("message", (message: { id: number; request: SyncThreadRequest }) => {
  queue = queue.then(() =>
    handle(message.request).then(
      (value) => port.postMessage({ id: message.id, ok: true, value: value ?? null }),
      (error: unknown) =>
        port.postMessage({
          id: message.id,
          ok: false,
          message: error instanceof Error ? error.message : String(error),
          ...(isRosterdockError(error) ? { code: error.code } : {}),
        }),
    ),
  );
});
