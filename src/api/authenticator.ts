import { createHash } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { RosterdockError } from "../errors.ts";
import { TokenService, type TokenScope } from "../tokens/token-service.ts";
import { scopeAllows } from "../tokens/token-scopes.ts";
import type { Defender } from "../security/defender.ts";

export interface Principal {
  name: string;
  scopes: readonly TokenScope[];
  /** Districts the caller may read; undefined = every district. */
  districts: readonly string[] | undefined;
}

const CACHE_MS = 60_000;
const CACHE_MAX = 10_000;

/** Failed bearer-token checks per address (the HTTP app passes @fastify/rate-limit's counter). */
export interface FailureLimit {
  /** Whether the address has used up its failures for now. */
  exhausted(request: FastifyRequest): Promise<boolean>;
  count(request: FastifyRequest): Promise<void>;
}

/**
 * Checks bearer tokens. A token's scrypt check costs tens of milliseconds, so a verified token is
 * remembered (by its SHA-256, never in clear) for a minute; each request still looks its row up by
 * id, so a revocation (from the CLI, another process) takes effect at once.
 * A check that is not in that memory goes through the defender, like an SSH login: a failure
 * counts against the address (and the token's lookup part as its account), and a banned or
 * exhausted address is answered 429 before any hashing. A bad token repeated from memory costs
 * nothing and is not counted: an app retrying with its expired token is not guessing.
 */
export class Authenticator {
  private readonly cache = new Map<string, { principal: Principal | undefined; tokenId: number | undefined; until: number }>();

  constructor(
    private readonly tokens: TokenService,
    private readonly defender: Defender,
    private readonly failureLimit?: FailureLimit,
  ) {}

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
      const verified = await this.check(request, token);
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

  private async check(request: FastifyRequest, token: string) {
    const account = TokenService.account(token);
    const started = this.defender.begin(request.ip, account, "http");
    if (!started.ok) {
      request.log.warn({ event: "http.auth.refused", ip: request.ip, account, reason: started.refusal.reason }, "bearer token refused without a check");
      throw new RosterdockError("ERR_TOO_MANY_ATTEMPTS", undefined, { retryAfterSeconds: started.refusal.retryAfterSeconds });
    }
    const { attempt } = started;
    let verified;
    try {
      if (await this.failureLimit?.exhausted(request)) {
        request.log.warn({ event: "http.auth.refused", ip: request.ip, account, reason: "rate_limited" }, "bearer token refused without a check");
        throw new RosterdockError("ERR_TOO_MANY_ATTEMPTS", "Too many failed bearer tokens from this address; wait a minute.", { retryAfterSeconds: 60 });
      }
      verified = await this.tokens.verify(token, request.ip);
    } catch (error) {
      attempt.release();
      throw error;
    }
    if (verified) {
      attempt.succeed();
      return verified;
    }
    attempt.fail("bad_token");
    await this.failureLimit?.count(request);
    request.log.warn({ event: "http.auth.failed", ip: request.ip, account, reason: "bad_token" }, "bearer token refused");
    return undefined;
  }

  /**
   * `admin` includes every scope for every district, `roster.readonly` both `roster-core.readonly`
   * and `roster-demographics.readonly`.
   */
  async require(request: FastifyRequest, scope: TokenScope, district?: string): Promise<Principal> {
    const principal = await this.principal(request);
    if (!scopeAllows(principal.scopes, scope)) throw new RosterdockError("ERR_FORBIDDEN", `This token lacks the ${scope} scope.`);
    if (district !== undefined && principal.districts !== undefined && !principal.districts.includes(district)) {
      throw new RosterdockError("ERR_FORBIDDEN", `This token cannot read district ${district}.`);
    }
    return principal;
  }
}
