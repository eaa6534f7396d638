import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RouteOptions } from "fastify";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from "fastify-type-provider-zod";
import { sql } from "../db/kysely.ts";
import type { Rosterdock } from "../service.ts";
import { Authenticator, type Principal } from "./authenticator.ts";
import { registerAdminRoutes } from "./admin-routes.ts";
import { registerGuideRoutes } from "./guide-routes.ts";
import { registerErrorHandler } from "./http-errors.ts";
import fastifyFormbody from "@fastify/formbody";
import fastifyRateLimit from "@fastify/rate-limit";
import { RosterdockError } from "../errors.ts";
import { addressKey } from "../security/address-key.ts";
import { registerBanRoutes } from "./ban-routes.ts";
import { registerHandoffRoutes } from "./handoff-routes.ts";
import { registerOAuthRoutes } from "./oauth-routes.ts";
import { registerWebhookAndClientRoutes } from "./webhook-routes.ts";
import { registerSyncRoutes, type SyncRunner } from "./sync-routes.ts";
import { registerChangeFeedRoutes } from "./change-feed-routes.ts";
import { registerOneRosterRoutes } from "./oneroster/oneroster-routes.ts";
import { registerOneRosterV1p1Routes } from "./oneroster/v1p1/oneroster-v1p1-routes.ts";
import { RosterReader } from "./oneroster/roster-reader.ts";
import { registerConsole } from "../console/console-app.ts";

declare module "fastify" {
  interface FastifyRequest {
    principal?: Principal;
  }
}

export interface HttpAppOptions {
  /** Reports whether the SFTP front end is accepting connections. */
  sftpListening: () => boolean;
  /** SFTP connection counts and descriptor use, shown by /healthz; absent in tests without SFTP. */
  sftpReport?: () => Record<string, unknown>;
  /** Runs heavy sync operations; the server passes its sync thread, tests may use the services directly. */
  syncRunner?: SyncRunner;
  /** Sees every route as it is added (tests check the OpenAPI document against them). */
  onRoute?: (route: RouteOptions) => void;
}

/** Builds the HTTP app without listening, so tests can drive it with real requests or `inject`. */
export async function buildHttpApp(rd: Rosterdock, options: HttpAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: rd.logger.child({ component: "http" }) as FastifyBaseLogger,
    // One log line per request would drown the events operators watch; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
  });
  if (options.onRoute) app.addHook("onRoute", options.onRoute);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);
  app.decorateRequest("principal", undefined);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.0.3",
      info: { title: "Rosterdock API", version: "1", description: "Administer districts and syncs. Authenticate with `Authorization: Bearer <token>` (`rosterdock token create`)." },
      servers: [{ url: rd.config.publicUrl }],
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/api/v1/docs" });
  app.get("/api/v1/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  app.get("/healthz", { schema: { hide: true } }, async (_request, reply) => {
    let database = "ok";
    try {
      await sql`select 1`.execute(rd.database.db);
    } catch {
      database = "unavailable";
    }
    const sftp = options.sftpListening() ? "ok" : "unavailable";
    const healthy = database === "ok" && sftp === "ok";
    // Counts are information, not health: a full cap means the limits are doing their work.
    return reply.code(healthy ? 200 : 503).send({ status: healthy ? "ok" : "degraded", database, sftp, ...options.sftpReport?.() });
  });

  await app.register(fastifyFormbody);
  // Only routes that ask for it (`/oauth/token`), and failed bearer tokens below: reading apps are not limited.
  await app.register(fastifyRateLimit, {
    global: false,
    keyGenerator: (request) => addressKey(request.ip),
    onExceeded: (request) => {
      const unlogged = rd.defender.refusalToLog(`rate:${request.ip}`);
      if (unlogged !== undefined) request.log.warn({ event: "http.rate_limited", ip: request.ip, url: request.url.split("?")[0], refused: unlogged }, "requests refused: too many from one address");
    },
    errorResponseBuilder: (_request, context) =>
      new RosterdockError("ERR_TOO_MANY_ATTEMPTS", `Too many requests from this address; retry in ${context.after}.`, { retryAfterSeconds: Math.ceil(context.ttl / 1000) }),
  });
  const bearerFailures = app.createRateLimit({ max: rd.config.authRatePerMinute, timeWindow: 60_000, keyGenerator: (request) => `bearer:${addressKey(request.ip)}` });
  const auth = new Authenticator(rd.tokens, rd.defender, {
    exhausted: async (request) => {
      const read = await bearerFailures(request, { increment: false });
      return !read.isAllowed && read.remaining === 0;
    },
    count: async (request) => void (await bearerFailures(request)),
  });
  await registerHandoffRoutes(app, rd);
  await registerOAuthRoutes(app, rd);
  registerAdminRoutes(app, rd, auth);
  registerGuideRoutes(app, rd);
  registerBanRoutes(app, rd);
  registerWebhookAndClientRoutes(app, rd);
  const syncRunner = options.syncRunner ?? { rollback: async (id: number, actor: string) => (await rd.syncs.rollback(id, actor)).changeset.changes };
  registerSyncRoutes(app, rd, syncRunner);
  // The operator console (`/`, `/sign-in`, `/districts/…`, `/syncs/…`): its cookies, sessions,
  // CSRF checks and security headers stay within its own routes.
  await registerConsole(app, { rd, runner: syncRunner });
  // Roster reads have their own read-only connection (SQLite) or pool (PostgreSQL).
  const reader = rd.database.sqlite !== undefined ? RosterReader.openSqlite(rd.database.sqlite.name) : await RosterReader.openPostgres(rd.config.databaseUrl!);
  app.addHook("onClose", async () => reader.close());
  const roster = { auth, reader, publicUrl: rd.config.publicUrl };
  registerChangeFeedRoutes(app, roster);
  await registerOneRosterRoutes(app, roster);
  await registerOneRosterV1p1Routes(app, roster);
  return app;
}
