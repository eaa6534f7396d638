import { parentPort, workerData } from "node:worker_threads";
import type { Config } from "../config.ts";
import { isRosterdockError } from "../errors.ts";
import { createRosterdock } from "../service.ts";
import type { SyncThreadRequest } from "./sync-thread.ts";

/** The sync thread: the same services as the server, its own connections, one request at a time. */
const rd = await createRosterdock(Object.freeze(workerData.config as Config));
const port = parentPort!;

async function handle(request: SyncThreadRequest): Promise<unknown> {
  if (request.kind === "job") return rd.syncs.processJob(request.job);
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
