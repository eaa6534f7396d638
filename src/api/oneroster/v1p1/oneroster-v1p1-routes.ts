import type { FastifyInstance } from "fastify";
import type { Authenticator } from "../../authenticator.ts";
import { ACADEMIC_SESSIONS, CLASSES, COURSES, DEMOGRAPHICS, ENROLLMENTS, GRADING_PERIODS, ORGS, SCHOOLS, STUDENTS, TEACHERS, USERS, type Resource } from "../oneroster-resources.ts";
import { NESTED, type Nested } from "../oneroster-routes.ts";
import type { RosterReader } from "../roster-reader.ts";
import { FieldsQuerySchema, IdParams, ListQuerySchema, SchoolClassParams, SlugParams, registerRosteringService, type RosteringVersion } from "../rostering-service.ts";
import {
  V1P1_ACADEMIC_SESSIONS,
  V1P1_CLASSES,
  V1P1_COURSES,
  V1P1_DEMOGRAPHICS,
  V1P1_ENROLLMENTS,
  V1P1_GRADING_PERIODS,
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

/** Top-level collections of the 1.1 rostering service; `terms` are the academic sessions, as in 1.2. */
const COLLECTIONS: ReadonlyArray<readonly [path: string, resource: Resource]> = [
  ["academicSessions", V1P1_ACADEMIC_SESSIONS],
  ["classes", V1P1_CLASSES],
  ["courses", V1P1_COURSES],
  ["demographics", V1P1_DEMOGRAPHICS],
  ["gradingPeriods", V1P1_GRADING_PERIODS],
  ["enrollments", V1P1_ENROLLMENTS],
  ["orgs", V1P1_ORGS],
  ["schools", V1P1_SCHOOLS],
  ["students", V1P1_STUDENTS],
  ["teachers", V1P1_TEACHERS],
  ["terms", V1P1_ACADEMIC_SESSIONS],
  ["users", V1P1_USERS],
];

/** The 1.1 resource for each 1.2 one. */
const V1P1_OF: ReadonlyMap<Resource, Resource> = new Map([
  [ORGS, V1P1_ORGS],
  [SCHOOLS, V1P1_SCHOOLS],
  [ACADEMIC_SESSIONS, V1P1_ACADEMIC_SESSIONS],
  [GRADING_PERIODS, V1P1_GRADING_PERIODS],
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

/** Each 1.1 nested operation: 1.2's restriction, over the 1.1 resources. */
function nestedRoutes(): Array<Nested & { parentV1p1: Resource; resourceV1p1: Resource }> {
  return NESTED_PATHS.map((path) => {
    const [parent, child] = path.split("/") as [string, string];
    const nested = NESTED.find((n) => n.parent === parent && n.child === child);
    const parentV1p1 = nested === undefined ? undefined : V1P1_OF.get(nested.parentResource);
    const resourceV1p1 = nested === undefined ? undefined : V1P1_OF.get(nested.resource);
    if (nested === undefined || parentV1p1 === undefined || resourceV1p1 === undefined) throw new Error(`OneRoster 1.1: no restriction for ${path}`);
    return { ...nested, parentV1p1, resourceV1p1 };
  });
}

/** OneRoster 1.1: its status vocabulary, references under its base URL, its field names, and pages of at most 10,000 records. */
const V1P1: RosteringVersion = {
  prefix: ONEROSTER_V1P1_PREFIX,
  tag: "oneroster-v1p1",
  name: "OneRoster 1.1",
  status: v1p1Status,
  refs: v1p1RefBuilder,
  translate: { filter: v1p1Filter, sort: v1p1FieldName },
  largePages: "cap",
};

/**
 * OneRoster 1.1 rostering, read-only, per district, at `/districts/{slug}/ims/oneroster/v1p1`:
 * the same roster, SQL, filters, sorts, paging and per-version response cache as 1.2, with 1.1's
 * operations, record shapes, hrefs and status codes. Scopes as for 1.2 (1.1's scope URIs name
 * the same scopes). A `limit` above 10,000 is answered with 10,000 records and a `next` link.
 */
export async function registerOneRosterV1p1Routes(app: FastifyInstance, options: { auth: Authenticator; reader: RosterReader; publicUrl: string }): Promise<void> {
  await registerRosteringService(app, options, V1P1, ({ api, reader, doc, list, one, notFound, requireClassInSchool }) => {
    for (const [path, resource] of COLLECTIONS) {
      api.get(`/${path}`, { schema: { ...doc(`${path} (paged: limit, offset, sort, orderBy, filter, fields)`), params: SlugParams, querystring: ListQuerySchema } }, async (request, reply) =>
        list(request, reply, resource, request.query),
      );
      api.get(`/${path}/:id`, { schema: { ...doc(`one of the ${path} by sourcedId`), params: IdParams, querystring: FieldsQuerySchema } }, async (request, reply) =>
        one(request, reply, resource, request.params.id, request.query.fields),
      );
    }
    for (const nested of nestedRoutes()) {
      api.get(`/${nested.parent}/:id/${nested.child}`, { schema: { ...doc(`${nested.child} of one of the ${nested.parent}`), params: IdParams, querystring: ListQuerySchema } }, async (request, reply) => {
        const id = request.params.id;
        if (!(await reader.exists(request.district!, nested.parentV1p1, id))) throw notFound(nested.parentV1p1, id);
        return list(request, reply, nested.resourceV1p1, request.query, { sql: nested.scope, params: { parent: id, ...(nested.params?.(id) ?? {}) } });
      });
    }
    // getEnrollmentsForClassInSchool, getStudentsForClassInSchool, getTeachersForClassInSchool: 1.2's class restrictions.
    for (const child of ["enrollments", "students", "teachers"] as const) {
      const member = NESTED.find((n) => n.parent === "classes" && n.child === child);
      const resource = member === undefined ? undefined : V1P1_OF.get(member.resource);
      if (member === undefined || resource === undefined) throw new Error(`OneRoster 1.1: no restriction for classes/${child}`);
      api.get(`/schools/:schoolId/classes/:classId/${child}`, { schema: { ...doc(`${child} of a class of a school`), params: SchoolClassParams, querystring: ListQuerySchema } }, async (request, reply) => {
        const { schoolId, classId } = request.params;
        await requireClassInSchool(request, V1P1_SCHOOLS, V1P1_CLASSES, schoolId, classId);
        return list(request, reply, resource, request.query, { sql: member.scope, params: { parent: classId, ...(member.params?.(classId) ?? {}) } });
      });
    }
  });
}
