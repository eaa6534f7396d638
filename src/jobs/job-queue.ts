import { sql } from "../db/kysely.ts";
import type { Kysely, Transaction } from "kysely";
import type { Database, Job } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";

export type JobKind = "process-sync" | "deliver-webhook";

/** A claimed job; `takenOverFrom` names the node whose lease had expired (it died while running it). */
export type ClaimedJob = Job & { takenOverFrom?: string };

/** Default lease of a running job (`ROSTERDOCK_JOB_LEASE_SECONDS`): renewed by its node's heartbeat, taken over once expired. */
export const DEFAULT_JOB_LEASE_MS = 30_000;

export interface JobQueueOptions {
  /** This node's id (jobs/node-id.ts), recorded on the jobs it runs. */
  nodeId: string;
  /**
   * Whether several nodes share the queue (PostgreSQL): jobs are claimed with `FOR UPDATE SKIP
   * LOCKED` under a lease, and a running job is taken over only once its lease has expired. With
   * one node (SQLite), every job left running at start was interrupted and runs again.
   */
  shared: boolean;
  /** How long a claimed job is this node's without a heartbeat. */
  leaseMs?: number;
}

/** Durable work items in the database: whatever was enqueued before a crash runs after restart. */
export class JobQueue {
  readonly nodeId: string;
  readonly leaseMs: number;
  /** Whether claimed jobs are leased (several nodes): the worker then renews their leases. */
  readonly shared: boolean;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    options: JobQueueOptions = { nodeId: "local", shared: false },
  ) {
    this.nodeId = options.nodeId;
    this.shared = options.shared;
    this.leaseMs = options.leaseMs ?? DEFAULT_JOB_LEASE_MS;
  }

  async enqueue(kind: JobKind, payload: Record<string, unknown>, trx: Kysely<Database> | Transaction<Database> = this.db): Promise<number> {
    const now = isoNow(this.clock);
    const row = await trx
      .insertInto("jobs")
      .values({
        kind,
        payload: JSON.stringify(payload),
        status: "queued",
        attempts: 0,
        run_after: now,
        locked_at: null,
        locked_by: null,
        lease_until: null,
        last_error: null,
        created_at: now,
        updated_at: now,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    return row.id;
  }

  /**
   * Takes the oldest ready job of the given kinds, or none. Shared: also a running job whose
   * node's lease expired (the node died); it keeps its payload, so a sync keeps its id.
   */
  async claim(kinds: readonly string[]): Promise<ClaimedJob | undefined> {
    if (kinds.length === 0) return undefined;
    return this.shared ? this.claimShared(kinds) : this.claimLocal(kinds);
  }

  /** One UPDATE over a row locked with SKIP LOCKED: two nodes claiming at once never get the same job. */
  private async claimShared(kinds: readonly string[]): Promise<ClaimedJob | undefined> {
    const now = this.clock.now();
    const nowIso = now.toISOString();
    const leaseUntil = new Date(now.getTime() + this.leaseMs).toISOString();
    const result = await sql<Job & { taken_from: string | null }>`
      UPDATE jobs SET status = 'running', locked_at = ${nowIso}, locked_by = ${this.nodeId}, lease_until = ${leaseUntil},
        attempts = jobs.attempts + 1, updated_at = ${nowIso}
      FROM (
        SELECT id, locked_by AS taken_from FROM jobs
        WHERE kind IN (${sql.join(kinds)})
          AND ((status = 'queued' AND run_after <= ${nowIso})
            OR (status = 'running' AND (lease_until IS NULL OR lease_until < ${nowIso})))
        ORDER BY id
        LIMIT 1
        FOR UPDATE SKIP LOCKED
      ) AS ready
      WHERE jobs.id = ready.id
      RETURNING jobs.*, ready.taken_from`.execute(this.db);
    const row = result.rows[0];
    if (!row) return undefined;
    const { taken_from: takenFrom, ...job } = row;
    return takenFrom !== null && takenFrom !== this.nodeId ? { ...job, takenOverFrom: takenFrom } : job;
  }

  private async claimLocal(kinds: readonly string[]): Promise<Job | undefined> {
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
        .set({ status: "running", locked_at: now, locked_by: this.nodeId, attempts: job.attempts + 1, updated_at: now })
        .where("id", "=", job.id)
        .where("status", "=", "queued")
        .executeTakeFirst();
      return claimed.numUpdatedRows === 1n ? { ...job, status: "running" as const, locked_by: this.nodeId, attempts: job.attempts + 1 } : undefined;
    });
  }

  /**
   * Renews the lease of jobs this node is running. Returns the ids whose lease it no longer holds
   * (another node took the job over after a pause longer than the lease): their outcome is not ours to record.
   */
  async heartbeat(ids: readonly number[]): Promise<number[]> {
    if (!this.shared || ids.length === 0) return [];
    const now = this.clock.now();
    const renewed = await this.db
      .updateTable("jobs")
      .set({ lease_until: new Date(now.getTime() + this.leaseMs).toISOString() })
      .where("id", "in", ids)
      .where("status", "=", "running")
      .where("locked_by", "=", this.nodeId)
      .returning("id")
      .execute();
    const held = new Set(renewed.map((r) => r.id));
    return ids.filter((id) => !held.has(id));
  }

  /** Shared: complete and fail write only while this node still holds the job (one that lost its lease must not overwrite the new holder's outcome). */
  async complete(id: number): Promise<void> {
    await this.db
      .updateTable("jobs")
      .set({ status: "done", lease_until: null, updated_at: isoNow(this.clock) })
      .where("id", "=", id)
      .$if(this.shared, (q) => q.where("locked_by", "=", this.nodeId))
      .execute();
  }

  /** Retries with backoff up to `maxAttempts`, then gives up. */
  async fail(job: Job, error: string, maxAttempts = 5): Promise<void> {
    const now = this.clock.now();
    const giveUp = job.attempts >= maxAttempts;
    const retryAt = new Date(now.getTime() + 2 ** job.attempts * 5000).toISOString();
    await this.db
      .updateTable("jobs")
      .set({ status: giveUp ? "failed" : "queued", run_after: retryAt, last_error: error.slice(0, 2000), locked_at: null, locked_by: null, lease_until: null, updated_at: now.toISOString() })
      .where("id", "=", job.id)
      .$if(this.shared, (q) => q.where("locked_by", "=", this.nodeId))
      .execute();
  }

  /**
   * At start. One node (SQLite): jobs left running were interrupted by its crash; they run again.
   * Shared: another node's running job may be alive, so nothing is taken here; a dead node's job is
   * claimed like a queued one once its lease has expired. Returns the jobs requeued.
   */
  async requeueInterrupted(): Promise<number> {
    if (this.shared) return 0;
    const result = await this.db
      .updateTable("jobs")
      .set({ status: "queued", locked_at: null, locked_by: null, updated_at: isoNow(this.clock) })
      .where("status", "=", "running")
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }
}
