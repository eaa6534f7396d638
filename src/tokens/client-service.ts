import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import type { DistrictService } from "../districts/district-service.ts";
import { RosterdockError } from "../errors.ts";
import { randomToken } from "../security/secrets.ts";
import type { SecretHasher } from "../security/hash-pool.ts";
import type { TokenScope, TokenService } from "./token-service.ts";
import { grantScopes, normaliseScopes } from "./token-scopes.ts";

export const ACCESS_TOKEN_SECONDS = 3600;

/** OAuth 2.0 client credentials for vendor apps: a client id and secret exchanged for short-lived bearer tokens. */
export class ClientService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly tokens: TokenService,
    private readonly districts: DistrictService,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly hasher: SecretHasher,
  ) {}

  /** `scopes`: short names or OneRoster scope URIs, stored as short names; none means `roster.readonly` (core and demographics). */
  async create(input: { name: string; scopes: string[]; districts?: string[] }, actor: string): Promise<{ clientId: string; clientSecret: string; scopes: TokenScope[] }> {
    const name = input.name.trim();
    if (!name) throw new RosterdockError("ERR_INVALID_ARGUMENT", "A client needs a name, e.g. --name gradebook.");
    const scopes = input.scopes.length ? normaliseScopes(input.scopes) : (["roster.readonly"] satisfies TokenScope[]);
    for (const slug of input.districts ?? []) await this.districts.requireRow(slug);
    const clientId = `rdc_${randomToken(12)}`;
    const clientSecret = randomToken(32);
    await this.db
      .insertInto("oauth_clients")
      .values({
        client_id: clientId,
        secret_hash: await this.hasher.hash(clientSecret),
        name,
        scopes: JSON.stringify(scopes),
        districts: input.districts?.length ? JSON.stringify(input.districts) : null,
        created_at: isoNow(this.clock),
        revoked_at: null,
      })
      .execute();
    await this.audit.record({ actor, action: "client.created", details: { clientId, name, scopes, districts: input.districts ?? null } });
    return { clientId, clientSecret, scopes };
  }

  /**
   * The client-credentials grant. Returns undefined for a wrong id or secret (the caller answers
   * invalid_client). `requestedScope`, the words of the `scope` parameter, is intersected with the
   * client's scopes (all of them when absent); ERR_INVALID_SCOPE when nothing is left.
   */
  async issueToken(clientId: string, clientSecret: string, requestedScope?: readonly string[], lane?: string) {
    const client = await this.db.selectFrom("oauth_clients").selectAll().where("client_id", "=", clientId).where("revoked_at", "is", null).executeTakeFirst();
    if (!client || !(await this.hasher.verify(clientSecret, client.secret_hash, lane))) return undefined;
    const allowed = JSON.parse(client.scopes) as TokenScope[];
    const grant = requestedScope?.length ? grantScopes(requestedScope, allowed) : { scopes: allowed, scope: allowed.join(" ") };
    if (grant === undefined) {
      throw new RosterdockError("ERR_INVALID_SCOPE", `This client may request only ${allowed.join(" ")} (or their OneRoster scope URIs); asked for ${requestedScope!.join(" ")}.`);
    }
    const expiresAt = new Date(this.clock.now().getTime() + ACCESS_TOKEN_SECONDS * 1000).toISOString();
    const issued = await this.tokens.issueAccessToken({
      name: client.name,
      scopes: grant.scopes,
      clientId: client.id,
      districts: client.districts ? (JSON.parse(client.districts) as string[]) : undefined,
      expiresAt,
      lane,
    });
    return { access_token: issued, token_type: "Bearer" as const, expires_in: ACCESS_TOKEN_SECONDS, scope: grant.scope };
  }
}
