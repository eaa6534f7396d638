import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Rosterdock } from "../service.ts";
import { GUIDE_FORMATS } from "../guide/setup-guide.ts";
import { apiErrors } from "./api-schemas.ts";

/** `GET /api/v1/districts/{slug}/guide`: the district's setup guide, as `rosterdock guide` writes it. Scope `admin` (the admin routes' hook). */
export function registerGuideRoutes(app: FastifyInstance, rd: Rosterdock): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    "/api/v1/districts/:slug/guide",
    {
      schema: {
        tags: ["districts"],
        summary: "The district's own PowerSchool setup guide (connection, host-key fingerprints, export templates, schedule, troubleshooting); never its password. `format=pdf` is printed by the server's Chromium",
        params: z.object({ slug: z.string().describe("The district's slug") }),
        querystring: z.object({ format: z.enum(GUIDE_FORMATS).default("html") }),
        response: { 200: z.any().describe("The guide as text/html, text/markdown or application/pdf"), ...apiErrors },
      },
    },
    async (request, reply) => {
      const guide = await rd.guides.render(request.params.slug, request.query.format);
      return (
        reply
          .type(guide.contentType)
          .header("content-disposition", `attachment; filename="${guide.fileName}"`)
          // The page is self-contained: nothing from elsewhere, no script, even opened from the API.
          .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
          .header("x-content-type-options", "nosniff")
          .send(guide.body)
      );
    },
  );
}
