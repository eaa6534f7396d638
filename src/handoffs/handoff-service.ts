import type { Kysely, Selectable } from "kysely";
import type { Logger } from "pino";
import type { CredentialHandoffTable, Database, HandoffEndReason } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import { HANDOFF_TOKEN, handoffLookup, newHandoffToken, openWithToken, sealContext, sealWithToken } from "./handoff-seal.ts";

/** A link just made: the token is in the link and nowhere else. */
export interface IssuedLink {
  id: number;
  token: string;
  expiresAt: string;
}

export interface HandoffDistrict {
  slug: string;
  name: string;
}

/** What a visit to a link finds. Only `revealed` carries the password, and only once. */
export type HandoffVisit =
  | { state: "ready"; district: HandoffDistrict; expiresAt: string }
  | { state: "revealed"; district: HandoffDistrict; username: string; password: string; expiresAt: string }
  | { state: "used"; district: HandoffDistrict; at: string }
  | { state: "expired"; district: HandoffDistrict; at: string }
  | { state: HandoffEndReason; district: HandoffDistrict; at: string }
  | { state: "unknown" };

/** A district's latest link, as `district show` reports it: never the token. */
export interface LinkStatus {
  state: "open" | "used" | "expired" | HandoffEndReason;
  createdAt: string;
  expiresAt: string;
  revealedAt: string | null;
  endedAt: string | null;
}

type Row = Selectable<CredentialHandoffTable> & { slug: string; name: string };

const DAY_MS = 24 * 3600 * 1000;

/**
 * One-time links that hand a district's PowerSchool administrator the SFTP credentials: made with
 * each new password, revealed once, then only a record of when. Every reveal and every refused
 * visit is logged and audited with the client's address, never with the token or the password.
 */
export class HandoffService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    private readonly linkDays: number,
  ) {}

  /**
   * A new link for a district's new password, in the transaction that sets the password: any
   * older link of the district stops working at the same moment. The caller's audit event names it.
   */
  async issue(trx: Kysely<Database>, input: { districtId: number; password: string; actor: string }): Promise<IssuedLink> {
    const now = this.clock.now();
    const at = now.toISOString();
    await this.end(trx, input.districtId, "replaced", at);
    const token = newHandoffToken();
    const lookup = handoffLookup(token);
    const expiresAt = new Date(now.getTime() + this.linkDays * DAY_MS).toISOString();
    const row = await trx
      .insertInto("credential_handoffs")
      .values({
        district_id: input.districtId,
        lookup,
        sealed_password: sealWithToken(token, input.password, sealContext(input.districtId, lookup)),
        created_at: at,
        created_by: input.actor,
        expires_at: expiresAt,
        revealed_at: null,
        revealed_from: null,
        ended_at: null,
        ended_reason: null,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    await this.purgeExpired(trx);
    return { id: row.id, token, expiresAt };
  }

  /** Ends a district's links that could still be revealed; returns how many. Their sealed passwords are deleted. */
  async end(trx: Kysely<Database>, districtId: number, reason: HandoffEndReason, at: string = isoNow(this.clock)): Promise<number> {
    const result = await trx
      .updateTable("credential_handoffs")
      .set({ ended_at: at, ended_reason: reason, sealed_password: null })
      .where("district_id", "=", districtId)
      .where("ended_at", "is", null)
      .where("revealed_at", "is", null)
      .where("expires_at", ">", at)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  /** Deletes the sealed passwords of expired links (at each new link and periodically from the server). */
  async purgeExpired(db: Kysely<Database> = this.db): Promise<number> {
    const now = isoNow(this.clock);
    const due = await db.selectFrom("credential_handoffs").select("id").where("sealed_password", "is not", null).where("expires_at", "<=", now).limit(1).executeTakeFirst();
    if (!due) return 0;
    const result = await db.updateTable("credential_handoffs").set({ sealed_password: null }).where("sealed_password", "is not", null).where("expires_at", "<=", now).executeTakeFirst();
    const purged = Number(result.numUpdatedRows);
    if (purged > 0) this.logger.info({ event: "handoff.expired_purged", count: purged }, "deleted the sealed passwords of expired credentials links");
    return purged;
  }

  /** The district's latest link, if it ever had one. */
  async latest(districtId: number): Promise<LinkStatus | undefined> {
    const row = await this.db.selectFrom("credential_handoffs").selectAll().where("district_id", "=", districtId).orderBy("id", "desc").limit(1).executeTakeFirst();
    if (!row) return undefined;
    const state: LinkStatus["state"] = row.revealed_at ? "used" : row.ended_reason ? row.ended_reason : row.expires_at <= isoNow(this.clock) ? "expired" : "open";
    return { state, createdAt: row.created_at, expiresAt: row.expires_at, revealedAt: row.revealed_at, endedAt: row.ended_at };
  }

  /** A GET: what the link is, without using it (link previewers only GET). */
  async inspect(token: string, address: string): Promise<HandoffVisit> {
    const row = await this.find(token);
    if (!row) return this.refuse(undefined, "unknown", address, "GET");
    const blocked = await this.blocked(row, address, "GET");
    if (blocked) return blocked;
    this.logger.info({ event: "handoff.opened", district: row.slug, link: row.id, ip: address }, "credentials link opened, not yet revealed");
    return { state: "ready", district: districtOf(row), expiresAt: row.expires_at };
  }

  /** A POST: reveals the credentials if the link still can, and uses it up. */
  async reveal(token: string, address: string): Promise<HandoffVisit> {
    const row = await this.find(token);
    if (!row) return this.refuse(undefined, "unknown", address, "POST");
    const blocked = await this.blocked(row, address, "POST");
    if (blocked) return blocked;
    const password = openWithToken(token, row.sealed_password!, sealContext(row.district_id, row.lookup));
    if (password === undefined) {
      // Only a changed row gets here (the lookup matched, so the token is right).
      this.logger.error({ event: "handoff.unreadable", district: row.slug, link: row.id, ip: address }, "a credentials link's sealed password does not open");
      return this.refuse(row, "unknown", address, "POST");
    }
    const at = isoNow(this.clock);
    const claimed = await this.db.transaction().execute(async (trx) => {
      // Conditional: of two reveals at the same moment, one wins and the other finds the link used.
      const result = await trx
        .updateTable("credential_handoffs")
        .set({ revealed_at: at, revealed_from: address, sealed_password: null })
        .where("id", "=", row.id)
        .where("revealed_at", "is", null)
        .where("ended_at", "is", null)
        .where("sealed_password", "is not", null)
        .where("expires_at", ">", at)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      await this.audit.record({ actor: visitor(address), action: "district.credentials_revealed", districtId: row.district_id, details: { link: row.id, address } }, trx);
      return true;
    });
    if (!claimed) {
      const now = await this.find(token);
      return (now && (await this.blocked(now, address, "POST"))) ?? this.refuse(row, "unknown", address, "POST");
    }
    this.logger.info({ event: "handoff.revealed", district: row.slug, link: row.id, ip: address }, "credentials revealed through their one-time link");
    return { state: "revealed", district: districtOf(row), username: row.slug, password, expiresAt: row.expires_at };
  }

  private async find(token: string): Promise<Row | undefined> {
    if (!HANDOFF_TOKEN.test(token)) return undefined;
    return this.db
      .selectFrom("credential_handoffs")
      .innerJoin("districts", "districts.id", "credential_handoffs.district_id")
      .selectAll("credential_handoffs")
      .select(["districts.slug", "districts.name"])
      .where("credential_handoffs.lookup", "=", handoffLookup(token))
      .executeTakeFirst();
  }

  /** Why the link cannot be revealed now (refused, logged and audited), or undefined when it can. */
  private async blocked(row: Row, address: string, method: "GET" | "POST"): Promise<HandoffVisit | undefined> {
    const district = districtOf(row);
    if (row.revealed_at) return this.refuse(row, "used", address, method, { state: "used", district, at: row.revealed_at });
    if (row.ended_at && row.ended_reason) return this.refuse(row, row.ended_reason, address, method, { state: row.ended_reason, district, at: row.ended_at });
    const now = isoNow(this.clock);
    if (row.expires_at <= now || row.sealed_password === null) {
      if (row.sealed_password !== null) await this.db.updateTable("credential_handoffs").set({ sealed_password: null }).where("id", "=", row.id).execute();
      return this.refuse(row, "expired", address, method, { state: "expired", district, at: row.expires_at });
    }
    return undefined;
  }

  private async refuse(row: Row | undefined, reason: "unknown" | "used" | "expired" | HandoffEndReason, address: string, method: "GET" | "POST", visit: HandoffVisit = { state: "unknown" }): Promise<HandoffVisit> {
    this.logger.warn(
      { event: "handoff.refused", reason, method, ip: address, ...(row ? { district: row.slug, link: row.id } : {}) },
      reason === "unknown" ? "a visit to an unknown credentials link" : `a visit to a credentials link that is ${reason === "used" ? "used up" : reason}`,
    );
    await this.audit.record({ actor: visitor(address), action: "district.credentials_link_refused", districtId: row?.district_id ?? null, details: { reason, method, address, ...(row ? { link: row.id } : {}) } });
    return visit;
  }
}

function districtOf(row: Row): HandoffDistrict {
  return { slug: row.slug, name: row.name };
}

/** Who the audit trail names for a visit to a link: nobody signs in, so the client's address. */
function visitor(address: string): string {
  return `link:${address}`;
}
