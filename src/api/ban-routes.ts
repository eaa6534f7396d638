import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Rosterdock } from "../service.ts";
import { apiErrors } from "./api-schemas.ts";

export const BanSchema = z.object({
  address: z.string().describe("An IPv4 address, or an IPv6 /64"),
  account: z.string().nullable().describe("The account guessed at (an SFTP username, `client:ID` or `token:LOOKUP`); null when the address is banned for every account"),
  reason: z.string(),
  failures: z.number().int(),
  strikes: z.number().int().describe("Bans of this address (and account) in a row; each doubles the length, up to a day"),
  bannedAt: z.string(),
  bannedUntil: z.string(),
});
const AddressQuery = z.object({ address: z.string().optional().describe("Only this address (an IPv6 address stands for its /64)") });

/** `/api/v1/bans`: what `rosterdock bans list|clear` does. Scope `admin` (checked by the admin routes' hook). */
export function registerBanRoutes(app: FastifyInstance, rd: Rosterdock): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  api.get(
    "/api/v1/bans",
    { schema: { tags: ["security"], summary: "Addresses banned after failed logins, now in force", querystring: AddressQuery, response: { 200: z.array(BanSchema), ...apiErrors } } },
    async (request) => rd.defender.list(request.query.address),
  );
  api.delete(
    "/api/v1/bans",
    {
      schema: {
        tags: ["security"],
        summary: "Lift bans (every one, or one address's) and forget the failures behind them",
        querystring: AddressQuery,
        response: { 200: z.object({ lifted: z.number().int() }), ...apiErrors },
      },
    },
    async (request) => ({ lifted: await rd.defender.clear(request.query.address, `api:${request.principal?.name ?? "unknown"}`) }),
  );
}
