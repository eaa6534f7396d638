import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Database, Job } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import { RosterdockError } from "../errors.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import type { JobQueue } from "../jobs/job-queue.ts";
import type { DistrictService } from "../districts/district-service.ts";
import { randomToken } from "../security/secrets.ts";
import { signWebhook } from "./webhook-signature.ts";

export const WEBHOOK_EVENTS = ["sync.applied", "sync.held", "sync.failed", "district.under_attack"] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Attempts before a delivery is given up (backoff doubles from 10 s: about 21 minutes in all). */
export const WEBHOOK_MAX_ATTEMPTS = 8;
const TIMEOUT_MS = 10_000;

function subscribes(eventsJson: string, event: WebhookEvent): boolean {
  return (JSON.parse(eventsJson) as string[]).includes(event);
}

/** The body every receiver gets; stored once, so a resend sends the same bytes. */
function webhookBody(event: WebhookEvent, createdAt: string, district: string | null, data: Record<string, unknown>): string {
  return JSON.stringify({ event, createdAt, district, data });
}

/** The structural subset of the sync engine's SQL (`EngineSql`) that `emitWithinEngine` uses. */
interface EngineHandle {
  readonly main: string;
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  value<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  run(sql: string, params?: readonly unknown[]): Promise<number>;
}

export interface WebhookEndpointView {
  id: number;
  url: string;
  district: string | null;
  events: WebhookEvent[];
  createdAt: string;
  disabled: boolean;
}

export interface WebhookDeliveryView {
  id: number;
  endpointId: number;
  event: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

/**
 * Signed webhooks: endpoints (global or per district), one delivery row per event and endpoint,
 * sent by the worker through the durable job queue with retries and backoff.
 */
export class WebhookService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly jobs: JobQueue,
    private readonly districts: DistrictService,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
  ) {}

  async addEndpoint(input: { url: string; district?: string; events?: string[] }, actor: string): Promise<{ endpoint: WebhookEndpointView; secret: string }> {
    let url: URL;
    try {
      url = new URL(input.url);
    } catch {
      throw new RosterdockError("ERR_INVALID_ARGUMENT", `"${input.url}" is not a URL.`);
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new RosterdockError("ERR_INVALID_ARGUMENT", "A webhook URL must be http or https.");
    const events = input.events?.length ? input.events : [...WEBHOOK_EVENTS];
    const unknown = events.filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
    if (unknown.length) throw new RosterdockError("ERR_INVALID_ARGUMENT", `Unknown events ${unknown.join(", ")}; known: ${WEBHOOK_EVENTS.join(", ")}.`);
    const district = input.district ? await this.districts.requireRow(input.district) : undefined;
    const secret = `whsec_${randomToken(24)}`;
    const row = await this.db
      .insertInto("webhook_endpoints")
      .values({ url: url.toString(), district_id: district?.id ?? null, events: JSON.stringify(events), secret, created_at: isoNow(this.clock), disabled_at: null })
      .returning("id")
      .executeTakeFirstOrThrow();
    await this.audit.record({ actor, action: "webhook.added", districtId: district?.id ?? null, details: { id: row.id, url: url.toString(), events } });
    return { endpoint: (await this.listEndpoints()).find((e) => e.id === row.id)!, secret };
  }

  async listEndpoints(): Promise<WebhookEndpointView[]> {
    const rows = await this.db
      .selectFrom("webhook_endpoints")
      .leftJoin("districts", "districts.id", "webhook_endpoints.district_id")
      .select(["webhook_endpoints.id", "url", "districts.slug", "events", "webhook_endpoints.created_at", "disabled_at"])
      .orderBy("webhook_endpoints.id")
      .execute();
    return rows.map((r) => ({ id: r.id, url: r.url, district: r.slug ?? null, events: JSON.parse(r.events), createdAt: r.created_at, disabled: r.disabled_at !== null }));
  }

  async removeEndpoint(id: number, actor: string): Promise<void> {
    const result = await this.db.updateTable("webhook_endpoints").set({ disabled_at: isoNow(this.clock) }).where("id", "=", id).where("disabled_at", "is", null).executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new RosterdockError("ERR_NOT_FOUND", `No active webhook endpoint ${id}.`);
    await this.audit.record({ actor, action: "webhook.removed", details: { id } });
  }

  /** Queues the event for every endpoint that wants it; call inside the transaction that made it happen. */
  async emit(event: WebhookEvent, districtId: number, data: Record<string, unknown>, db: Kysely<Database> = this.db): Promise<number> {
    const endpoints = await db
      .selectFrom("webhook_endpoints")
      .select(["id", "events", "district_id"])
      .where("disabled_at", "is", null)
      .where((eb) => eb.or([eb("district_id", "is", null), eb("district_id", "=", districtId)]))
      .execute();
    const district = await db.selectFrom("districts").select("slug").where("id", "=", districtId).executeTakeFirst();
    const now = isoNow(this.clock);
    let queued = 0;
    for (const endpoint of endpoints) {
      if (!subscribes(endpoint.events, event)) continue;
      const payload = webhookBody(event, now, district?.slug ?? null, data);
      const delivery = await db
        .insertInto("webhook_deliveries")
        .values({ endpoint_id: endpoint.id, event, payload, status: "pending", attempts: 0, last_status_code: null, last_error: null, created_at: now, updated_at: now })
        .returning("id")
        .executeTakeFirstOrThrow();
      await this.jobs.enqueue("deliver-webhook", { deliveryId: delivery.id }, db);
      queued++;
    }
    return queued;
  }

  /**
   * The same as `emit`, on the sync engine's own connection (SQLite or PostgreSQL) and inside its
   * transaction, so a sync's outcome and its webhooks are recorded together or not at all.
   */
  async emitWithinEngine(sql: EngineHandle, event: WebhookEvent, districtId: number, data: Record<string, unknown>, now: string): Promise<number> {
    const main = sql.main;
    const endpoints = await sql.all<{ id: number; events: string }>(
      `SELECT id, events FROM ${main}webhook_endpoints WHERE disabled_at IS NULL AND (district_id IS NULL OR district_id = ?)`,
      [districtId],
    );
    const district = await sql.get<{ slug: string }>(`SELECT slug FROM ${main}districts WHERE id = ?`, [districtId]);
    const insertDelivery = `INSERT INTO ${main}webhook_deliveries (endpoint_id, event, payload, status, attempts, created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?) RETURNING id`;
    const insertJob = `INSERT INTO ${main}jobs (kind, payload, status, attempts, run_after, created_at, updated_at) VALUES ('deliver-webhook', ?, 'queued', 0, ?, ?, ?)`;
    let queued = 0;
    for (const endpoint of endpoints) {
      if (!subscribes(endpoint.events, event)) continue;
      const payload = webhookBody(event, now, district?.slug ?? null, data);
      const id = Number(await sql.value(insertDelivery, [endpoint.id, event, payload, now, now]));
      await sql.run(insertJob, [JSON.stringify({ deliveryId: id }), now, now, now]);
      queued++;
    }
    return queued;
  }

  /** The `deliver-webhook` job: one attempt; a throw makes the queue retry with backoff. */
  async deliver(job: Job): Promise<void> {
    const { deliveryId } = JSON.parse(job.payload) as { deliveryId: number };
    const delivery = await this.db
      .selectFrom("webhook_deliveries")
      .innerJoin("webhook_endpoints", "webhook_endpoints.id", "webhook_deliveries.endpoint_id")
      .select(["webhook_deliveries.id", "event", "payload", "url", "secret", "attempts", "disabled_at"])
      .where("webhook_deliveries.id", "=", deliveryId)
      .executeTakeFirst();
    if (!delivery || delivery.disabled_at) return;
    const timestamp = Math.floor(this.clock.now().getTime() / 1000);
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const response = await fetch(delivery.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "Rosterdock-Webhooks/1",
          "x-rosterdock-event": delivery.event,
          "x-rosterdock-delivery": String(delivery.id),
          "x-rosterdock-signature": signWebhook(delivery.secret, delivery.payload, timestamp),
        },
        body: delivery.payload,
        redirect: "manual",
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      statusCode = response.status;
      await response.body?.cancel();
      if (!response.ok) error = `The receiver answered HTTP ${response.status}.`;
    } catch (cause) {
      error = `Could not reach the receiver: ${cause instanceof Error ? cause.message : String(cause)}`;
    }
    const attempts = delivery.attempts + 1;
    const status = error === null ? "delivered" : attempts >= WEBHOOK_MAX_ATTEMPTS || job.attempts >= WEBHOOK_MAX_ATTEMPTS ? "failed" : "pending";
    await this.db
      .updateTable("webhook_deliveries")
      .set({ status, attempts, last_status_code: statusCode, last_error: error, updated_at: isoNow(this.clock) })
      .where("id", "=", delivery.id)
      .execute();
    this.logger.info({ event: "webhook.attempted", deliveryId: delivery.id, webhookEvent: delivery.event, statusCode, status }, "webhook attempted");
    if (status === "pending") throw new Error(error ?? "delivery failed");
  }

  async listDeliveries(options: { endpointId?: number; limit?: number } = {}): Promise<WebhookDeliveryView[]> {
    let query = this.db.selectFrom("webhook_deliveries").selectAll().orderBy("id", "desc").limit(options.limit ?? 50);
    if (options.endpointId !== undefined) query = query.where("endpoint_id", "=", options.endpointId);
    const rows = await query.execute();
    return rows.map((r) => ({
      id: r.id,
      endpointId: r.endpoint_id,
      event: r.event,
      status: r.status,
      attempts: r.attempts,
      lastStatusCode: r.last_status_code,
      lastError: r.last_error,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  /** Sends a delivery again (same body, fresh signature), e.g. after a receiver's outage. */
  async resend(deliveryId: number, actor: string): Promise<void> {
    const result = await this.db
      .updateTable("webhook_deliveries")
      .set({ status: "pending", attempts: 0, updated_at: isoNow(this.clock) })
      .where("id", "=", deliveryId)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) throw new RosterdockError("ERR_NOT_FOUND", `No webhook delivery ${deliveryId}.`);
    await this.jobs.enqueue("deliver-webhook", { deliveryId });
    await this.audit.record({ actor, action: "webhook.resent", details: { deliveryId } });
  }
}
