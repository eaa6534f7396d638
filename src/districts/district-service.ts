import type { Kysely } from "kysely";
import type { Database, District } from "../db/schema.ts";
import type { Clock } from "../clock.ts";
import { isoNow } from "../clock.ts";
import { RosterdockError } from "../errors.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import { generatePassword, randomToken } from "../security/secrets.ts";
import type { SecretHasher } from "../security/hash-pool.ts";
import { isAddressAllowed, parseCidr } from "./ip-allow-list.ts";
import { isUniqueViolation } from "../db/dialect-info.ts";
import { DATE_FORMAT_SETTINGS, districtDateFormat } from "../intake/date-format.ts";
import type { DateFormatSetting } from "../intake/date-format.ts";
import type { HandoffService, IssuedLink } from "../handoffs/handoff-service.ts";

const SLUG = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/** A district's own safeguard thresholds; unset ones follow the server's (ROSTERDOCK_HOLD_*). */
export interface SafeguardOverrides {
  deletePercent?: number;
  deleteMinRows?: number;
  changePercent?: number;
  changeMinRows?: number;
}

export interface DistrictView {
  id: number;
  slug: string;
  name: string;
  status: "active" | "disabled";
  allowIps: string[];
  sftpUsername: string;
  safeguards: SafeguardOverrides;
  /** How its files' dates are read: `auto` (each date column as its values show), `mdy` or `dmy`. */
  dateFormat: DateFormatSetting;
  createdAt: string;
}

/** How overrides are kept in `districts.settings.safeguards`, as the sync engine reads them. */
const STORED_SAFEGUARDS = {
  deletePercent: { key: "maxDeleteShare", scale: 100 },
  deleteMinRows: { key: "minDeleteRows", scale: 1 },
  changePercent: { key: "maxTouchShare", scale: 100 },
  changeMinRows: { key: "minTouchRows", scale: 1 },
} as const;

export interface CreatedDistrict {
  district: DistrictView;
  password: string;
  /** The one-time link that hands the password over; any older link of the district no longer works. */
  credentialsLink: IssuedLink;
}

export type LoginResult =
  | { ok: true; district: DistrictView }
  | { ok: false; reason: "unknown_user" | "bad_password" | "disabled" | "address_not_allowed" | "bad_key" | "too_many_failures" | "banned" | "server_busy" };

/** Why a district's open SFTP sessions must end. */
export type AccessRevoked = "disabled" | "password_rotated";

/** Districts and their SFTP credentials. The one place that knows how logins are checked. */
export class DistrictService {
  private dummyHash: Promise<string> | undefined;
  private readonly revokedListeners = new Set<(districtId: number, why: AccessRevoked) => void>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly hasher: SecretHasher,
    private readonly handoffs: HandoffService,
  ) {}

  /** Called after a district is disabled or its password rotated here, so the SFTP server ends its sessions. */
  onAccessRevoked(listener: (districtId: number, why: AccessRevoked) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  private accessRevoked(districtId: number, why: AccessRevoked): void {
    for (const listener of this.revokedListeners) listener(districtId, why);
  }

  /**
   * What a login was granted against: the district's status and its current password. A session
   * whose stamp changed (a disable or rotation by the CLI or another server) is ended.
   */
  async accessStamps(districtIds: readonly number[]): Promise<Map<number, string>> {
    if (districtIds.length === 0) return new Map();
    const rows = await this.db
      .selectFrom("districts")
      .leftJoin("credentials", (join) =>
        join.onRef("credentials.district_id", "=", "districts.id").on("credentials.kind", "=", "password").on("credentials.revoked_at", "is", null),
      )
      .select(["districts.id", "districts.status", "credentials.id as credentialId"])
      .where("districts.id", "in", [...districtIds])
      .execute();
    return new Map(rows.map((r) => [r.id, `${r.status}:${r.credentialId ?? "none"}`]));
  }

  /** The district an SFTP username belongs to, if any. */
  async findByUsername(username: string): Promise<DistrictView | undefined> {
    const row = await this.db.selectFrom("credentials").select("district_id").where("username", "=", username).executeTakeFirst();
    return row ? this.showById(row.district_id) : undefined;
  }

  async create(input: { slug: string; name: string; allowIps?: string[] }, actor: string): Promise<CreatedDistrict> {
    const slug = input.slug.trim();
    if (slug.length < 2 || slug.length > 40 || !SLUG.test(slug)) throw new RosterdockError("ERR_INVALID_SLUG", undefined, { slug });
    const name = input.name.trim();
    if (!name) throw new RosterdockError("ERR_INVALID_ARGUMENT", "A district needs a name.");
    const allowIps = (input.allowIps ?? []).map(parseCidr);
    const password = generatePassword();
    const secretHash = await this.hasher.hash(password);
    const now = isoNow(this.clock);
    const exists = () => new RosterdockError("ERR_DISTRICT_EXISTS", `A district named "${slug}" already exists.`, { slug });
    const { id, credentialsLink } = await this.db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom("districts").select("id").where("slug", "=", slug).executeTakeFirst();
      if (existing) throw exists();
      const row = await trx
        .insertInto("districts")
        .values({ slug, name, status: "active", allow_ips: JSON.stringify(allowIps), settings: "{}", created_at: now, updated_at: now })
        .returning("id")
        .executeTakeFirstOrThrow();
      await trx
        .insertInto("credentials")
        .values({ district_id: row.id, kind: "password", username: slug, secret_hash: secretHash, public_key: null, created_at: now, revoked_at: null })
        .execute();
      const link = await this.handoffs.issue(trx, { districtId: row.id, password, actor });
      await this.audit.record({ actor, action: "district.created", districtId: row.id, details: { slug, allowIps, credentialsLink: { id: link.id, expiresAt: link.expiresAt } } }, trx);
      return { id: row.id, credentialsLink: link };
    }).catch((error: unknown) => {
      // Created at the same moment by another request (PostgreSQL runs them side by side).
      throw isUniqueViolation(error) ? exists() : error;
    });
    return { district: await this.showById(id), password, credentialsLink };
  }

  async list(): Promise<DistrictView[]> {
    const rows = await this.db.selectFrom("districts").selectAll().orderBy("slug").execute();
    return rows.map(toView);
  }

  async show(slug: string): Promise<DistrictView> {
    return toView(await this.requireRow(slug));
  }

  async showById(id: number): Promise<DistrictView> {
    const row = await this.db.selectFrom("districts").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) throw new RosterdockError("ERR_DISTRICT_NOT_FOUND");
    return toView(row);
  }

  async requireRow(slug: string): Promise<District> {
    const row = await this.db.selectFrom("districts").selectAll().where("slug", "=", slug).executeTakeFirst();
    if (!row) throw new RosterdockError("ERR_DISTRICT_NOT_FOUND", `No district is named "${slug}". \`rosterdock district list\` shows them.`, { slug });
    return row;
  }

  /**
   * Replaces the SFTP password; the old one stops working at once, and so does the old credentials
   * link. `via` says which command asked (`new-link`: the operator wanted a new link).
   */
  async rotatePassword(slug: string, actor: string, via: "rotate-password" | "new-link" = "rotate-password"): Promise<CreatedDistrict> {
    const district = await this.requireRow(slug);
    const password = generatePassword();
    const secretHash = await this.hasher.hash(password);
    const now = isoNow(this.clock);
    const credentialsLink = await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("credentials")
        .set({ revoked_at: now })
        .where("district_id", "=", district.id)
        .where("kind", "=", "password")
        .where("revoked_at", "is", null)
        .execute();
      await trx
        .insertInto("credentials")
        .values({ district_id: district.id, kind: "password", username: district.slug, secret_hash: secretHash, public_key: null, created_at: now, revoked_at: null })
        .execute();
      const link = await this.handoffs.issue(trx, { districtId: district.id, password, actor });
      await this.audit.record({ actor, action: "district.password_rotated", districtId: district.id, details: { via, credentialsLink: { id: link.id, expiresAt: link.expiresAt } } }, trx);
      return link;
    });
    this.accessRevoked(district.id, "password_rotated");
    return { district: toView(district), password, credentialsLink };
  }

  /** Ends the district's credentials link if it has not been used; the password itself keeps working. */
  async revokeCredentialsLink(slug: string, actor: string): Promise<{ district: DistrictView; revoked: number }> {
    const district = await this.requireRow(slug);
    const revoked = await this.db.transaction().execute(async (trx) => {
      const count = await this.handoffs.end(trx, district.id, "revoked");
      await this.audit.record({ actor, action: "district.credentials_link_revoked", districtId: district.id, details: { revoked: count } }, trx);
      return count;
    });
    return { district: toView(district), revoked };
  }

  /** Changes what an operator may change after creation: the name and the SFTP allow-list. */
  async update(slug: string, changes: { name?: string; allowIps?: string[] }, actor: string): Promise<DistrictView> {
    const district = await this.requireRow(slug);
    const allowIps = changes.allowIps?.map(parseCidr);
    const name = changes.name?.trim();
    if (name === "") throw new RosterdockError("ERR_INVALID_ARGUMENT", "A district needs a name.");
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("districts")
        .set({
          ...(name ? { name } : {}),
          ...(allowIps ? { allow_ips: JSON.stringify(allowIps) } : {}),
          updated_at: isoNow(this.clock),
        })
        .where("id", "=", district.id)
        .execute();
      await this.audit.record({ actor, action: "district.updated", districtId: district.id, details: { name, allowIps } }, trx);
    });
    return this.show(slug);
  }

  /** Sets (or with `null`, clears) a district's own safeguard thresholds. */
  async setSafeguards(slug: string, changes: { [K in keyof SafeguardOverrides]?: number | null }, actor: string): Promise<DistrictView> {
    const district = await this.requireRow(slug);
    const settings = JSON.parse(district.settings) as { safeguards?: Record<string, number> };
    const stored = { ...(settings.safeguards ?? {}) };
    for (const [name, value] of Object.entries(changes) as [keyof SafeguardOverrides, number | null | undefined][]) {
      if (value === undefined) continue;
      const { key, scale } = STORED_SAFEGUARDS[name];
      if (value === null) {
        delete stored[key];
        continue;
      }
      const max = scale === 100 ? 100 : Number.MAX_SAFE_INTEGER;
      if (!Number.isInteger(value) || value < 0 || value > max) {
        throw new RosterdockError("ERR_INVALID_ARGUMENT", `${name} must be a whole number from 0 to ${max}, got ${value}.`);
      }
      stored[key] = value / scale;
    }
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable("districts")
        .set({ settings: JSON.stringify({ ...settings, safeguards: stored }), updated_at: isoNow(this.clock) })
        .where("id", "=", district.id)
        .execute();
      await this.audit.record({ actor, action: "district.safeguards_set", districtId: district.id, details: { safeguards: stored } }, trx);
    });
    return this.show(slug);
  }

  /** Sets how the district's dates are read (`districts.settings.dateFormat`; `auto`, the default, is not stored). */
  async setDateFormat(slug: string, dateFormat: string, actor: string): Promise<DistrictView> {
    if (!(DATE_FORMAT_SETTINGS as readonly string[]).includes(dateFormat)) {
      throw new RosterdockError("ERR_INVALID_ARGUMENT", `The date format must be one of ${DATE_FORMAT_SETTINGS.join(", ")}, got ${JSON.stringify(dateFormat)}.`);
    }
    const district = await this.requireRow(slug);
    const { dateFormat: _previous, ...settings } = JSON.parse(district.settings) as { dateFormat?: string };
    const stored = dateFormat === "auto" ? settings : { ...settings, dateFormat };
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable("districts").set({ settings: JSON.stringify(stored), updated_at: isoNow(this.clock) }).where("id", "=", district.id).execute();
      await this.audit.record({ actor, action: "district.date_format_set", districtId: district.id, details: { dateFormat } }, trx);
    });
    return this.show(slug);
  }

  async disable(slug: string, actor: string): Promise<DistrictView> {
    const district = await this.requireRow(slug);
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable("districts").set({ status: "disabled", updated_at: isoNow(this.clock) }).where("id", "=", district.id).execute();
      await this.audit.record({ actor, action: "district.disabled", districtId: district.id }, trx);
    });
    this.accessRevoked(district.id, "disabled");
    return this.show(slug);
  }

  /** Checks an SFTP password login; every outcome takes one scrypt, so timing reveals nothing. */
  async loginWithPassword(username: string, password: string, address: string): Promise<LoginResult> {
    const credential = await this.db
      .selectFrom("credentials")
      .innerJoin("districts", "districts.id", "credentials.district_id")
      .select(["credentials.secret_hash", "districts.slug"])
      .where("credentials.username", "=", username)
      .where("credentials.kind", "=", "password")
      .where("credentials.revoked_at", "is", null)
      .executeTakeFirst();
    if (!credential?.secret_hash) {
      await this.hasher.verify(password, await (this.dummyHash ??= this.hasher.hash(randomToken(16))), address);
      return { ok: false, reason: "unknown_user" };
    }
    if (!(await this.hasher.verify(password, credential.secret_hash, address))) return { ok: false, reason: "bad_password" };
    return this.admit(await this.show(credential.slug), address);
  }

  /** Public keys registered for a district (`ssh-ed25519 AAAA…` lines). */
  async publicKeys(username: string): Promise<{ district: DistrictView; keys: string[] } | undefined> {
    const rows = await this.db
      .selectFrom("credentials")
      .innerJoin("districts", "districts.id", "credentials.district_id")
      .select(["credentials.public_key", "districts.slug"])
      .where("credentials.username", "=", username)
      .where("credentials.kind", "=", "public_key")
      .where("credentials.revoked_at", "is", null)
      .execute();
    const first = rows[0];
    if (!first) return undefined;
    return { district: await this.show(first.slug), keys: rows.flatMap((r) => (r.public_key ? [r.public_key] : [])) };
  }

  async addPublicKey(slug: string, publicKey: string, actor: string): Promise<void> {
    const district = await this.requireRow(slug);
    const { default: ssh2 } = await import("ssh2");
    const parsed = ssh2.utils.parseKey(publicKey.trim());
    if (parsed instanceof Error || parsed.isPrivateKey()) {
      throw new RosterdockError("ERR_INVALID_ARGUMENT", "That is not an SSH public key; give one line such as `ssh-ed25519 AAAA… comment`.");
    }
    const now = isoNow(this.clock);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto("credentials")
        .values({ district_id: district.id, kind: "public_key", username: district.slug, secret_hash: null, public_key: publicKey.trim(), created_at: now, revoked_at: null })
        .execute();
      await this.audit.record({ actor, action: "district.public_key_added", districtId: district.id }, trx);
    });
  }

  admit(district: DistrictView, address: string): LoginResult {
    if (district.status !== "active") return { ok: false, reason: "disabled" };
    if (!isAddressAllowed(district.allowIps, address)) return { ok: false, reason: "address_not_allowed" };
    return { ok: true, district };
  }
}

function toView(row: District): DistrictView {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    status: row.status,
    allowIps: JSON.parse(row.allow_ips) as string[],
    sftpUsername: row.slug,
    safeguards: safeguardOverrides(row.settings),
    dateFormat: districtDateFormat(row.settings),
    createdAt: row.created_at,
  };
}

function safeguardOverrides(settingsJson: string): SafeguardOverrides {
  const stored = (JSON.parse(settingsJson) as { safeguards?: Record<string, number> }).safeguards ?? {};
  const view: SafeguardOverrides = {};
  for (const [name, { key, scale }] of Object.entries(STORED_SAFEGUARDS) as [keyof SafeguardOverrides, { key: string; scale: number }][]) {
    const value = stored[key];
    if (typeof value === "number") view[name] = Math.round(value * scale * 1000) / 1000;
  }
  return view;
}
