import { parentPort, workerData } from "node:worker_threads";
import type { Config } from "../config.ts";
import type { Job } from "../db/schema.ts";
import { createRosterdock } from "../service.ts";

/** The sync thread: the same services as the server, its own connections, one job at a time. */
const rd = await createRosterdock(Object.freeze(workerData.config as Config));
const port = parentPort!;
port.on("message", (message: { id: number; job: Job }) => {
  rd.syncs.processJob(message.job).then(
    () => port.postMessage({ id: message.id, ok: true }),
    (error: unknown) => port.postMessage({ id: message.id, ok: false, message: error instanceof Error ? error.message : String(error) }),
  );
});
