import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import { RosterdockError } from "../errors.ts";
import { isUniqueViolation } from "../db/dialect-info.ts";
import { generatePassword, randomToken } from "../security/secrets.ts";
import type { SecretHasher } from "../security/hash-pool.ts";

export interface OperatorView {
  id: number;
  email: string;
  status: "active" | "disabled";
  createdAt: string;
  disabledAt: string | null;
  lastSignInAt: string | null;
}

export interface OperatorCredentials {
  email: string;
  password: string;
}

export type SignInResult = { ok: true; operator: OperatorView } | { ok: false; reason: "unknown" | "bad_password" | "disabled" };

// Deliberately loose: an address the vendor's own mail accepts; the console only needs it unique.
const EMAIL = /^[^\s@]+@[^\s@]+$/;

/** The vendor's support staff who sign in to the web console: accounts, passwords, sign-in checks. */
export class OperatorService {
  private dummyHash: Promise<string> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly hasher: SecretHasher,
  ) {}

  /** Creates an operator with a generated password, returned once; only its hash is kept. */
  async create(email: string, actor: string): Promise<OperatorCredentials> {
    const normalised = normaliseEmail(email);
    const password = generatePassword();
    const hash = await this.hasher.hash(password);
    const now = isoNow(this.clock);
    const exists = () => new RosterdockError("ERR_OPERATOR_EXISTS", `An operator with the email ${normalised} already exists.`, { email: normalised });
    await this.db
      .transaction()
      .execute(async (trx) => {
        const existing = await trx.selectFrom("operators").select("id").where("email", "=", normalised).executeTakeFirst();
        if (existing) throw exists();
        await trx.insertInto("operators").values({ email: normalised, password_hash: hash, created_at: now, disabled_at: null, last_sign_in_at: null }).execute();
        await this.audit.record({ actor, action: "operator.created", details: { email: normalised } }, trx);
      })
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? exists() : error;
      });
    return { email: normalised, password };
  }

  async list(): Promise<OperatorView[]> {
    const rows = await this.db.selectFrom("operators").selectAll().orderBy("email").execute();
    return rows.map(toView);
  }

  async show(email: string): Promise<OperatorView> {
    return toView(await this.requireRow(email));
  }

  /** The operator a console session belongs to, if that operator may still use it. */
  async activeById(id: number): Promise<OperatorView | undefined> {
    const row = await this.db.selectFrom("operators").selectAll().where("id", "=", id).where("disabled_at", "is", null).executeTakeFirst();
    return row ? toView(row) : undefined;
  }

  /** Refuses the operator's sign-ins from now on and ends their console sessions. */
  async disable(email: string, actor: string): Promise<OperatorView> {
    const row = await this.requireRow(email);
    const now = isoNow(this.clock);
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable("operators").set({ disabled_at: row.disabled_at ?? now }).where("id", "=", row.id).execute();
      await trx.deleteFrom("console_sessions").where("operator_id", "=", row.id).execute();
      await this.audit.record({ actor, action: "operator.disabled", details: { email: row.email } }, trx);
    });
    return this.show(row.email);
  }

  /** A new generated password, returned once; the old one stops working and open sessions end. */
  async resetPassword(email: string, actor: string): Promise<OperatorCredentials> {
    const row = await this.requireRow(email);
    const password = generatePassword();
    const hash = await this.hasher.hash(password);
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable("operators").set({ password_hash: hash }).where("id", "=", row.id).execute();
      await trx.deleteFrom("console_sessions").where("operator_id", "=", row.id).execute();
      await this.audit.record({ actor, action: "operator.password_reset", details: { email: row.email } }, trx);
    });
    return { email: row.email, password };
  }

  /** Checks a console sign-in; every outcome takes one scrypt, so timing reveals nothing. */
  async signIn(email: string, password: string, address: string): Promise<SignInResult> {
    const normalised = email.trim().toLowerCase();
    const row = await this.db.selectFrom("operators").selectAll().where("email", "=", normalised).executeTakeFirst();
    if (!row) {
      await this.hasher.verify(password, await (this.dummyHash ??= this.hasher.hash(randomToken(16))), address);
      return { ok: false, reason: "unknown" };
    }
    if (!(await this.hasher.verify(password, row.password_hash, address))) return { ok: false, reason: "bad_password" };
    if (row.disabled_at !== null) return { ok: false, reason: "disabled" };
    const now = isoNow(this.clock);
    await this.db.updateTable("operators").set({ last_sign_in_at: now }).where("id", "=", row.id).execute();
    await this.audit.record({ actor: operatorActor(row.email), action: "operator.signed_in", details: { email: row.email, address } });
    return { ok: true, operator: toView({ ...row, last_sign_in_at: now }) };
  }

  private async requireRow(email: string) {
    const normalised = email.trim().toLowerCase();
    const row = await this.db.selectFrom("operators").selectAll().where("email", "=", normalised).executeTakeFirst();
    if (!row) throw new RosterdockError("ERR_OPERATOR_NOT_FOUND", `No operator has the email ${normalised}; \`rosterdock operator list\` shows them.`, { email: normalised });
    return row;
  }
}

/** The audit trail's name for an operator acting in the console. */
export function operatorActor(email: string): string {
  return `operator:${email}`;
}

function normaliseEmail(email: string): string {
  const normalised = email.trim().toLowerCase();
  if (!EMAIL.test(normalised) || normalised.length > 254) throw new RosterdockError("ERR_INVALID_ARGUMENT", `"${email}" is not an email address.`, { email });
  return normalised;
}

function toView(row: { id: number; email: string; created_at: string; disabled_at: string | null; last_sign_in_at: string | null }): OperatorView {
  return {
    id: row.id,
    email: row.email,
    status: row.disabled_at === null ? "active" : "disabled",
    createdAt: row.created_at,
    disabledAt: row.disabled_at,
    lastSignInAt: row.last_sign_in_at,
  };
}
