import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { RosterdockError } from "../../../errors.ts";
import { rosteringScope } from "../../../tokens/token-scopes.ts";
import type { Authenticator } from "../../authenticator.ts";
import { registerErrorHandler } from "../../http-errors.ts";
import { parseFilter } from "../oneroster-filter.ts";
import { ACADEMIC_SESSIONS, CLASSES, COURSES, DEMOGRAPHICS, ENROLLMENTS, ORGS, SCHOOLS, STUDENTS, TEACHERS, USERS, shapeRecord, type Resource } from "../oneroster-resources.ts";
import { NESTED, linkHeader, type Nested } from "../oneroster-routes.ts";
import type { Scope } from "../oneroster-sql.ts";
import { ResponseCache } from "../response-cache.ts";
import type { RosterReader } from "../roster-reader.ts";
import {
  V1P1_ACADEMIC_SESSIONS,
  V1P1_CLASSES,
  V1P1_COURSES,
  V1P1_DEMOGRAPHICS,
  V1P1_ENROLLMENTS,
  V1P1_ORGS,
  V1P1_PATH,
  V1P1_SCHOOLS,
  V1P1_STUDENTS,
  V1P1_TEACHERS,
  V1P1_USERS,
  v1p1FieldName,
  v1p1Filter,
  v1p1RefBuilder,
  v1p1Status,
} from "./oneroster-v1p1-resources.ts";

export const ONEROSTER_V1P1_PREFIX = `/districts/:slug/${V1P1_PATH}`;

/** The most records one page holds; a larger `limit` is answered with this many and a `next` link. */
export const V1P1_PAGE_MAX = 10_000;

const gradingPeriods: Scope = { sql: (col) => `${col("type")} = 'gradingPeriod'`, params: {} };

/** Top-level collections of the 1.1 rostering service; `terms` are the academic sessions, as in 1.2. */
const COLLECTIONS: ReadonlyArray<{ path: string; resource: Resource; scope?: Scope }> = [
  { path: "academicSessions", resource: V1P1_ACADEMIC_SESSIONS },
  { path: "classes", resource: V1P1_CLASSES },
  { path: "courses", resource: V1P1_COURSES },
  { path: "demographics", resource: V1P1_DEMOGRAPHICS },
  { path: "gradingPeriods", resource: V1P1_ACADEMIC_SESSIONS, scope: gradingPeriods },
  { path: "enrollments", resource: V1P1_ENROLLMENTS },
  { path: "orgs", resource: V1P1_ORGS },
  { path: "schools", resource: V1P1_SCHOOLS },
  { path: "students", resource: V1P1_STUDENTS },
  { path: "teachers", resource: V1P1_TEACHERS },
  { path: "terms", resource: V1P1_ACADEMIC_SESSIONS },
  { path: "users", resource: V1P1_USERS },
];

/** The 1.1 resource for each 1.2 one. */
const V1P1_OF: ReadonlyMap<Resource, Resource> = new Map([
  [ORGS, V1P1_ORGS],
  [SCHOOLS, V1P1_SCHOOLS],
  [ACADEMIC_SESSIONS, V1P1_ACADEMIC_SESSIONS],
  [COURSES, V1P1_COURSES],
  [CLASSES, V1P1_CLASSES],
  [USERS, V1P1_USERS],
  [STUDENTS, V1P1_STUDENTS],
  [TEACHERS, V1P1_TEACHERS],
  [ENROLLMENTS, V1P1_ENROLLMENTS],
  [DEMOGRAPHICS, V1P1_DEMOGRAPHICS],
]);

/** `parent/{id}/child` operations of the 1.1 rostering service (getClassesForSchool … getGradingPeriodsForTerm). */
const NESTED_PATHS = [
  "schools/classes",
  "schools/courses",
  "schools/enrollments",
  "schools/students",
  "schools/teachers",
  "schools/terms",
  "classes/students",
  "classes/teachers",
  "courses/classes",
  "students/classes",
  "teachers/classes",
  "users/classes",
  "terms/classes",
  "terms/gradingPeriods",
] as const;

/** Restrictions for 1.1 operations the 1.2 routes do not have (yet): used only where 1.2 has none. */
const OWN_NESTED: readonly Nested[] = [
  { parent: "courses", parentResource: COURSES, child: "classes", resource: CLASSES, scope: (col) => `${col("course_id")} = @parent` },
  // A school's terms: its own sessions and the district-wide ones (derived school years included).
  { parent: "schools", parentResource: SCHOOLS, child: "terms", resource: ACADEMIC_SESSIONS, scope: (col) => `${col("school_id")} IN (@parent, '')` },
  {
    parent: "terms",
    parentResource: ACADEMIC_SESSIONS,
    child: "gradingPeriods",
    resource: ACADEMIC_SESSIONS,
    scope: (col) => `${col("parent_id")} = @parent AND ${col("type")} = 'gradingPeriod'`,
  },
];

/** Each 1.1 nested operation: the 1.2 route's restriction when 1.2 has one over a resource 1.1 shares, else ours. */
function nestedRoutes(): Array<Nested & { parentV1p1: Resource; resourceV1p1: Resource }> {
  return NESTED_PATHS.map((path) => {
    const [parent, child] = path.split("/") as [string, string];
    const candidates = [...NESTED, ...OWN_NESTED].filter((n) => n.parent === parent && n.child === child);
    const nested = candidates.find((n) => V1P1_OF.has(n.resource) && V1P1_OF.has(n.parentResource));
    if (nested === undefined) throw new Error(`OneRoster 1.1: no restriction for ${path}`);
    return { ...nested, parentV1p1: V1P1_OF.get(nested.parentResource)!, resourceV1p1: V1P1_OF.get(nested.resource)! };
  });
}

/** A class's students, teachers and enrollments, as 1.2's `classes/{id}/…` restrictions. */
function classMember(child: "students" | "teachers" | "enrollments"): Nested & { resourceV1p1: Resource } {
  const nested = NESTED.find((n) => n.parent === "classes" && n.child === child);
  const resourceV1p1 = nested === undefined ? undefined : V1P1_OF.get(nested.resource);
  if (nested === undefined || resourceV1p1 === undefined) throw new Error(`OneRoster 1.1: no restriction for classes/${child}`);
  return { ...nested, resourceV1p1 };
}

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).default(100),
  offset: z.coerce.number().int().min(0).default(0),
  sort: z.string().optional(),
  orderBy: z.enum(["asc", "desc"]).default("asc"),
  filter: z.string().optional(),
  fields: z.string().optional(),
});
const FieldsQuerySchema = z.object({ fields: z.string().optional() });
const SlugParams = z.object({ slug: z.string() });
const IdParams = z.object({ slug: z.string(), id: z.string() });
const SchoolClassParams = z.object({ slug: z.string(), schoolId: z.string(), classId: z.string() });

/**
 * OneRoster 1.1 rostering, read-only, per district, at `/districts/{slug}/ims/oneroster/v1p1`:
 * the same roster, SQL, filters, sorts, paging and per-version response cache as 1.2, with 1.1's
 * operations, record shapes, hrefs and status codes. Scopes as for 1.2 (1.1's scope URIs name
 * the same scopes).
 */
export async function registerOneRosterV1p1Routes(app: FastifyInstance, options: { auth: Authenticator; reader: RosterReader; publicUrl: string }): Promise<void> {
  const { auth, reader, publicUrl } = options;
  await app.register(
    async (scoped) => {
      registerErrorHandler(scoped, (error) => v1p1Status(error));
      if (!scoped.hasRequestDecorator("district")) scoped.decorateRequest("district", undefined);
      if (!scoped.hasRequestDecorator("cacheKey")) scoped.decorateRequest("cacheKey", undefined);
      const cache = new ResponseCache();
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
        const limit = Math.min(query.limit, V1P1_PAGE_MAX);
        const page = reader.list(
          district,
          {
            resource,
            scope,
            filter: query.filter === undefined || query.filter.trim() === "" ? undefined : v1p1Filter(resource, parseFilter(query.filter)),
            sort: query.sort === undefined ? undefined : v1p1FieldName(resource, query.sort),
            orderBy: query.orderBy,
            fields: splitFields(query.fields),
          },
          limit,
          query.offset,
        );
        const refs = v1p1RefBuilder(publicUrl, district.slug, page.appliedAt);
        const records = page.rows.map((row) => shapeRecord(resource, page.fields, row, refs));
        const headers: Record<string, string> = { "x-total-count": String(page.total) };
        const link = linkHeader(publicUrl, request.url, page.total, limit, query.offset);
        if (link) headers.link = link;
        return send(request, reply, JSON.stringify({ [resource.plural]: records }), headers);
      };

      const notFound = (resource: Resource, id: string) => new RosterdockError("ERR_ONEROSTER_NOT_FOUND", `No ${resource.singular} has sourcedId ${id}.`, { sourcedId: id });

      const sendOne = (request: FastifyRequest, reply: FastifyReply, resource: Resource, id: string, fields: string | undefined, accept?: (record: Record<string, unknown>) => boolean) => {
        const district = request.district!;
        const found = reader.get(district, resource, id, accept === undefined ? splitFields(fields) : undefined);
        if (found === undefined) throw notFound(resource, id);
        const refs = v1p1RefBuilder(publicUrl, district.slug, found.appliedAt);
        if (accept !== undefined && !accept(shapeRecord(resource, found.fields, found.row, refs))) throw notFound(resource, id);
        const record = shapeRecord(resource, accept === undefined ? found.fields : selected(found.fields, splitFields(fields), resource), found.row, refs);
        return send(request, reply, JSON.stringify({ [resource.singular]: record }), {});
      };

      const doc = (summary: string) => ({ tags: ["oneroster-v1p1"], summary });
      for (const { path, resource, scope } of COLLECTIONS) {
        api.get(`/${path}`, { schema: { ...doc(`OneRoster 1.1 ${path} (paged: limit, offset, sort, orderBy, filter, fields)`), params: SlugParams, querystring: ListQuerySchema } }, async (request, reply) =>
          sendList(request, reply, resource, request.query, scope),
        );
        const accept = scope === gradingPeriods ? (record: Record<string, unknown>) => record.type === "gradingPeriod" : undefined;
        api.get(`/${path}/:id`, { schema: { ...doc(`One of the OneRoster 1.1 ${path} by sourcedId`), params: IdParams, querystring: FieldsQuerySchema } }, async (request, reply) =>
          sendOne(request, reply, resource, request.params.id, request.query.fields, accept),
        );
      }
      for (const nested of nestedRoutes()) {
        api.get(`/${nested.parent}/:id/${nested.child}`, { schema: { ...doc(`OneRoster 1.1 ${nested.child} of one of the ${nested.parent}`), params: IdParams, querystring: ListQuerySchema } }, async (request, reply) => {
          const id = request.params.id;
          if (!reader.exists(request.district!, nested.parentV1p1, id)) throw notFound(nested.parentV1p1, id);
          return sendList(request, reply, nested.resourceV1p1, request.query, { sql: nested.scope, params: { parent: id, ...(nested.params?.(id) ?? {}) } });
        });
      }
      // getEnrollmentsForClassInSchool, getStudentsForClassInSchool, getTeachersForClassInSchool
      for (const child of ["enrollments", "students", "teachers"] as const) {
        const member = classMember(child);
        api.get(`/schools/:schoolId/classes/:classId/${child}`, { schema: { ...doc(`OneRoster 1.1 ${child} of a class of a school`), params: SchoolClassParams, querystring: ListQuerySchema } }, async (request, reply) => {
          const { schoolId, classId } = request.params;
          const district = request.district!;
          if (!reader.exists(district, V1P1_SCHOOLS, schoolId)) throw notFound(V1P1_SCHOOLS, schoolId);
          const klass = reader.get(district, V1P1_CLASSES, classId, ["school"]);
          if (klass === undefined || String(klass.row.school_id) !== schoolId) {
            throw new RosterdockError("ERR_ONEROSTER_NOT_FOUND", `School ${schoolId} has no class with sourcedId ${classId}.`, { sourcedId: classId });
          }
          return sendList(request, reply, member.resourceV1p1, request.query, { sql: member.scope, params: { parent: classId, ...(member.params?.(classId) ?? {}) } });
        });
      }
    },
    { prefix: ONEROSTER_V1P1_PREFIX },
  );
}

/** The chosen fields among those read, in resource order; unknown names were refused when the record was read. */
function selected(read: readonly string[], chosen: readonly string[] | undefined, resource: Resource): string[] {
  if (chosen === undefined) return [...read];
  const unknown = chosen.filter((f) => !read.includes(f));
  if (unknown.length > 0) throw new RosterdockError("ERR_ONEROSTER_INVALID_FIELDS", `Unknown field${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")}; ${resource.plural} have ${read.join(", ")}.`, { fields: unknown });
  return read.filter((f) => chosen.includes(f));
}

function splitFields(fields: string | undefined): string[] | undefined {
  if (fields === undefined) return undefined;
  const list = fields
    .split(",")
    .map((f) => f.trim())
    .filter(Boolean);
  return list.length === 0 ? undefined : list;
}
