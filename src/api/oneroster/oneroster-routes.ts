import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { Readable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import { RosterdockError, type ErrorCategory, type ErrorCode } from "../../errors.ts";
import type { TokenScope } from "../../tokens/token-service.ts";
import type { Authenticator } from "../authenticator.ts";
import { registerErrorHandler } from "../http-errors.ts";
import { parseFilter } from "./oneroster-filter.ts";
import {
  ACADEMIC_SESSIONS,
  CLASSES,
  COURSES,
  DEMOGRAPHICS,
  ENROLLMENTS,
  GRADING_PERIODS,
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
/**
 * Rows read, shaped and sent at a time. A page up to this size is built whole and cached; a
 * larger one (the specification sets no maximum `limit`) is streamed chunk by chunk, each read
 * in its own transaction, and cut off (the client sees a truncated body, never a mixed one) if a
 * sync changes the roster meanwhile.
 */
export const PAGE_CHUNK = 10_000;

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
  ["gradingPeriods", GRADING_PERIODS],
  ["demographics", DEMOGRAPHICS],
];

export interface Nested {
  parent: string;
  parentResource: Resource;
  child: string;
  resource: Resource;
  scope: (col: (column: string) => string) => string;
  params?: (parentId: string) => Record<string, unknown>;
}

/** What a class's students, teachers and enrollments are, as nested routes of `classes/{id}` and `schools/{id}/classes/{id}`. */
const CLASS_MEMBERS: ReadonlyArray<Pick<Nested, "child" | "resource" | "scope">> = [
  {
    child: "students",
    resource: STUDENTS,
    scope: (col) => `${col("sourced_id")} IN (SELECT 'student-' || ce.student_id FROM roster_enrollments ce WHERE ce.district_id = @d AND ce.class_id = @parent)`,
  },
  {
    child: "teachers",
    resource: TEACHERS,
    scope: (col) => `${col("sourced_id")} IN (SELECT ct.teacher_key FROM roster_classes ct WHERE ct.district_id = @d AND ct.class_id = @parent)`,
  },
  { child: "enrollments", resource: ENROLLMENTS, scope: (col) => `${col("class_id")} = @parent` },
];

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
  ...CLASS_MEMBERS.map((member) => ({ parent: "classes", parentResource: CLASSES, ...member })),
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
  // getClassesForCourse
  { parent: "courses", parentResource: COURSES, child: "classes", resource: CLASSES, scope: (col) => `${col("course_id")} = @parent` },
  // getTermsForSchool: the school's own terms and the district-wide ones.
  { parent: "schools", parentResource: SCHOOLS, child: "terms", resource: ACADEMIC_SESSIONS, scope: (col) => `${col("school_id")} IN (@parent, '')` },
  // getGradingPeriodsForTerm
  { parent: "terms", parentResource: ACADEMIC_SESSIONS, child: "gradingPeriods", resource: GRADING_PERIODS, scope: (col) => `${col("parent_id")} = @parent` },
];

const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).default(100),
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

/** OneRoster 1.2's imsx_CodeMinorValueEnum, as 1EdTech's OpenAPI document lists it: no other value may be sent. */
export const CODE_MINOR_VALUES = [
  "fullsuccess",
  "invalid_filter_field",
  "invalid_selection_field",
  "invaliddata",
  "unauthorisedrequest",
  "forbidden",
  "server_busy",
  "unknownobject",
  "internal_server_error",
] as const;
export type CodeMinor = (typeof CODE_MINOR_VALUES)[number];

/** Error codes with a status of their own; the rest go by category. A sort the API cannot do is invalid data (1.2 has no code for sorts). */
const CODE_MINOR: Partial<Record<ErrorCode, CodeMinor>> = {
  ERR_ONEROSTER_INVALID_FILTER: "invalid_filter_field",
  ERR_ONEROSTER_INVALID_FIELDS: "invalid_selection_field",
  ERR_ONEROSTER_INVALID_SORT: "invaliddata",
};

const CATEGORY_CODE_MINOR: Readonly<Record<ErrorCategory, CodeMinor>> = {
  invalid_input: "invaliddata",
  not_found: "unknownobject",
  conflict: "invaliddata",
  unauthenticated: "unauthorisedrequest",
  forbidden: "forbidden",
  limit: "invaliddata",
  throttled: "server_busy",
  unavailable: "server_busy",
  internal: "internal_server_error",
};

/** An error's OneRoster status code. */
export function codeMinor(error: RosterdockError): CodeMinor {
  return CODE_MINOR[error.code] ?? CATEGORY_CODE_MINOR[error.category];
}

/** An error as OneRoster's `imsx_StatusInfo`. */
export function imsxStatus(error: RosterdockError): Record<string, unknown> {
  const minor = codeMinor(error);
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
        const listQuery = {
          resource,
          scope,
          filter: query.filter === undefined || query.filter.trim() === "" ? undefined : parseFilter(query.filter),
          sort: query.sort,
          orderBy: query.orderBy,
          fields: splitFields(query.fields),
        };
        const version = reader.version(district.id);
        const read = (limit: number, offset: number) => reader.list(district, listQuery, limit, offset);
        const shape = (page: ReturnType<typeof read>) => {
          const refs = refBuilder(publicUrl, district.slug, page.appliedAt);
          return page.rows.map((row) => shapeRecord(resource, page.fields, row, refs));
        };
        const page = read(Math.min(query.limit, PAGE_CHUNK), query.offset);
        const headers: Record<string, string> = { "x-total-count": String(page.total) };
        const link = linkHeader(publicUrl, request.url, page.total, query.limit, query.offset);
        if (link) headers.link = link;
        if (query.limit <= PAGE_CHUNK) return send(request, reply, JSON.stringify({ [resource.plural]: shape(page) }), headers);
        const end = Math.min(query.offset + query.limit, page.total);
        async function* chunks(): AsyncGenerator<string> {
          yield `{${JSON.stringify(resource.plural)}:[`;
          let current = page;
          let at = query.offset;
          let separator = "";
          for (;;) {
            const records = shape(current);
            if (records.length > 0) yield separator + records.map((record) => JSON.stringify(record)).join(",");
            separator = ",";
            at += current.rows.length;
            if (at >= end || current.rows.length === 0) break;
            await nextTurn();
            if (reader.version(district.id) !== version) throw new Error("The roster changed while a large page was being sent; the page was cut off.");
            current = read(Math.min(PAGE_CHUNK, end - at), at);
          }
          yield "]}";
        }
        return reply.headers(headers).type("application/json; charset=utf-8").send(Readable.from(chunks()));
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
        api.get(
          `/${path}`,
          { schema: { ...doc(`OneRoster ${path} (paged: limit, offset, sort, orderBy, filter, fields)`), params: SlugParams, querystring: ListQuerySchema } },
          async (request, reply) => sendList(request, reply, resource, request.query),
        );
        api.get(`/${path}/:id`, { schema: { ...doc(`One of the OneRoster ${path} by sourcedId`), params: IdParams, querystring: FieldsQuerySchema } }, async (request, reply) =>
          sendOne(request, reply, resource, request.params.id, request.query.fields),
        );
      }
      // get{Enrollments,Students,Teachers}ForClassInSchool: the class's members, when the class is the school's.
      for (const member of CLASS_MEMBERS) {
        api.get(
          `/schools/:schoolId/classes/:classId/${member.child}`,
          { schema: { ...doc(`OneRoster ${member.child} of a class of a school`), params: SchoolClassParams, querystring: ListQuerySchema } },
          async (request, reply) => {
            const { schoolId, classId } = request.params;
            if (!reader.exists(request.district!, SCHOOLS, schoolId)) throw new RosterdockError("ERR_ONEROSTER_NOT_FOUND", `No school has sourcedId ${schoolId}.`, { sourcedId: schoolId });
            const cls = reader.get(request.district!, CLASSES, classId, ["school"]);
            if (cls === undefined || String(cls.row.school_id) !== schoolId) {
              throw new RosterdockError("ERR_ONEROSTER_NOT_FOUND", `School ${schoolId} has no class with sourcedId ${classId}.`, { sourcedId: classId });
            }
            return sendList(request, reply, member.resource, request.query, { sql: member.scope, params: { parent: classId } });
          },
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
