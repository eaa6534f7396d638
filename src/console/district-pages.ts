import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import type { Rosterdock } from "../service.ts";
import { RosterdockError, isRosterdockError } from "../errors.ts";
import { connectionDetails, credentialsLinkUrl, type ConnectionDetails } from "../districts/connection-details.ts";
import type { CreatedDistrict, SafeguardOverrides } from "../districts/district-service.ts";
import { operatorActor } from "../operators/operator-service.ts";
import { HEALTH_MARKS, OVERVIEW_SORTS, districtOverviews, sortOverviews, type HealthMark, type OverviewSort } from "./district-overview.ts";
import { sendPage, viewer, type ConsoleContext } from "./console-app.ts";
import { DistrictsPage } from "./views/districts-page.tsx";
import { CredentialsPage, NewDistrictPage, type IssuedCredentials } from "./views/new-district-page.tsx";
import { DistrictPage } from "./views/district-page.tsx";
import { RosterSearchPage, UserPage } from "./views/roster-pages.tsx";
import { searchUsers, userWithClasses } from "./roster-browser.ts";
import type { ChartSync } from "./views/sync-chart.tsx";

type Counts = Record<string, { created?: number; updated?: number; deleted?: number }>;

/** The district's syncs newest first, with their rows created, updated and deleted summed over entities. */
export async function districtSyncs(db: Kysely<Database>, districtId: number, limit: number): Promise<ChartSync[]> {
  const rows = await db.selectFrom("syncs").select(["id", "status", "created_at", "counts"]).where("district_id", "=", districtId).orderBy("id", "desc").limit(limit).execute();
  return rows.map((r) => {
    const counts = Object.values(JSON.parse(r.counts) as Counts);
    const sum = (k: "created" | "updated" | "deleted") => counts.reduce((n, c) => n + (c[k] ?? 0), 0);
    return { id: r.id, status: r.status, createdAt: r.created_at, created: sum("created"), updated: sum("updated"), deleted: sum("deleted") };
  });
}

async function connection(rd: Rosterdock): Promise<ConnectionDetails> {
  return connectionDetails(await rd.settings.address(rd.config), await rd.hostKeys());
}

/** Lines of a textarea: one address or range a line, blank lines ignored. */
function lines(value: unknown): string[] {
  return typeof value === "string" ? value.split(/[\r\n,]+/).map((l) => l.trim()).filter(Boolean) : [];
}

function field(body: unknown, name: string): string {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  return typeof value === "string" ? value : "";
}

/** The guide formats the console offers (Markdown stays with the CLI and the API). */
export const CONSOLE_GUIDE_FORMATS = ["html", "pdf"] as const;

type Form = { Body: Record<string, string | undefined> };
type SlugParams = { Params: { slug: string } };

/** `/` (the districts), "New district", and `/districts/{slug}` with its forms. */
export function registerDistrictPages(web: FastifyInstance, { rd }: ConsoleContext): void {
  const hide = { schema: { hide: true } };

  web.get<{ Querystring: { sort?: string; order?: string; health?: string } }>("/", hide, async (request, reply) => {
    const sort: OverviewSort = (OVERVIEW_SORTS as readonly string[]).includes(request.query.sort ?? "") ? (request.query.sort as OverviewSort) : "name";
    const health = (HEALTH_MARKS as readonly string[]).includes(request.query.health ?? "") ? (request.query.health as HealthMark) : undefined;
    const descending = request.query.order === "desc";
    const all = await districtOverviews(rd.database.db, rd.clock, await rd.districts.list());
    const rows = sortOverviews(
      all.filter((r) => health === undefined || r.health === health),
      sort,
      descending,
    );
    return sendPage(reply, DistrictsPage({ viewer: viewer(request, reply), rows, total: all.length, query: { sort, descending, health } }));
  });

  web.get("/districts/new", hide, async (request, reply) => sendPage(reply, NewDistrictPage({ viewer: viewer(request, reply) })));

  const credentialsPage = async (request: FastifyRequest, reply: FastifyReply, issued: CreatedDistrict, title: string, lead: string) => {
    const credentials: IssuedCredentials = {
      slug: issued.district.slug,
      name: issued.district.name,
      username: issued.district.sftpUsername,
      password: issued.password,
      connection: await connection(rd),
      credentialsLink: credentialsLinkUrl((await rd.settings.address(rd.config)).publicUrl, issued.credentialsLink.token),
    };
    return sendPage(reply, CredentialsPage({ viewer: viewer(request, reply), title, lead, credentials }));
  };

  web.post<Form>("/districts", { ...hide, preValidation: web.csrfProtection }, async (request, reply) => {
    const input = { name: field(request.body, "name"), slug: field(request.body, "slug"), allowIps: field(request.body, "allowIps") };
    let created;
    try {
      created = await rd.districts.create({ name: input.name, slug: input.slug, allowIps: lines(input.allowIps) }, operatorActor(request.operator!.email));
    } catch (error) {
      if (!isRosterdockError(error) || (error.category !== "invalid_input" && error.category !== "conflict")) throw error;
      return sendPage(reply, NewDistrictPage({ viewer: viewer(request, reply), input, error: error.message }), error.category === "conflict" ? 409 : 400);
    }
    return credentialsPage(request, reply, created, `District ${created.district.name} created`, "The district can connect now. Its credentials are shown on this page only.");
  });

  const districtPage = async (request: FastifyRequest<SlugParams>, reply: FastifyReply, messages: { notice?: string; error?: string } = {}, status = 200) => {
    const district = await rd.districts.show(request.params.slug);
    const [overview] = await districtOverviews(rd.database.db, rd.clock, [district]);
    const c = rd.config;
    return sendPage(
      reply,
      DistrictPage({
        viewer: viewer(request, reply),
        district,
        health: overview!.health,
        connection: await connection(rd),
        serverSafeguards: { deletePercent: c.holdDeletePercent, deleteMinRows: c.holdDeleteMinRows, changePercent: c.holdChangePercent, changeMinRows: c.holdChangeMinRows },
        syncs: await districtSyncs(rd.database.db, district.id, 100),
        ...messages,
      }),
      status,
    );
  };

  web.get<SlugParams>("/districts/:slug", hide, async (request, reply) => districtPage(request, reply));

  web.post<SlugParams & Form>("/districts/:slug/rotate-password", { ...hide, preValidation: web.csrfProtection }, async (request, reply) => {
    const rotated = await rd.districts.rotatePassword(request.params.slug, operatorActor(request.operator!.email));
    return credentialsPage(request, reply, rotated, `New password for ${rotated.district.name}`, "The old password stopped working. Update the district's Remote Connection Manager entry.");
  });

  web.post<SlugParams & Form>("/districts/:slug/new-link", { ...hide, preValidation: web.csrfProtection }, async (request, reply) => {
    const rotated = await rd.districts.rotatePassword(request.params.slug, operatorActor(request.operator!.email), "new-link");
    return credentialsPage(request, reply, rotated, `New one-time link for ${rotated.district.name}`, "A new password was made for this link; the old password and any earlier link stopped working.");
  });

  // The setup guide, as `rosterdock guide` and `GET /api/v1/districts/{slug}/guide` give it.
  web.get<{ Params: { slug: string; format: string } }>("/districts/:slug/guide.:format", hide, async (request, reply) => {
    const format = CONSOLE_GUIDE_FORMATS.find((f) => f === request.params.format);
    if (!format) throw new RosterdockError("ERR_ROUTE_NOT_FOUND", "The guide is served as .html or .pdf.");
    const guide = await rd.guides.render(request.params.slug, format);
    return (
      reply
        .type(guide.contentType)
        .header("content-disposition", `attachment; filename="${guide.fileName}"`)
        .header("cache-control", "no-store")
        // Self-contained: its own inline styles, no script, nothing from elsewhere.
        .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
        .send(guide.body)
    );
  });

  web.get<SlugParams & { Querystring: { q?: string; page?: string } }>("/districts/:slug/users", hide, async (request, reply) => {
    const district = await rd.districts.requireRow(request.params.slug);
    const query = typeof request.query.q === "string" ? request.query.q.slice(0, 200) : "";
    const page = Math.max(1, Math.floor(Number(request.query.page ?? "1")) || 1);
    const { users, more } = await searchUsers(rd.database, district.id, query, page);
    return sendPage(reply, RosterSearchPage({ viewer: viewer(request, reply), slug: district.slug, districtName: district.name, query, page, users, more }));
  });

  web.get<{ Params: { slug: string; userKey: string } }>("/districts/:slug/users/:userKey", hide, async (request, reply) => {
    const district = await rd.districts.requireRow(request.params.slug);
    const found = await userWithClasses(rd.database, district.id, request.params.userKey);
    if (!found) throw new RosterdockError("ERR_ROUTE_NOT_FOUND", `${district.name} has no user ${request.params.userKey}.`);
    return sendPage(reply, UserPage({ viewer: viewer(request, reply), slug: district.slug, districtName: district.name, ...found }));
  });

  web.post<SlugParams & Form>("/districts/:slug/allow-list", { ...hide, preValidation: web.csrfProtection }, async (request, reply) => {
    try {
      await rd.districts.update(request.params.slug, { allowIps: lines(request.body.allowIps) }, operatorActor(request.operator!.email));
    } catch (error) {
      if (!isRosterdockError(error) || error.category !== "invalid_input") throw error;
      return districtPage(request, reply, { error: error.message }, 400);
    }
    return districtPage(request, reply, { notice: "Allowed addresses saved." });
  });

  web.post<SlugParams & Form>("/districts/:slug/safeguards", { ...hide, preValidation: web.csrfProtection }, async (request, reply) => {
    const changes: { [K in keyof SafeguardOverrides]?: number | null } = {};
    for (const key of ["deletePercent", "deleteMinRows", "changePercent", "changeMinRows"] as const) {
      const text = (request.body[key] ?? "").trim();
      changes[key] = text === "" ? null : Number(text);
    }
    try {
      if (Object.values(changes).some((v) => v !== null && !Number.isFinite(v))) throw new RosterdockError("ERR_INVALID_ARGUMENT", "Each threshold is a whole number, or empty.");
      await rd.districts.setSafeguards(request.params.slug, changes, operatorActor(request.operator!.email));
    } catch (error) {
      if (!isRosterdockError(error) || error.category !== "invalid_input") throw error;
      return districtPage(request, reply, { error: error.message }, 400);
    }
    return districtPage(request, reply, { notice: "Safeguards saved." });
  });
}
