import type { FastifyInstance } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { RosterdockError } from "../errors.ts";
import { apiErrors } from "./api-schemas.ts";
import type { Authenticator } from "./authenticator.ts";
import { CHANGE_ENTITIES, changeItems, type ChangeContext } from "./oneroster/change-records.ts";
import { classSessionSql, dateSchoolYearSql, refBuilder, sessionFamilySql, sessionTypeSql, yearSessionSql } from "./oneroster/oneroster-resources.ts";
import { formatCursor, parseCursor, type RosterReader } from "./oneroster/roster-reader.ts";
import { ResponseCache } from "./oneroster/response-cache.ts";

const FEED_CACHE_PAGES = 500;

/** The change feed authorises itself (roster.readonly for the district is enough), unlike the rest of /api/v1. */
export const CHANGE_FEED_PATH = /^\/api\/v1\/districts\/[^/?]+\/changes(?:\?|$)/;

const ChangeSchema = z.object({
  cursor: z.string().describe("Pass as `after` to continue after this change (`1234`, or `1234.500` inside a first load)"),
  entity: z.enum(CHANGE_ENTITIES),
  id: z.string().describe("The record's OneRoster sourcedId"),
  op: z.enum(["created", "updated", "deleted"]),
  data: z.record(z.string(), z.unknown()).nullable().describe("The record after the change, as the OneRoster API returns it; null when deleted"),
});
const FeedSchema = z.object({
  changes: z.array(ChangeSchema),
  nextCursor: z.string().describe("The `after` of the next page; equal to `after` when there is nothing new yet"),
});

/** `GET /api/v1/districts/{slug}/changes`: every change of applied syncs and rollbacks, in order, kept until pruned. */
export function registerChangeFeedRoutes(app: FastifyInstance, options: { auth: Authenticator; reader: RosterReader; publicUrl: string }): void {
  const { auth, reader, publicUrl } = options;
  // A page is fixed for a roster version (the log only grows, and lookups read that version).
  const cache = new Map<string, z.infer<typeof FeedSchema>>();
  app.withTypeProvider<ZodTypeProvider>().get(
    "/api/v1/districts/:slug/changes",
    {
      schema: {
        tags: ["changes"],
        summary: "The district's roster changes after a cursor (applied syncs and rollbacks), oldest first. Scope roster.readonly for the district, or admin",
        params: z.object({ slug: z.string().describe("The district's slug") }),
        querystring: z.object({
          after: z.string().default("0").describe("Cursor: the last change already seen (0 = from the beginning)"),
          limit: z.coerce.number().int().min(1).max(10_000).default(1000).describe("At most this many stored changes are read"),
        }),
        response: { 200: FeedSchema, ...apiErrors },
      },
    },
    async (request) => {
      const { slug } = request.params;
      request.principal = await auth.require(request, "roster.readonly", slug);
      const district = await reader.district(slug);
      if (district === undefined) throw new RosterdockError("ERR_DISTRICT_NOT_FOUND", `No district has slug ${slug}.`);
      const key = ResponseCache.key(district.id, await reader.version(district.id), `${request.query.after}\u0000${request.query.limit}`);
      const cached = cache.get(key);
      if (cached !== undefined) return cached;
      const after = parseCursor(request.query.after);
      if (after === undefined) throw new RosterdockError("ERR_INVALID_ARGUMENT", `"${request.query.after}" is not a cursor: pass a nextCursor or cursor this feed returned, or 0.`);
      const page = await reader.changes(district.id, after, request.query.limit);
      const context: ChangeContext = {
        refs: refBuilder(publicUrl, slug, (syncId) => page.appliedAt.get(syncId) ?? null),
        classTerm: async (termId, schoolId, syncId) =>
          String(
            (await reader.lookup(`SELECT ${classSessionSql("x", "@applied")} AS sid FROM (SELECT @d AS district_id, @t AS term_id, @s AS school_id) x`, {
              d: district.id,
              t: termId,
              s: schoolId,
              applied: page.appliedAt.get(syncId) ?? new Date().toISOString(),
            }))!.sid,
          ),
        // Type and year from the change's own dates; parent and children from the roster as it is now.
        termSession: async (termId, schoolId, startDate, endDate) => {
          const row = (await reader.lookup(`SELECT ${sessionTypeSql("@t", "@start", "@end")} AS kind, ${dateSchoolYearSql("@start")} AS sy`, { t: termId, start: startDate, end: endDate }))!;
          const family = await reader.lookup(sessionFamilySql, { d: district.id, sid: schoolId === "" ? termId : `${termId}-${schoolId}` });
          const parent =
            row.kind === "schoolYear" ? null : String((await reader.lookup(`SELECT ${yearSessionSql("@s", "CAST(@sy AS INTEGER)")} AS sid`, { d: district.id, s: schoolId, sy: Number(row.sy) }))!.sid);
          const children = row.kind === "schoolYear" && family !== undefined && family.children != null ? String(family.children) : null;
          return { type: String(row.kind), schoolYear: String(row.sy), parent, children };
        },
        classSchool: async (classId) => {
          const row = await reader.lookup("SELECT school_id FROM roster_classes WHERE district_id = @d AND class_id = @c", { d: district.id, c: classId });
          return row === undefined ? null : String(row.school_id);
        },
      };
      const changes = [];
      for (const { change, cursor } of page.entries) {
        for (const item of await changeItems(change, context)) changes.push({ ...item, cursor: formatCursor(cursor) });
      }
      const result = { changes, nextCursor: formatCursor(page.next) };
      if (cache.size >= FEED_CACHE_PAGES) cache.delete(cache.keys().next().value!);
      cache.set(key, result);
      return result;
    },
  );
}
