import { Worker as Thread } from "node:worker_threads";
import type { Logger } from "pino";
import type { Config } from "../config.ts";
import type { Job } from "../db/schema.ts";
import { ERROR_CATALOGUE, RosterdockError, type ErrorCode } from "../errors.ts";
import { SyncProgressBoard, type SyncProgressReport } from "./sync-progress-board.ts";

/** Thrown for a job cut short by shutdown: it stays `running` and runs again at the next start. */
export class JobInterrupted extends Error {}

export type SyncThreadRequest = { kind: "job"; job: Job } | { kind: "rollback"; syncId: number; actor: string } | { kind: "purge-tombstones" };
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string; code?: string };
/** A sync job's progress, posted by the thread while it runs. */
type ProgressMessage = { progress: SyncProgressReport };

/**
 * Runs `process-sync` jobs on a thread of their own. A sync's SQL statements run for seconds on a
 * big district; on the server's thread they would stall every SFTP session and API request. The
 * thread opens its own connections from the same configuration. Stopping terminates it at once:
 * an unfinished sync's transaction is rolled back by SQLite and the job is requeued at start.
 */
export class SyncThread {
  private thread: Thread | undefined;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private closing = false;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    /** Where the syncs' progress is kept for the console, from the thread's messages. */
    private readonly board = new SyncProgressBoard(),
  ) {}

  private start(): Thread {
    const thread = new Thread(new URL("./thread-boot.mjs", import.meta.url), {
      workerData: { entry: new URL("./sync-thread-main.ts", import.meta.url).href, config: { ...this.config } },
    });
    thread.on("message", (reply: Reply | ProgressMessage) => {
      if ("progress" in reply) return this.board.set(reply.progress);
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply.value);
      else waiter?.reject(reply.code && reply.code in ERROR_CATALOGUE ? new RosterdockError(reply.code as ErrorCode, reply.message) : new Error(reply.message));
    });
    thread.on("error", (error) => this.logger.error({ event: "sync.thread.error", err: error }, "sync thread failed"));
    thread.on("exit", (code) => {
      this.thread = undefined;
      const error = this.closing ? new JobInterrupted("Rosterdock is stopping") : new Error(`The sync thread exited (${code})`);
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
    return thread;
  }

  async run(job: Job): Promise<void> {
    try {
      await this.request({ kind: "job", job });
    } finally {
      this.board.end((JSON.parse(job.payload) as { syncId: number }).syncId);
    }
  }

  /** How a sync the thread is running is going, if it is running one with that id. */
  progress(syncId: number): SyncProgressReport | undefined {
    return this.board.get(syncId);
  }

  /** Undoes an applied sync on the thread; resolves to the number of changes undone. */
  async rollback(syncId: number, actor: string): Promise<number> {
    return (await this.request({ kind: "rollback", syncId, actor })) as number;
  }

  /** Purges tombstones past their retention on the thread, after any sync under way; resolves to the rows purged. */
  async purgeTombstones(): Promise<number> {
    return (await this.request({ kind: "purge-tombstones" })) as number;
  }

  private request(request: SyncThreadRequest): Promise<unknown> {
    if (this.closing) return Promise.reject(new JobInterrupted("Rosterdock is stopping"));
    this.thread ??= this.start();
    const id = this.nextId++;
    const done = new Promise<unknown>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.thread.postMessage({ id, request });
    return done;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.thread?.terminate();
  }
}
