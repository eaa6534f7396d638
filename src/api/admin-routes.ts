import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Rosterdock } from "../service.ts";
import type { Authenticator } from "./authenticator.ts";
import { connectionDetails, credentialsView } from "../districts/connection-details.ts";
import { DATE_FORMAT_SETTINGS } from "../intake/date-format.ts";
import { DEFAULT_TOKEN_SCOPES, TOKEN_SCOPES } from "../tokens/token-service.ts";
import { apiErrors } from "./api-schemas.ts";
import { CHANGE_FEED_PATH } from "./change-feed-routes.ts";

const errors = apiErrors;

const HostKeySchema = z.object({ algorithm: z.string(), sha256: z.string(), md5: z.string() });
const SafeguardsSchema = z.object({
  deletePercent: z.number().optional(),
  deleteMinRows: z.number().optional(),
  changePercent: z.number().optional(),
  changeMinRows: z.number().optional(),
});
const DistrictSchema = z.object({
  id: z.number().int(),
  slug: z.string(),
  name: z.string(),
  status: z.enum(["active", "disabled"]),
  allowIps: z.array(z.string()),
  sftpUsername: z.string(),
  safeguards: SafeguardsSchema.describe("The district's own hold thresholds; unset ones follow the server's"),
  dateFormat: z.enum(DATE_FORMAT_SETTINGS).describe("How the district's dates are read: auto (each date column as its values show), mdy or dmy"),
  createdAt: z.string(),
});
const UnderAttackSchema = z
  .object({ since: z.string(), until: z.string(), addresses: z.array(z.string()), failures: z.number().int() })
  .nullable()
  .describe("Set while the district's account is banned from some addresses after repeated failed logins (`rosterdock bans list`)");
const DistrictDetailSchema = DistrictSchema.extend({ underAttack: UnderAttackSchema });
const CredentialsSchema = z.object({
  slug: z.string(),
  name: z.string(),
  sftp: z.object({
    host: z.string(),
    port: z.number().int(),
    username: z.string(),
    password: z.string(),
    source: z.enum(["server", "environment"]).describe("`server`: host and port as the server published them when it started; `environment`: its configuration"),
  }),
  hostKeys: z.array(HostKeySchema),
  credentialsLink: z.string().describe("One-time link (`/handoff/<token>`) that shows the district these credentials once; give it instead of the password"),
  credentialsLinkExpiresAt: z.string(),
});
const CountsSchema = z.object({ created: z.number(), updated: z.number(), deleted: z.number(), unchanged: z.number(), kept: z.number().optional() });
export const SyncSchema = z.object({
  id: z.number().int(),
  status: z.enum(["waiting", "processing", "applied", "held", "failed", "discarded", "rolled_back"]),
  createdAt: z.string(),
  files: z.array(z.object({ name: z.string(), size: z.number(), sha256: z.string() })),
  counts: z.record(z.string(), CountsSchema),
  issues: z.array(z.unknown()),
});
const TokenSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  scopes: z.array(z.enum(TOKEN_SCOPES)),
  createdAt: z.string(),
  revokedAt: z.string().nullable().describe("Null while the token works"),
});
const SlugParams = z.object({ slug: z.string().describe("The district's slug") });

/** `/api/v1`: what the CLI does, for operators' scripts and the console. Scope `admin`. */
export function registerAdminRoutes(app: FastifyInstance, rd: Rosterdock, auth: Authenticator): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const actor = (name: string) => `api:${name}`;
  app.addHook("onRequest", async (request) => {
    const selfAuthorised = request.url.startsWith("/api/v1/openapi.json") || request.url.startsWith("/api/v1/docs") || CHANGE_FEED_PATH.test(request.url);
    if (request.url.startsWith("/api/v1/") && !selfAuthorised) {
      request.principal = await auth.require(request, "admin");
    }
  });

  api.get("/api/v1/districts", { schema: { tags: ["districts"], summary: "List districts", response: { 200: z.array(DistrictSchema), ...errors } } }, async () => rd.districts.list());

  api.post(
    "/api/v1/districts",
    {
      schema: {
        tags: ["districts"],
        summary: "Create a district with its SFTP account; the password is in this response only",
        body: z.object({ slug: z.string(), name: z.string(), allowIps: z.array(z.string()).optional() }),
        response: { 201: CredentialsSchema, ...errors },
      },
    },
    async (request, reply) => {
      const created = await rd.districts.create(request.body, actor(request.principal!.name));
      const address = await rd.settings.address(rd.config);
      return reply.code(201).send(credentialsView(created, connectionDetails(address, await rd.hostKeys()), address.publicUrl));
    },
  );

  api.get(
    "/api/v1/districts/:slug",
    { schema: { tags: ["districts"], summary: "Show a district, and whether its account is under attack", params: SlugParams, response: { 200: DistrictDetailSchema, ...errors } } },
    async (request) => {
      const district = await rd.districts.show(request.params.slug);
      return { ...district, underAttack: await rd.defender.underAttack(district.sftpUsername) };
    },
  );

  api.patch(
    "/api/v1/districts/:slug",
    {
      schema: {
        tags: ["districts"],
        summary: "Change a district's name, SFTP allow-list, safeguard thresholds (null clears one) or date format",
        params: SlugParams,
        body: z.object({
          name: z.string().optional(),
          allowIps: z.array(z.string()).optional(),
          safeguards: z
            .object({
              deletePercent: z.number().int().nullable().optional(),
              deleteMinRows: z.number().int().nullable().optional(),
              changePercent: z.number().int().nullable().optional(),
              changeMinRows: z.number().int().nullable().optional(),
            })
            .optional(),
          dateFormat: z.enum(DATE_FORMAT_SETTINGS).optional(),
        }),
        response: { 200: DistrictSchema, ...errors },
      },
    },
    async (request) => {
      const { safeguards, dateFormat, ...changes } = request.body;
      const by = actor(request.principal!.name);
      if (safeguards) await rd.districts.setSafeguards(request.params.slug, safeguards, by);
      if (dateFormat) await rd.districts.setDateFormat(request.params.slug, dateFormat, by);
      return changes.name !== undefined || changes.allowIps !== undefined ? rd.districts.update(request.params.slug, changes, by) : rd.districts.show(request.params.slug);
    },
  );

  api.post(
    "/api/v1/districts/:slug/rotate-password",
    { schema: { tags: ["districts"], summary: "Replace the SFTP password; the new one is in this response only", params: SlugParams, response: { 200: CredentialsSchema, ...errors } } },
    async (request) => {
      const rotated = await rd.districts.rotatePassword(request.params.slug, actor(request.principal!.name));
      const address = await rd.settings.address(rd.config);
      return credentialsView(rotated, connectionDetails(address, await rd.hostKeys()), address.publicUrl);
    },
  );

  api.post(
    "/api/v1/districts/:slug/new-link",
    {
      schema: {
        tags: ["districts"],
        summary: "A new one-time credentials link with a new SFTP password (the old password and link stop working); the password is not in the response",
        params: SlugParams,
        response: { 200: CredentialsSchema.extend({ sftp: CredentialsSchema.shape.sftp.omit({ password: true }) }), ...errors },
      },
    },
    async (request) => {
      const rotated = await rd.districts.rotatePassword(request.params.slug, actor(request.principal!.name), "new-link");
      const address = await rd.settings.address(rd.config);
      const { sftp: { password: _password, ...sftp }, ...view } = credentialsView(rotated, connectionDetails(address, await rd.hostKeys()), address.publicUrl);
      return { ...view, sftp };
    },
  );

  api.post(
    "/api/v1/districts/:slug/revoke-link",
    {
      schema: {
        tags: ["districts"],
        summary: "End the district's one-time credentials link if it has not been used; the password keeps working",
        params: SlugParams,
        response: { 200: z.object({ slug: z.string(), revoked: z.number().int().describe("Links ended: 0 when none could still be used") }), ...errors },
      },
    },
    async (request) => {
      const { district, revoked } = await rd.districts.revokeCredentialsLink(request.params.slug, actor(request.principal!.name));
      return { slug: district.slug, revoked };
    },
  );

  api.post(
    "/api/v1/districts/:slug/disable",
    { schema: { tags: ["districts"], summary: "Refuse the district's SFTP logins", params: SlugParams, response: { 200: DistrictSchema, ...errors } } },
    async (request) => rd.districts.disable(request.params.slug, actor(request.principal!.name)),
  );

  api.get(
    "/api/v1/districts/:slug/syncs",
    { schema: { tags: ["syncs"], summary: "The district's syncs, newest first (as `rosterdock syncs SLUG --json`)", params: SlugParams, querystring: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }), response: { 200: z.array(SyncSchema), ...errors } } },
    async (request) => rd.syncs.list(request.params.slug, request.query.limit),
  );

  api.get("/api/v1/host-keys", { schema: { tags: ["server"], summary: "Host-key fingerprints districts accept once", response: { 200: z.array(HostKeySchema), ...errors } } }, async () =>
    (await rd.hostKeys()).map((k) => ({ algorithm: k.algorithm, sha256: k.sha256, md5: k.md5 })),
  );

  api.post(
    "/api/v1/tokens",
    {
      schema: {
        tags: ["tokens"],
        summary: "Create an API token; it is in this response only",
        body: z.object({
          name: z.string(),
          scopes: z
            .array(z.enum(TOKEN_SCOPES))
            .default([...DEFAULT_TOKEN_SCOPES])
            .describe(`Default ${DEFAULT_TOKEN_SCOPES.join(", ")}; ask for admin explicitly`),
        }),
        response: { 201: z.object({ id: z.number().int(), name: z.string(), scopes: z.array(z.enum(TOKEN_SCOPES)), token: z.string() }), ...errors },
      },
    },
    async (request, reply) => {
      const created = await rd.tokens.create(request.body.name, request.body.scopes, actor(request.principal!.name));
      return reply.code(201).send({ id: created.id, name: request.body.name.trim(), scopes: created.scopes, token: created.token });
    },
  );

  api.get(
    "/api/v1/tokens",
    {
      schema: {
        tags: ["tokens"],
        summary: "Operators' API tokens (as `rosterdock token list --json`); never the tokens themselves",
        querystring: z.object({ all: z.enum(["true", "false"]).default("false").describe("`true` includes revoked tokens") }),
        response: { 200: z.array(TokenSchema), ...errors },
      },
    },
    async (request) => rd.tokens.list({ includeRevoked: request.query.all === "true" }),
  );

  api.delete(
    "/api/v1/tokens/:token",
    {
      schema: {
        tags: ["tokens"],
        summary: "Revoke an API token by id or name; it stops working at once",
        params: z.object({ token: z.string().describe("The token's id or name") }),
        response: { 200: TokenSchema.extend({ alreadyRevoked: z.boolean() }), ...errors },
      },
    },
    async (request) => rd.tokens.revoke(request.params.token, actor(request.principal!.name)),
  );
}
