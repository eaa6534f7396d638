import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import { RosterdockError } from "../errors.ts";
import { randomToken } from "../security/secrets.ts";
import type { SecretHasher } from "../security/hash-pool.ts";
import { normaliseScopes, type TokenScope } from "./token-scopes.ts";

export { TOKEN_SCOPES, type TokenScope } from "./token-scopes.ts";

const TOKEN_FORMAT = /^rdk_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43})$/;

/** What a token gets when no scope is asked for: reading rosters, never administering the server. */
export const DEFAULT_TOKEN_SCOPES: readonly TokenScope[] = ["roster.readonly"];

/** A token as `token list` shows it: never the token nor its hash. */
export interface TokenView {
  id: number;
  name: string;
  scopes: TokenScope[];
  createdAt: string;
  /** Null while the token works. */
  revokedAt: string | null;
}

export interface VerifiedToken {
  id: number;
  name: string;
  scopes: TokenScope[];
  /** District slugs the token may read; undefined = all. */
  districts: string[] | undefined;
  /** When an OAuth access token stops working; null for tokens that last until revoked. */
  expiresAt: string | null;
}

/**
 * API bearer tokens `rdk_<lookup>_<secret>`: the lookup part finds the row, the secret is
 * checked against its scrypt hash. The whole token is shown once and never stored.
 */
export class TokenService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly hasher: SecretHasher,
  ) {}

  async create(name: string, scopes: readonly string[], actor: string): Promise<{ id: number; token: string; scopes: TokenScope[] }> {
    const trimmed = name.trim();
    if (!trimmed) throw new RosterdockError("ERR_INVALID_ARGUMENT", "A token needs a name, e.g. --name lms-sync.");
    const normalised = normaliseScopes(scopes);
    const { id, token } = await this.insert({ name: trimmed, scopes: normalised });
    await this.audit.record({ actor, action: "token.created", details: { id, name: trimmed, scopes: normalised } });
    return { id, token, scopes: normalised };
  }

  /** A short-lived token for an OAuth client. */
  async issueAccessToken(input: { name: string; scopes: TokenScope[]; clientId: number; districts: string[] | undefined; expiresAt: string; lane?: string }): Promise<string> {
    return (await this.insert(input)).token;
  }

  private async insert(input: { name: string; scopes: TokenScope[]; clientId?: number; districts?: string[] | undefined; expiresAt?: string; lane?: string }) {
    const lookup = randomToken(9);
    const secret = randomToken(32);
    const row = await this.db
      .insertInto("api_tokens")
      .values({
        name: input.name,
        lookup,
        secret_hash: await this.hasher.hash(secret, input.lane),
        scopes: JSON.stringify(input.scopes),
        created_at: isoNow(this.clock),
        last_used_at: null,
        revoked_at: null,
        expires_at: input.expiresAt ?? null,
        client_id: input.clientId ?? null,
        districts: input.districts ? JSON.stringify(input.districts) : null,
      })
      .returning("id")
      .executeTakeFirstOrThrow();
    return { id: row.id, token: `rdk_${lookup}_${secret}` };
  }

  /** Operators' tokens, oldest first (OAuth clients' short-lived access tokens are not listed). */
  async list(options: { includeRevoked?: boolean } = {}): Promise<TokenView[]> {
    let query = this.db.selectFrom("api_tokens").select(["id", "name", "scopes", "created_at", "revoked_at"]).where("client_id", "is", null).orderBy("id");
    if (!options.includeRevoked) query = query.where("revoked_at", "is", null);
    return (await query.execute()).map(tokenView);
  }

  /**
   * Revokes an operator's token by id or, failing that, by name (which must then be unambiguous
   * among working tokens). Revoking a revoked token changes nothing and says when it was revoked.
   */
  async revoke(idOrName: string, actor: string): Promise<TokenView & { alreadyRevoked: boolean }> {
    const wanted = idOrName.trim();
    const columns = ["id", "name", "scopes", "created_at", "revoked_at"] as const;
    const operators = this.db.selectFrom("api_tokens").select(columns).where("client_id", "is", null);
    let row = /^\d+$/.test(wanted) ? await operators.where("id", "=", Number(wanted)).executeTakeFirst() : undefined;
    if (!row) {
      const named = await operators.where("name", "=", wanted).orderBy("id").execute();
      const working = named.filter((r) => r.revoked_at === null);
      if (working.length > 1) {
        throw new RosterdockError("ERR_INVALID_ARGUMENT", `${working.length} tokens are named "${wanted}" (ids ${working.map((r) => r.id).join(", ")}): revoke one by its id.`, {
          ids: working.map((r) => r.id),
        });
      }
      row = working[0] ?? named.at(-1);
    }
    if (!row) throw new RosterdockError("ERR_TOKEN_NOT_FOUND", `No API token has the id or name "${wanted}"; \`rosterdock token list\` shows them.`, { token: wanted });
    if (row.revoked_at !== null) return { ...tokenView(row), alreadyRevoked: true };
    const now = isoNow(this.clock);
    await this.db.updateTable("api_tokens").set({ revoked_at: now }).where("id", "=", row.id).where("revoked_at", "is", null).execute();
    await this.audit.record({ actor, action: "token.revoked", details: { id: row.id, name: row.name } });
    return { ...tokenView({ ...row, revoked_at: now }), alreadyRevoked: false };
  }

  /**
   * Whether a token verified earlier still works: one lookup by primary key, so a token revoked
   * by another process (the CLI) stops working at the next request, without a new scrypt check.
   */
  async stillValid(id: number): Promise<boolean> {
    const row = await this.db.selectFrom("api_tokens").select(["revoked_at", "expires_at"]).where("id", "=", id).executeTakeFirst();
    return row !== undefined && row.revoked_at === null && (row.expires_at === null || row.expires_at > isoNow(this.clock));
  }

  /** The defender's account for a token: its lookup part, which is not secret. */
  static account(token: string): string {
    const match = TOKEN_FORMAT.exec(token);
    return match ? `token:${match[1]}` : "token:malformed";
  }

  /** `lane`: who asks (the client's address), so one client's flood of checks cannot delay others'. */
  async verify(token: string, lane?: string): Promise<VerifiedToken | undefined> {
    const match = TOKEN_FORMAT.exec(token);
    if (!match) return undefined;
    const row = await this.db.selectFrom("api_tokens").selectAll().where("lookup", "=", match[1]!).where("revoked_at", "is", null).executeTakeFirst();
    if (!row || !(await this.hasher.verify(match[2]!, row.secret_hash, lane))) return undefined;
    if (row.expires_at !== null && row.expires_at <= isoNow(this.clock)) return undefined;
    return {
      id: row.id,
      name: row.name,
      scopes: JSON.parse(row.scopes) as TokenScope[],
      districts: row.districts ? (JSON.parse(row.districts) as string[]) : undefined,
      expiresAt: row.expires_at,
    };
  }
}

function tokenView(row: { id: number; name: string; scopes: string; created_at: string; revoked_at: string | null }): TokenView {
  return { id: row.id, name: row.name, scopes: JSON.parse(row.scopes) as TokenScope[], createdAt: row.created_at, revokedAt: row.revoked_at };
}
