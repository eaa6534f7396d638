import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { RosterdockError, type ErrorCode } from "../../errors.ts";
import type { Authenticator } from "../authenticator.ts";
import { registerErrorHandler } from "../http-errors.ts";
import { parseFilter } from "./oneroster-filter.ts";
import {
  ACADEMIC_SESSIONS,
  CLASSES,
  COURSES,
  ENROLLMENTS,
  ORGS,
  SCHOOLS,
  STUDENTS,
  TEACHERS,
  USERS,
  refBuilder,
  shapeRecord,
  type Resource,
} from "./oneroster-resources.ts";
import type { Scope } from "./oneroster-sql.ts";
import type { RosterReader } from "./roster-reader.ts";
import { ResponseCache } from "./response-cache.ts";
import { rosteringScope } from "../../tokens/token-scopes.ts";

export const ONEROSTER_PREFIX = "/districts/:slug/ims/oneroster/rostering/v1p2";
export const MAX_LIMIT = 10_000;

/** Top-level collections; `terms` are the academic sessions (all of ours are terms). */
const COLLECTIONS: ReadonlyArray<readonly [path: string, resource: Resource]> = [
  ["orgs", ORGS],
  ["schools", SCHOOLS],
  ["academicSessions", ACADEMIC_SESSIONS],
  ["terms", ACADEMIC_SESSIONS],
  ["courses", COURSES],
  ["classes", CLASSES],
  ["users", USERS],
  ["students", STUDENTS],
  ["teachers", TEACHERS],
  ["enrollments", ENROLLMENTS],
];

export interface Nested {
  parent: string;
  parentResource: Resource;
  child: string;
  resource: Resource;
  scope: (col: (column: string) => string) => string;
  params?: (parentId: string) => Record<string, unknown>;
}

const classesOfUser = (parent: string, parentResource: Resource): Nested => ({
  parent,
  parentResource,
  child: "classes",
  resource: CLASSES,
  scope: (col) => `${col("sourced_id")} IN (SELECT ue.class_id FROM roster_enrollments ue WHERE ue.district_id = @d AND ue.student_id = @parentStudent) OR ${col("teacher_key")} = @parent`,
  params: (id) => ({ parentStudent: id.startsWith("student-") ? id.slice("student-".length) : null }),
});

/** `parent/{id}/child`: the child resource restricted to the parent, as SQL over indexed columns. */
export const NESTED: readonly Nested[] = [
  { parent: "schools", parentResource: SCHOOLS, child: "classes", resource: CLASSES, scope: (col) => `${col("school_id")} = @parent` },
  { parent: "schools", parentResource: SCHOOLS, child: "students", resource: STUDENTS, scope: (col) => `${col("school_id")} = @parent` },
  {
    parent: "schools",
    parentResource: SCHOOLS,
    child: "teachers",
    resource: TEACHERS,
    scope: (col) => `${col("sourced_id")} IN (SELECT si.user_key FROM roster_staff_ids si WHERE si.district_id = @d AND si.school_id = @parent)`,
  },
  { parent: "schools", parentResource: SCHOOLS, child: "enrollments", resource: ENROLLMENTS, scope: (col) => `${col("school_id")} = @parent` },
  {
    parent: "schools",
    parentResource: SCHOOLS,
    child: "courses",
    resource: COURSES,
    scope: (col) => `${col("school_id")} = @parent OR ${col("sourced_id")} IN (SELECT sc.course_id FROM roster_classes sc WHERE sc.district_id = @d AND sc.school_id = @parent)`,
  },
  {
    parent: "classes",
    parentResource: CLASSES,
    child: "students",
    resource: STUDENTS,
    scope: (col) => `${col("sourced_id")} IN (SELECT 'student-' || ce.student_id FROM roster_enrollments ce WHERE ce.district_id = @d AND ce.class_id = @parent)`,
  },
  {
    parent: "classes",
    parentResource: CLASSES,
    child: "teachers",
    resource: TEACHERS,
    scope: (col) => `${col("sourced_id")} IN (SELECT ct.teacher_key FROM roster_classes ct WHERE ct.district_id = @d AND ct.class_id = @parent)`,
  },
  { parent: "classes", parentResource: CLASSES, child: "enrollments", resource: ENROLLMENTS, scope: (col) => `${col("class_id")} = @parent` },
  classesOfUser("users", USERS),
  classesOfUser("students", STUDENTS),
  classesOfUser("teachers", TEACHERS),
  {
    parent: "terms",
    parentResource: ACADEMIC_SESSIONS,
    child: "classes",
    resource: CLASSES,
    // Classes whose term was never described belong to their school year's session.
    scope: (col) => `${col("term_sid")} = @parent`,
  },
];

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(100),
  offset: z.coerce.number().int().min(0).default(0),
  sort: z.string().optional(),
  orderBy: z.enum(["asc", "desc"]).default("asc"),
  filter: z.string().optional(),
  fields: z.string().optional(),
});
const FieldsQuerySchema = z.object({ fields: z.string().optional() });
const SlugParams = z.object({ slug: z.string() });
const IdParams = z.object({ slug: z.string(), id: z.string() });

/** OneRoster's status vocabulary for our error codes. */
const CODE_MINOR: Partial<Record<ErrorCode, string>> = {
  ERR_UNAUTHENTICATED: "unauthorisedrequest",
  ERR_FORBIDDEN: "forbidden",
  ERR_ONEROSTER_NOT_FOUND: "unknownobject",
  ERR_DISTRICT_NOT_FOUND: "unknownobject",
  ERR_ROUTE_NOT_FOUND: "unknownobject",
  ERR_ONEROSTER_INVALID_FILTER: "invalid_filter_field",
  ERR_ONEROSTER_INVALID_SORT: "invalid_sort_field",
  ERR_ONEROSTER_INVALID_FIELDS: "invalid_selection_field",
};

/** An error as OneRoster's `imsx_StatusInfo`. */
export function imsxStatus(error: RosterdockError): Record<string, unknown> {
  const minor =
    CODE_MINOR[error.code] ?? (error.category === "invalid_input" ? "invalid_data" : error.category === "unavailable" ? "server_busy" : error.category === "internal" ? "internal_server_error" : "unknownobject");
  return {
    imsx_codeMajor: "failure",
    imsx_severity: "error",
    imsx_description: error.message,
    imsx_CodeMinor: { imsx_codeMinorField: [{ imsx_codeMinorFieldName: "TargetEndSystem", imsx_codeMinorFieldValue: minor }] },
  };
}

declare module "fastify" {
  interface FastifyRequest {
    district?: { id: number; slug: string };
    cacheKey?: string;
  }
}

/**
 * OneRoster 1.2 rostering, read-only, per district. Scope `roster-core.readonly` for the district
 * (`roster-demographics.readonly` for demographics; `roster.readonly` or `admin` for both). Bodies are JSON strings built here rather than through a response schema: a page of
 * 10,000 users would otherwise be validated twice. Finished responses are cached per roster
 * version, with an ETag, since a roster changes only when a sync is applied or rolled back.
 */
export async function registerOneRosterRoutes(app: FastifyInstance, options: { auth: Authenticator; reader: RosterReader; publicUrl: string }): Promise<void> {
  const { auth, reader, publicUrl } = options;
  await app.register(
    async (scoped) => {
      registerErrorHandler(scoped, (error) => imsxStatus(error));
      scoped.decorateRequest("district", undefined);
      scoped.decorateRequest("cacheKey", undefined);
      const cache = new ResponseCache();
      /** Sends a finished body and remembers it for the next identical request. */
      const send = (request: FastifyRequest, reply: FastifyReply, body: string, headers: Record<string, string>) => {
        const etag = ResponseCache.etag(request.cacheKey!);
        cache.set(request.cacheKey!, { body, headers, etag });
        return reply.headers(headers).header("etag", etag).type("application/json; charset=utf-8").send(body);
      };
      scoped.addHook("onRequest", async (request, reply) => {
        const slug = (request.params as { slug?: string }).slug ?? "";
        await auth.require(request, rosteringScope(request.routeOptions.url ?? request.url), slug);
        const district = reader.district(slug);
        if (district === undefined) throw new RosterdockError("ERR_DISTRICT_NOT_FOUND", `No district has slug ${slug}.`);
        request.district = district;
        // A page asked for before, at this roster version: the same bytes, or 304 to a client that has them.
        const key = ResponseCache.key(district.id, reader.version(district.id), request.url);
        request.cacheKey = key;
        const cached = cache.get(key);
        if (cached === undefined) return;
        if (request.headers["if-none-match"] === cached.etag) return reply.code(304).header("etag", cached.etag).send();
        return reply.headers(cached.headers).header("etag", cached.etag).type("application/json; charset=utf-8").send(cached.body);
      });
      const api = scoped.withTypeProvider<ZodTypeProvider>();

      const sendList = (request: FastifyRequest, reply: FastifyReply, resource: Resource, query: z.infer<typeof ListQuerySchema>, scope?: Scope) => {
        const district = request.district!;
        const page = reader.list(
          district,
          {
            resource,
            scope,
            filter: query.filter === undefined || query.filter.trim() === "" ? undefined : parseFilter(query.filter),
            sort: query.sort,
            orderBy: query.orderBy,
            fields: splitFields(query.fields),
          },
          query.limit,
          query.offset,
        );
        const refs = refBuilder(publicUrl, district.slug, page.appliedAt);
        const records = page.rows.map((row) => shapeRecord(resource, page.fields, row, refs));
        const headers: Record<string, string> = { "x-total-count": String(page.total) };
        const link = linkHeader(publicUrl, request.url, page.total, query.limit, query.offset);
        if (link) headers.link = link;
        return send(request, reply, JSON.stringify({ [resource.plural]: records }), headers);
      };

      const sendOne = (request: FastifyRequest, reply: FastifyReply, resource: Resource, id: string, fields: string | undefined) => {
        const district = request.district!;
        const found = reader.get(district, resource, id, splitFields(fields));
        if (found === undefined) throw new RosterdockError("ERR_ONEROSTER_NOT_FOUND", `No ${resource.singular} has sourcedId ${id}.`, { sourcedId: id });
        const record = shapeRecord(resource, found.fields, found.row, refBuilder(publicUrl, district.slug, found.appliedAt));
        return send(request, reply, JSON.stringify({ [resource.singular]: record }), {});
      };

      // Listed in the OpenAPI document; bodies follow the OneRoster 1.2 rostering spec.
      const doc = (summary: string) => ({ tags: ["oneroster"], summary });
      for (const [path, resource] of COLLECTIONS) {
        api.get(`/${path}`, { schema: { ...doc(`OneRoster ${path} (paged: limit, offset, sort, orderBy, filter, fields)`), params: SlugParams, querystring: ListQuerySchema } }, async (request, reply) =>
          sendList(request, reply, resource, request.query),
        );
        api.get(`/${path}/:id`, { schema: { ...doc(`One of the OneRoster ${path} by sourcedId`), params: IdParams, querystring: FieldsQuerySchema } }, async (request, reply) =>
          sendOne(request, reply, resource, request.params.id, request.query.fields),
        );
      }
      for (const nested of NESTED) {
        api.get(`/${nested.parent}/:id/${nested.child}`, { schema: { ...doc(`OneRoster ${nested.child} of one of the ${nested.parent}`), params: IdParams, querystring: ListQuerySchema } }, async (request, reply) => {
          const id = request.params.id;
          if (!reader.exists(request.district!, nested.parentResource, id)) {
            throw new RosterdockError("ERR_ONEROSTER_NOT_FOUND", `No ${nested.parentResource.singular} has sourcedId ${id}.`, { sourcedId: id });
          }
          return sendList(request, reply, nested.resource, request.query, { sql: nested.scope, params: { parent: id, ...(nested.params?.(id) ?? {}) } });
        });
      }
    },
    { prefix: ONEROSTER_PREFIX },
  );
}

function splitFields(fields: string | undefined): string[] | undefined {
  if (fields === undefined) return undefined;
  const list = fields
    .split(",")
    .map((f) => f.trim())
    .filter(Boolean);
  return list.length === 0 ? undefined : list;
}

/** RFC 8288 `Link` with first, prev, next and last pages; the other query parameters are kept. */
export function linkHeader(publicUrl: string, requestUrl: string, total: number, limit: number, offset: number): string {
  const url = new URL(requestUrl, "http://x");
  const base = publicUrl.replace(/\/$/, "");
  const at = (to: number) => {
    url.searchParams.set("limit", String(limit));
    url.searchParams.set("offset", String(to));
    return `${base}${url.pathname}?${url.searchParams.toString()}`;
  };
  const last = total === 0 ? 0 : Math.floor((total - 1) / limit) * limit;
  const links = [`<${at(0)}>; rel="first"`];
  if (offset > 0) links.push(`<${at(Math.max(0, Math.min(offset - limit, last)))}>; rel="prev"`);
  if (offset + limit < total) links.push(`<${at(offset + limit)}>; rel="next"`);
  links.push(`<${at(last)}>; rel="last"`);
  return links.join(", ");
}
