import type { Logger } from "pino";
import type { Job } from "../db/schema.ts";
import type { DeliveryService } from "../deliveries/delivery-service.ts";
import type { JobQueue } from "./job-queue.ts";
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
      try {
        await handler.run(job);
        await this.jobs.complete(job.id);
      } catch (error) {
        if (error instanceof JobInterrupted) return;
        this.logger.error({ event: "job.failed", jobId: job.id, kind: job.kind, err: error }, "job failed");
        await this.jobs.fail(job, error instanceof Error ? error.message : String(error), handler.maxAttempts);
      }
    }
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
