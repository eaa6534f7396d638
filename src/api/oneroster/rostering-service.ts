import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { Readable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import { RosterdockError, type ErrorCategory } from "../../errors.ts";
import { rosteringScope } from "../../tokens/token-scopes.ts";
import type { Authenticator } from "../authenticator.ts";
import { registerErrorHandler } from "../http-errors.ts";
import { parseFilter, type FilterExpression } from "./oneroster-filter.ts";
import { shapeRecord, type RefBuilder, type Resource } from "./oneroster-resources.ts";
import type { Scope } from "./oneroster-sql.ts";
import type { AppliedAt, RosterReader } from "./roster-reader.ts";
import { ResponseCache } from "./response-cache.ts";

/**
 * Records a page is built of at once. A larger `limit` is honoured by versions that stream
 * (sent in chunks of this many, each read in its own transaction, and cut off — the client sees
 * a truncated body, never a mixed one — if a sync changes the roster meanwhile), and capped to
 * this many, with a `next` link, by the others.
 */
export const PAGE_CHUNK = 10_000;

export const ListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).default(100),
  offset: z.coerce.number().int().min(0).default(0),
  sort: z.string().optional(),
  orderBy: z.enum(["asc", "desc"]).default("asc"),
  filter: z.string().optional(),
  fields: z.string().optional(),
});
export type ListQueryParams = z.infer<typeof ListQuerySchema>;
export const FieldsQuerySchema = z.object({ fields: z.string().optional() });
export const SlugParams = z.object({ slug: z.string() });
export const IdParams = z.object({ slug: z.string(), id: z.string() });
export const SchoolClassParams = z.object({ slug: z.string(), schoolId: z.string(), classId: z.string() });

/** The status code of an error without one of its own, by category: the same in 1.1 and 1.2. */
export const CATEGORY_CODE_MINOR = {
  invalid_input: "invaliddata",
  not_found: "unknownobject",
  conflict: "invaliddata",
  unauthenticated: "unauthorisedrequest",
  forbidden: "forbidden",
  limit: "invaliddata",
  throttled: "server_busy",
  unavailable: "server_busy",
  internal: "internal_server_error",
} as const satisfies Readonly<Record<ErrorCategory, string>>;

/** An error as OneRoster's `imsx_StatusInfo`, with the version's status code. */
export function statusInfo(error: RosterdockError, codeMinor: string): Record<string, unknown> {
  return {
    imsx_codeMajor: "failure",
    imsx_severity: "error",
    imsx_description: error.message,
    imsx_CodeMinor: { imsx_codeMinorField: [{ imsx_codeMinorFieldName: "TargetEndSystem", imsx_codeMinorFieldValue: codeMinor }] },
  };
}

/** What tells one OneRoster version's rostering service from another: the roster, SQL, paging and cache are shared. */
export interface RosteringVersion {
  /** Route prefix, with `:slug`. */
  readonly prefix: string;
  /** OpenAPI tag and the name in route summaries. */
  readonly tag: string;
  readonly name: string;
  /** An error as the version's `imsx_StatusInfo`. */
  readonly status: (error: RosterdockError) => Record<string, unknown>;
  /** References under the version's base URL. */
  readonly refs: (publicUrl: string, slug: string, appliedAt: AppliedAt) => RefBuilder;
  /** A filter and sort written in the version's field names, in the shared resources' names. */
  readonly translate?: { filter(resource: Resource, filter: FilterExpression): FilterExpression; sort(resource: Resource, sort: string): string };
  /** Pages above PAGE_CHUNK records: streamed, or capped with a `next` link. */
  readonly largePages: "stream" | "cap";
}

const withZod = (app: FastifyInstance) => app.withTypeProvider<ZodTypeProvider>();
type ZodApi = ReturnType<typeof withZod>;

/** What a version's routes are written with. */
export interface RosteringRoutes {
  readonly api: ZodApi;
  readonly reader: RosterReader;
  /** Summary and tag of a route in the OpenAPI document. */
  doc(summary: string): { tags: string[]; summary: string };
  list(request: FastifyRequest, reply: FastifyReply, resource: Resource, query: ListQueryParams, scope?: Scope): FastifyReply | Promise<FastifyReply>;
  one(request: FastifyRequest, reply: FastifyReply, resource: Resource, id: string, fields: string | undefined): Promise<FastifyReply>;
  notFound(resource: Resource, id: string): RosterdockError;
  /** 404 unless the district has the school and the class is the school's. */
  requireClassInSchool(request: FastifyRequest, schools: Resource, classes: Resource, schoolId: string, classId: string): Promise<void>;
}

declare module "fastify" {
  interface FastifyRequest {
    district?: { id: number; slug: string };
    cacheKey?: string;
  }
}

/**
 * One OneRoster version's rostering service, read-only, per district: the token's scope for the
 * route (`roster-core.readonly`, `roster-demographics.readonly` for demographics), the district,
 * and the response cache. Bodies are JSON strings built here rather than through a response
 * schema: a page of 10,000 users would otherwise be validated twice. Finished responses are
 * cached per roster version, with an ETag, since a roster changes only when a sync is applied or
 * rolled back (or its removed records are purged).
 */
export async function registerRosteringService(
  app: FastifyInstance,
  options: { auth: Authenticator; reader: RosterReader; publicUrl: string },
  version: RosteringVersion,
  routes: (r: RosteringRoutes) => void,
): Promise<void> {
  const { auth, reader, publicUrl } = options;
  await app.register(
    async (scoped) => {
      registerErrorHandler(scoped, (error) => version.status(error));
      if (!scoped.hasRequestDecorator("district")) scoped.decorateRequest("district", undefined);
      if (!scoped.hasRequestDecorator("cacheKey")) scoped.decorateRequest("cacheKey", undefined);
      const cache = new ResponseCache();
      /**
       * Sends a finished body and remembers it for the next identical request, under the roster
       * version it was read at (a sync applied since the request's cache lookup moves it on).
       */
      const send = (request: FastifyRequest, reply: FastifyReply, rosterVersion: string, body: string, headers: Record<string, string>) => {
        const key = ResponseCache.key(request.district!.id, rosterVersion, request.url);
        const etag = ResponseCache.etag(key);
        cache.set(key, { body, headers, etag });
        return reply.headers(headers).header("etag", etag).type("application/json; charset=utf-8").send(body);
      };
      scoped.addHook("onRequest", async (request, reply) => {
        const slug = (request.params as { slug?: string }).slug ?? "";
        await auth.require(request, rosteringScope(request.routeOptions.url ?? request.url), slug);
        const district = await reader.district(slug);
        if (district === undefined) throw new RosterdockError("ERR_DISTRICT_NOT_FOUND", `No district has slug ${slug}.`);
        request.district = district;
        // A page asked for before, at this roster version: the same bytes, or 304 to a client that has them.
        // The version is read from the database on every request: another node may have applied a sync.
        const key = ResponseCache.key(district.id, await reader.version(district.id), request.url);
        request.cacheKey = key;
        const cached = cache.get(key);
        if (cached === undefined) return;
        if (request.headers["if-none-match"] === cached.etag) return reply.code(304).header("etag", cached.etag).send();
        return reply.headers(cached.headers).header("etag", cached.etag).type("application/json; charset=utf-8").send(cached.body);
      });

      const notFound = (resource: Resource, id: string) => new RosterdockError("ERR_ONEROSTER_NOT_FOUND", `No ${resource.singular} has sourcedId ${id}.`, { sourcedId: id });

      const list = async (request: FastifyRequest, reply: FastifyReply, resource: Resource, query: ListQueryParams, scope?: Scope) => {
        const district = request.district!;
        const filter = query.filter === undefined || query.filter.trim() === "" ? undefined : parseFilter(query.filter);
        const listQuery = {
          resource,
          scope,
          filter: filter === undefined || version.translate === undefined ? filter : version.translate.filter(resource, filter),
          sort: query.sort === undefined || version.translate === undefined ? query.sort : version.translate.sort(resource, query.sort),
          orderBy: query.orderBy,
          fields: splitFields(query.fields),
        };
        const limit = version.largePages === "cap" ? Math.min(query.limit, PAGE_CHUNK) : query.limit;
        const read = (count: number, offset: number) => reader.list(district, listQuery, count, offset);
        const shape = (page: Awaited<ReturnType<typeof read>>) => {
          const refs = version.refs(publicUrl, district.slug, page.appliedAt);
          return page.rows.map((row) => shapeRecord(resource, page.fields, row, refs));
        };
        const page = await read(Math.min(limit, PAGE_CHUNK), query.offset);
        const headers: Record<string, string> = { "x-total-count": String(page.total) };
        const link = linkHeader(publicUrl, request.url, page.total, limit, query.offset);
        if (link) headers.link = link;
        if (limit <= PAGE_CHUNK) return send(request, reply, page.version, JSON.stringify({ [resource.plural]: shape(page) }), headers);
        const end = Math.min(query.offset + limit, page.total);
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
            current = await read(Math.min(PAGE_CHUNK, end - at), at);
            if (current.version !== page.version) throw new Error("The roster changed while a large page was being sent; the page was cut off.");
          }
          yield "]}";
        }
        return reply.headers(headers).type("application/json; charset=utf-8").send(Readable.from(chunks()));
      };

      const one = async (request: FastifyRequest, reply: FastifyReply, resource: Resource, id: string, fields: string | undefined) => {
        const district = request.district!;
        const found = await reader.get(district, resource, id, splitFields(fields));
        if (found === undefined) throw notFound(resource, id);
        const record = shapeRecord(resource, found.fields, found.row, version.refs(publicUrl, district.slug, found.appliedAt));
        return send(request, reply, found.version, JSON.stringify({ [resource.singular]: record }), {});
      };

      const requireClassInSchool = async (request: FastifyRequest, schools: Resource, classes: Resource, schoolId: string, classId: string) => {
        if (!(await reader.exists(request.district!, schools, schoolId))) throw notFound(schools, schoolId);
        const found = await reader.get(request.district!, classes, classId, ["school"]);
        if (found === undefined || String(found.row.school_id) !== schoolId) {
          throw new RosterdockError("ERR_ONEROSTER_NOT_FOUND", `School ${schoolId} has no class with sourcedId ${classId}.`, { sourcedId: classId });
        }
      };

      routes({
        api: withZod(scoped),
        reader,
        doc: (summary) => ({ tags: [version.tag], summary: `${version.name} ${summary}` }),
        list,
        one,
        notFound,
        requireClassInSchool,
      });
    },
    { prefix: version.prefix },
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
