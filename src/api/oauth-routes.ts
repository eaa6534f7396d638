import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Rosterdock } from "../service.ts";
import { RosterdockError } from "../errors.ts";
import { addressKey } from "../security/address-key.ts";
import { splitScopeParameter } from "../tokens/token-scopes.ts";
import { toRosterdockError } from "./http-errors.ts";

const TokenRequest = z.object({
  grant_type: z.literal("client_credentials"),
  client_id: z.string().optional().describe("With client_secret, when the credentials are not sent by HTTP Basic"),
  client_secret: z.string().optional(),
  scope: z
    .string()
    .optional()
    .describe(
      "Space-separated: roster.readonly, roster-core.readonly, roster-demographics.readonly (or https://purl.imsglobal.org/spec/or/v1p2/scope/… and v1p1 URIs), admin. Granted: those the client may have; absent: all of them",
    ),
});
const TokenResponse = z.object({ access_token: z.string(), token_type: z.literal("Bearer"), expires_in: z.number().int(), scope: z.string() });
const OAuthError = z.object({ error: z.string(), error_description: z.string() });

/** The RFC 6749 §5.2 error codes a refused request gets (a throttled, busy or failing server answers temporarily_unavailable or server_error). */
type OAuthErrorCode = "invalid_request" | "invalid_client" | "unsupported_grant_type" | "invalid_scope";

const PARAMETERS = ["grant_type", "client_id", "client_secret", "scope"] as const;
type Parameters = Partial<Record<(typeof PARAMETERS)[number], string>>;

/** A refusal of the token request, answered as RFC 6749 §5.2 says rather than with the admin API's error body. */
class OAuthRefusal extends Error {
  constructor(
    readonly status: 400 | 401,
    readonly error: OAuthErrorCode,
    description: string,
  ) {
    super(description);
  }
}

const invalidRequest = (description: string) => new OAuthRefusal(400, "invalid_request", description);
const invalidClient = (description: string) => new OAuthRefusal(401, "invalid_client", description);

/**
 * OAuth 2.0 client credentials (RFC 6749 §4.4), as OneRoster's security binding uses them:
 * credentials by HTTP Basic or in the form body, OneRoster's scope URIs or our short names.
 * Every answer, refusals included, is `no-store` JSON; a refusal is `{error, error_description}`
 * (§5.2), never the admin API's error body, whatever went wrong (content type, body, rate limit).
 * Each address may ask ROSTERDOCK_AUTH_RATE_PER_MINUTE times a minute, and every wrong secret
 * counts with the defender (the client id as the account), like a failed SSH login.
 */
export async function registerOAuthRoutes(app: FastifyInstance, rd: Rosterdock): Promise<void> {
  await app.register(async (scoped) => {
    scoped.setErrorHandler((error: FastifyError | OAuthRefusal, request, reply) => sendRefusal(error, request, reply));
    scoped.post(
      "/oauth/token",
      {
        schema: {
          tags: ["oauth"],
          summary: "Exchange a client id and secret for a short-lived bearer token (client credentials grant)",
          description: "`application/x-www-form-urlencoded` (or JSON). Refusals follow RFC 6749 §5.2: `invalid_request`, `invalid_client`, `invalid_scope`, `unsupported_grant_type`.",
          security: [],
          body: TokenRequest,
          response: { 200: TokenResponse, 400: OAuthError, 401: OAuthError, 429: OAuthError, 503: OAuthError },
        },
        // The schema documents the request; the handler reads it, so that each refusal is an OAuth one.
        validatorCompiler: () => (value: unknown) => ({ value }),
        config: { rateLimit: { max: rd.config.authRatePerMinute, timeWindow: 60_000, keyGenerator: (request: { ip: string }) => addressKey(request.ip) } },
      },
      async (request, reply) => {
        reply.header("cache-control", "no-store").header("pragma", "no-cache");
        const parameters = readParameters(request.body);
        if (parameters.grant_type === undefined) throw invalidRequest("grant_type is missing; send grant_type=client_credentials.");
        if (parameters.grant_type !== "client_credentials") throw new OAuthRefusal(400, "unsupported_grant_type", "Only grant_type=client_credentials is supported.");
        const scope = parameters.scope === undefined ? undefined : splitScopeParameter(parameters.scope);
        if (scope === undefined && parameters.scope !== undefined) throw new OAuthRefusal(400, "invalid_scope", "scope holds a character RFC 6749 §3.3 does not allow.");
        const { id, secret } = readCredentials(request.headers.authorization, parameters);

        const account = `client:${id}`;
        const started = rd.defender.begin(request.ip, account, "http");
        if (!started.ok) {
          const refused = rd.defender.refusalToLog(`oauth:${request.ip}`);
          if (refused !== undefined) request.log.warn({ event: "http.auth.refused", ip: request.ip, account, reason: started.refusal.reason, refused }, "client secrets refused without a check");
          throw new RosterdockError("ERR_TOO_MANY_ATTEMPTS", undefined, { retryAfterSeconds: started.refusal.retryAfterSeconds });
        }
        let issued: Awaited<ReturnType<typeof rd.clients.issueToken>>;
        try {
          issued = await rd.clients.issueToken(id, secret, scope, request.ip);
        } catch (error) {
          // A known client asking for a scope it lacks had the right secret: not a guess.
          started.attempt.release();
          throw error;
        }
        if (!issued) {
          started.attempt.fail("bad_secret");
          request.log.warn({ event: "http.auth.failed", ip: request.ip, account, reason: "bad_secret" }, "OAuth client secret refused");
          throw invalidClient("Unknown client or wrong secret.");
        }
        started.attempt.succeed();
        return issued;
      },
    );
    // The token endpoint takes POST only (§3.2); other methods are told so in OAuth's terms.
    scoped.route({
      method: ["GET", "PUT", "PATCH", "DELETE"],
      url: "/oauth/token",
      schema: { hide: true },
      handler: async (_request, reply) => {
        reply.code(405).header("allow", "POST").header("cache-control", "no-store").header("pragma", "no-cache");
        return { error: "invalid_request", error_description: "Request a token with POST." };
      },
    });
  });
}

/** The request's parameters: each at most once (§3.2), a parameter sent empty as if omitted, others ignored. */
function readParameters(body: unknown): Parameters {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw invalidRequest("The body must be application/x-www-form-urlencoded parameters.");
  const parameters: Parameters = {};
  for (const name of PARAMETERS) {
    const value = (body as Record<string, unknown>)[name];
    if (Array.isArray(value)) throw invalidRequest(`${name} is sent more than once.`);
    if (value === undefined || value === null || value === "") continue;
    if (typeof value !== "string") throw invalidRequest(`${name} must be a string.`);
    parameters[name] = value;
  }
  return parameters;
}

/**
 * The client's id and secret, from HTTP Basic (§2.3.1: each form-encoded, then base64) or from
 * the body, never both: one authentication method per request.
 */
function readCredentials(authorization: string | undefined, parameters: Parameters): { id: string; secret: string } {
  if (authorization !== undefined) {
    const basic = /^Basic(?:\s+(\S*))?\s*$/i.exec(authorization);
    if (!basic) throw invalidClient("Authenticate the client with HTTP Basic or client_id and client_secret in the body.");
    const credentials = decodeBasic(basic[1] ?? "");
    if (parameters.client_secret !== undefined) throw invalidRequest("Send the client's credentials by HTTP Basic or in the body, not both.");
    if (parameters.client_id !== undefined && parameters.client_id !== credentials.id) throw invalidRequest("client_id in the body differs from the HTTP Basic user name.");
    return credentials;
  }
  const { client_id: id, client_secret: secret } = parameters;
  if (id === undefined && secret === undefined) throw invalidClient("No client authentication: send HTTP Basic, or client_id and client_secret.");
  if (id === undefined) throw invalidRequest("client_id is missing.");
  if (secret === undefined) throw invalidRequest("client_secret is missing.");
  return { id, secret };
}

function decodeBasic(encoded: string): { id: string; secret: string } {
  const malformed = () => invalidRequest("The HTTP Basic credentials are malformed: base64 of the form-encoded client_id, a colon and the form-encoded secret.");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw malformed();
  const decoded = Buffer.from(encoded, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw malformed();
  let id: string;
  let secret: string;
  try {
    id = decodeURIComponent(decoded.slice(0, colon).replaceAll("+", " "));
    secret = decodeURIComponent(decoded.slice(colon + 1).replaceAll("+", " "));
  } catch {
    throw malformed();
  }
  if (id === "" || secret === "") throw malformed();
  return { id, secret };
}

/** Every refusal of /oauth/token as `{error, error_description}` with no-store, 429 and 503 included. */
function sendRefusal(error: FastifyError | OAuthRefusal, request: FastifyRequest, reply: FastifyReply) {
  reply.header("cache-control", "no-store").header("pragma", "no-cache");
  if (error instanceof OAuthRefusal) {
    if (error.status === 401) reply.header("www-authenticate", 'Basic realm="rosterdock"');
    return reply.code(error.status).send({ error: error.error, error_description: error.message });
  }
  const mapped = toRosterdockError(error);
  const retryAfter = mapped.details?.retryAfterSeconds;
  if (typeof retryAfter === "number") reply.header("retry-after", String(retryAfter));
  switch (mapped.category) {
    case "throttled":
      return reply.code(429).send({ error: "temporarily_unavailable", error_description: mapped.message });
    case "unavailable":
      return reply.code(503).send({ error: "temporarily_unavailable", error_description: mapped.message });
    case "internal":
      request.log.error({ err: error }, "request failed");
      return reply.code(500).send({ error: "server_error", error_description: mapped.message });
    default: {
      if (mapped.code === "ERR_INVALID_SCOPE") return reply.code(400).send({ error: "invalid_scope", error_description: mapped.message });
      // Fastify's own refusals: an unsupported content type, a body that does not parse or is too large.
      const code = (error as FastifyError).code ?? "";
      const description = code.startsWith("FST_ERR_CTP_")
        ? `The body must be application/x-www-form-urlencoded parameters (or a JSON object): ${error.message}`
        : mapped.message;
      return reply.code(400).send({ error: "invalid_request", error_description: description });
    }
  }
}
