import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Rosterdock } from "../service.ts";
import { RosterdockError } from "../errors.ts";
import { addressKey } from "../security/address-key.ts";
import { ErrorSchema } from "./api-schemas.ts";

const TokenResponse = z.object({ access_token: z.string(), token_type: z.literal("Bearer"), expires_in: z.number().int(), scope: z.string() });
const OAuthError = z.object({ error: z.string(), error_description: z.string() });

/**
 * OAuth 2.0 client credentials (RFC 6749 §4.4): credentials by HTTP Basic or in the form body.
 * Each address may ask ROSTERDOCK_AUTH_RATE_PER_MINUTE times a minute, and every wrong secret
 * counts with the defender (the client id as the account), like a failed SSH login.
 */
export function registerOAuthRoutes(app: FastifyInstance, rd: Rosterdock): void {
  app.withTypeProvider<ZodTypeProvider>().post(
    "/oauth/token",
    {
      schema: {
        tags: ["oauth"],
        summary: "Exchange a client id and secret for a short-lived bearer token",
        security: [],
        body: z.object({ grant_type: z.string(), client_id: z.string().optional(), client_secret: z.string().optional(), scope: z.string().optional() }),
        response: { 200: TokenResponse, 400: OAuthError, 401: OAuthError, 429: ErrorSchema, 503: ErrorSchema },
      },
      config: { rateLimit: { max: rd.config.authRatePerMinute, timeWindow: 60_000, keyGenerator: (request: { ip: string }) => addressKey(request.ip) } },
    },
    async (request, reply) => {
      reply.header("cache-control", "no-store");
      if (request.body.grant_type !== "client_credentials") {
        return reply.code(400).send({ error: "unsupported_grant_type", error_description: "Only grant_type=client_credentials is supported." });
      }
      let id = request.body.client_id;
      let secret = request.body.client_secret;
      const basic = /^Basic\s+(\S+)$/i.exec(request.headers.authorization ?? "");
      if (basic) {
        const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        id = decodeURIComponent(decoded.slice(0, colon));
        secret = decodeURIComponent(decoded.slice(colon + 1));
      }
      let issued: Awaited<ReturnType<typeof rd.clients.issueToken>>;
      if (id && secret) {
        const account = `client:${id}`;
        const started = rd.defender.begin(request.ip, account, "http");
        if (!started.ok) {
          const refused = rd.defender.refusalToLog(`oauth:${request.ip}`);
          if (refused !== undefined) request.log.warn({ event: "http.auth.refused", ip: request.ip, account, reason: started.refusal.reason, refused }, "client secrets refused without a check");
          throw new RosterdockError("ERR_TOO_MANY_ATTEMPTS", undefined, { retryAfterSeconds: started.refusal.retryAfterSeconds });
        }
        try {
          issued = await rd.clients.issueToken(id, secret, request.body.scope, request.ip);
        } catch (error) {
          // A known client asking for a scope it lacks had the right secret: not a guess.
          started.attempt.release();
          throw error;
        }
        if (issued) started.attempt.succeed();
        else {
          started.attempt.fail("bad_secret");
          request.log.warn({ event: "http.auth.failed", ip: request.ip, account, reason: "bad_secret" }, "OAuth client secret refused");
        }
      }
      if (!issued) {
        reply.header("www-authenticate", 'Basic realm="rosterdock"');
        return reply.code(401).send({ error: "invalid_client", error_description: "Unknown client or wrong secret." });
      }
      return issued;
    },
  );
}
