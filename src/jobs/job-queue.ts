import type { Kysely, Transaction } from "kysely";
import type { Database, Job } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";

export type JobKind = "process-sync" | "deliver-webhook";

/** Durable work items in the database: whatever was enqueued before a crash runs after restart. */
export class JobQueue {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  async enqueue(kind: JobKind, payload: Record<string, unknown>, trx: Kysely<Database> | Transaction<Database> = this.db): Promise<number> {
    const now = isoNow(this.clock);
    const row = await trx
      .insertInto("jobs")
      .values({ kind, payload: JSON.stringify(payload), status: "queued", attempts: 0, run_after: now, locked_at: null, last_error: null, created_at: now, updated_at: now })
      .returning("id")
      .executeTakeFirstOrThrow();
    return row.id;
  }

  /** Takes the oldest ready job of the given kinds, or none. */
  async claim(kinds: readonly string[]): Promise<Job | undefined> {
    if (kinds.length === 0) return undefined;
    const now = isoNow(this.clock);
    return this.db.transaction().execute(async (trx) => {
      const job = await trx
        .selectFrom("jobs")
        .selectAll()
        .where("status", "=", "queued")
        .where("kind", "in", kinds)
        .where("run_after", "<=", now)
        .orderBy("id")
        .limit(1)
        .executeTakeFirst();
      if (!job) return undefined;
      const claimed = await trx
        .updateTable("jobs")
        .set({ status: "running", locked_at: now, attempts: job.attempts + 1, updated_at: now })
        .where("id", "=", job.id)
        .where("status", "=", "queued")
        .executeTakeFirst();
      return claimed.numUpdatedRows === 1n ? { ...job, status: "running" as const, attempts: job.attempts + 1 } : undefined;
    });
  }

  async complete(id: number): Promise<void> {
    await this.db.updateTable("jobs").set({ status: "done", updated_at: isoNow(this.clock) }).where("id", "=", id).execute();
  }

  /** Retries with backoff up to `maxAttempts`, then gives up. */
  async fail(job: Job, error: string, maxAttempts = 5): Promise<void> {
    const now = this.clock.now();
    const giveUp = job.attempts >= maxAttempts;
    const retryAt = new Date(now.getTime() + 2 ** job.attempts * 5000).toISOString();
    await this.db
      .updateTable("jobs")
      .set({ status: giveUp ? "failed" : "queued", run_after: retryAt, last_error: error.slice(0, 2000), locked_at: null, updated_at: now.toISOString() })
      .where("id", "=", job.id)
      .execute();
  }

  /** After a crash, jobs left running were interrupted: run them again. */
  async requeueInterrupted(): Promise<number> {
    const result = await this.db
      .updateTable("jobs")
      .set({ status: "queued", locked_at: null, updated_at: isoNow(this.clock) })
      .where("status", "=", "running")
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }
}
