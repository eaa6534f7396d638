import { createHash } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { RosterdockError } from "../errors.ts";
import type { TokenScope, TokenService } from "../tokens/token-service.ts";

export interface Principal {
  name: string;
  scopes: readonly TokenScope[];
  /** Districts the caller may read; undefined = every district. */
  districts: readonly string[] | undefined;
}

const CACHE_MS = 60_000;
const CACHE_MAX = 10_000;

/**
 * Checks bearer tokens. A token's scrypt check costs tens of milliseconds, so a verified token is
 * remembered (by its SHA-256, never in clear) for a minute; each request still looks its row up by
 * id, so a revocation (from the CLI, another process) takes effect at once.
 */
export class Authenticator {
  private readonly cache = new Map<string, { principal: Principal | undefined; tokenId: number | undefined; until: number }>();

  constructor(private readonly tokens: TokenService) {}

  async principal(request: FastifyRequest): Promise<Principal> {
    const header = request.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new RosterdockError("ERR_UNAUTHENTICATED");
    const token = match[1]!;
    const key = createHash("sha256").update(token).digest("base64");
    const now = Date.now();
    let entry = this.cache.get(key);
    if (entry?.tokenId !== undefined && entry.until >= now && !(await this.tokens.stillValid(entry.tokenId))) {
      this.cache.delete(key);
      entry = undefined;
    }
    if (!entry || entry.until < now) {
      const verified = await this.tokens.verify(token);
      const expires = verified?.expiresAt ? Date.parse(verified.expiresAt) : Infinity;
      entry = {
        principal: verified ? { name: verified.name, scopes: verified.scopes, districts: verified.districts } : undefined,
        tokenId: verified?.id,
        until: Math.min(now + CACHE_MS, expires),
      };
      if (this.cache.size >= CACHE_MAX) this.cache.clear();
      this.cache.set(key, entry);
    }
    if (!entry.principal) throw new RosterdockError("ERR_UNAUTHENTICATED", "The bearer token is unknown, revoked or expired.");
    return entry.principal;
  }

  /** `admin` includes `roster.readonly` for every district. */
  async require(request: FastifyRequest, scope: TokenScope, district?: string): Promise<Principal> {
    const principal = await this.principal(request);
    const granted = principal.scopes.includes("admin") || principal.scopes.includes(scope);
    if (!granted) throw new RosterdockError("ERR_FORBIDDEN", `This token lacks the ${scope} scope.`);
    if (district !== undefined && principal.districts !== undefined && !principal.districts.includes(district)) {
      throw new RosterdockError("ERR_FORBIDDEN", `This token cannot read district ${district}.`);
    }
    return principal;
  }
}
