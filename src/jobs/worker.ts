import type { Logger } from "pino";
import type { Job } from "../db/schema.ts";
import type { DeliveryService } from "../deliveries/delivery-service.ts";
import type { ClaimedJob, JobQueue } from "./job-queue.ts";
import { JobInterrupted } from "./sync-thread.ts";

export interface JobHandler {
  run(job: Job): Promise<void>;
  /** Attempts before the job is given up (backoff doubles from 10 s). */
  maxAttempts?: number;
}

/**
 * The background loop of `serve`: closes quiet deliveries and runs durable jobs. Only kinds
 * with a registered handler are taken; others wait in the queue for a version that has one.
 */
export class Worker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly deliveries: DeliveryService,
    private readonly jobs: JobQueue,
    private readonly handlers: ReadonlyMap<string, JobHandler>,
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
  ) {}

  async start(): Promise<void> {
    this.logger.info({ event: "worker.started", node: this.jobs.nodeId, leaseMs: this.jobs.leaseMs }, "worker started");
    const requeued = await this.jobs.requeueInterrupted();
    if (requeued > 0) this.logger.warn({ event: "jobs.requeued", count: requeued }, "jobs interrupted by a restart will run again");
    this.stopped = false;
    this.schedule(0);
    this.scheduleClose();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.closeTimer);
    await Promise.all([this.running, this.closing]);
  }

  /** One pass: close what is due, then run every ready job. */
  async tick(): Promise<void> {
    await this.deliveries.closeQuietDeliveries();
    for (;;) {
      if (this.stopped) return;
      const job = await this.jobs.claim([...this.handlers.keys()]);
      if (!job) return;
      const handler = this.handlers.get(job.kind)!;
      if (job.takenOverFrom !== undefined) {
        this.logger.warn({ event: "job.taken_over", jobId: job.id, kind: job.kind, payload: job.payload, from: job.takenOverFrom, node: this.jobs.nodeId, attempts: job.attempts }, "took over a job whose node stopped renewing its lease");
      }
      const heartbeat = this.keepLease(job);
      try {
        await handler.run(job);
        heartbeat.stop();
        await this.jobs.complete(job.id);
      } catch (error) {
        heartbeat.stop();
        if (error instanceof JobInterrupted) return;
        this.logger.error({ event: "job.failed", jobId: job.id, kind: job.kind, err: error }, "job failed");
        await this.jobs.fail(job, error instanceof Error ? error.message : String(error), handler.maxAttempts);
      }
    }
  }

  /**
   * Renews a running job's lease every third of it, from this thread (the sync itself runs on the
   * sync thread, so a long sync never starves its heartbeat). A lease found lost is logged: the
   * job's outcome will not be recorded by this node (JobQueue.complete and fail check the holder).
   */
  private keepLease(job: ClaimedJob): { stop(): void } {
    if (!this.jobs.shared) return { stop: () => undefined };
    let lost = false;
    const timer = setInterval(() => {
      this.jobs.heartbeat([job.id]).then(
        (gone) => {
          if (gone.length > 0 && !lost) {
            lost = true;
            this.logger.error({ event: "job.lease_lost", jobId: job.id, kind: job.kind, node: this.jobs.nodeId }, "another node took over this job: this node paused longer than the lease");
          }
        },
        (error: unknown) => this.logger.error({ event: "job.heartbeat_failed", jobId: job.id, err: error }, "could not renew a job's lease"),
      );
    }, Math.max(10, Math.floor(this.jobs.leaseMs / 3)));
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }

  /**
   * Deliveries also close on a timer of their own: a big district's sync runs for minutes, and
   * meanwhile other districts' nights would stay open and their files waiting in their folders.
   */
  private scheduleClose(): void {
    if (this.stopped) return;
    this.closeTimer = setTimeout(() => {
      this.closing = this.deliveries
        .closeQuietDeliveries()
        .then(() => undefined)
        .catch((error: unknown) => this.logger.error({ event: "worker.error", err: error }, "closing deliveries failed"))
        .finally(() => this.scheduleClose());
    }, this.intervalMs);
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick()
        .catch((error: unknown) => this.logger.error({ event: "worker.error", err: error }, "worker pass failed"))
        .finally(() => this.schedule(this.intervalMs));
    }, delay);
  }
}
