import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Rosterdock } from "../service.ts";
import { WEBHOOK_EVENTS } from "../webhooks/webhook-service.ts";
import { ACCEPTED_SCOPE_NAMES, TOKEN_SCOPES } from "../tokens/token-scopes.ts";
import { apiErrors } from "./api-schemas.ts";

const Endpoint = z.object({ id: z.number().int(), url: z.string(), district: z.string().nullable(), events: z.array(z.enum(WEBHOOK_EVENTS)), createdAt: z.string(), disabled: z.boolean() });
const Delivery = z.object({
  id: z.number().int(),
  endpointId: z.number().int(),
  event: z.string(),
  status: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number().int(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const IdParams = z.object({ id: z.coerce.number().int() });

/** Webhook endpoints, their delivery log, and OAuth clients. Scope `admin`. */
export function registerWebhookAndClientRoutes(app: FastifyInstance, rd: Rosterdock): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const actor = (name?: string) => `api:${name ?? "unknown"}`;

  api.get("/api/v1/webhooks", { schema: { tags: ["webhooks"], summary: "Webhook endpoints", response: { 200: z.array(Endpoint), ...apiErrors } } }, async () => rd.webhooks.listEndpoints());

  api.post(
    "/api/v1/webhooks",
    {
      schema: {
        tags: ["webhooks"],
        summary: "Register an endpoint (global, or for one district); the signing secret is in this response only",
        body: z.object({ url: z.string(), district: z.string().optional(), events: z.array(z.enum(WEBHOOK_EVENTS)).optional() }),
        response: { 201: z.object({ endpoint: Endpoint, secret: z.string() }), ...apiErrors },
      },
    },
    async (request, reply) => reply.code(201).send(await rd.webhooks.addEndpoint(request.body, actor(request.principal?.name))),
  );

  api.delete("/api/v1/webhooks/:id", { schema: { tags: ["webhooks"], summary: "Stop sending to an endpoint", params: IdParams, response: { 204: z.null(), ...apiErrors } } }, async (request, reply) => {
    await rd.webhooks.removeEndpoint(request.params.id, actor(request.principal?.name));
    return reply.code(204).send(null);
  });

  api.get(
    "/api/v1/webhooks/deliveries",
    {
      schema: {
        tags: ["webhooks"],
        summary: "The delivery log, newest first",
        querystring: z.object({ endpointId: z.coerce.number().int().optional(), limit: z.coerce.number().int().min(1).max(1000).default(50) }),
        response: { 200: z.array(Delivery), ...apiErrors },
      },
    },
    async (request) => rd.webhooks.listDeliveries(request.query),
  );

  api.post(
    "/api/v1/webhooks/deliveries/:id/resend",
    { schema: { tags: ["webhooks"], summary: "Send a delivery again", params: IdParams, response: { 202: z.object({ queued: z.boolean() }), ...apiErrors } } },
    async (request, reply) => {
      await rd.webhooks.resend(request.params.id, actor(request.principal?.name));
      return reply.code(202).send({ queued: true });
    },
  );

  api.post(
    "/api/v1/clients",
    {
      schema: {
        tags: ["clients"],
        summary: "Create an OAuth client for an app; the secret is in this response only",
        body: z.object({
          name: z.string(),
          scopes: z
            .array(z.string())
            .default(["roster.readonly"])
            .describe(`${ACCEPTED_SCOPE_NAMES}; stored as short names. roster.readonly is core and demographics`),
          districts: z.array(z.string()).optional(),
        }),
        response: { 201: z.object({ clientId: z.string(), clientSecret: z.string(), scopes: z.array(z.enum(TOKEN_SCOPES)) }), ...apiErrors },
      },
    },
    async (request, reply) => reply.code(201).send(await rd.clients.create(request.body, actor(request.principal?.name))),
  );
}
