import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";

export interface AuditEvent {
  actor: string;
  action: string;
  districtId?: number | null;
  details?: Record<string, unknown>;
}

/** The trail of what operators did; never holds secrets. */
export class AuditLog {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  async record(event: AuditEvent, db: Kysely<Database> = this.db): Promise<void> {
    await db
      .insertInto("audit_events")
      .values({
        at: isoNow(this.clock),
        actor: event.actor,
        action: event.action,
        district_id: event.districtId ?? null,
        details: JSON.stringify(event.details ?? {}),
      })
      .execute();
  }
}
