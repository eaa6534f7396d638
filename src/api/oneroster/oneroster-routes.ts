import type { FastifyInstance } from "fastify";
import type { RosterdockError, ErrorCode } from "../../errors.ts";
import type { Authenticator } from "../authenticator.ts";
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
  type Resource,
} from "./oneroster-resources.ts";
import type { RosterReader } from "./roster-reader.ts";
import { CATEGORY_CODE_MINOR, FieldsQuerySchema, IdParams, ListQuerySchema, SchoolClassParams, SlugParams, registerRosteringService, statusInfo, type RosteringVersion } from "./rostering-service.ts";

export const ONEROSTER_PREFIX = "/districts/:slug/ims/oneroster/rostering/v1p2";

/** Top-level collections; `terms` lists every academic session, as `academicSessions` does. */
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
    scope: (col) => `rd_one_of(${col("sourced_id")}, SELECT 'student-' || ce.student_id FROM roster_enrollments ce WHERE ce.district_id = @d AND ce.class_id = @parent)`,
  },
  {
    child: "teachers",
    resource: TEACHERS,
    scope: (col) => `rd_one_of(${col("sourced_id")}, SELECT ct.teacher_key FROM roster_classes ct WHERE ct.district_id = @d AND ct.class_id = @parent)`,
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

/** An error's OneRoster status code. */
export function codeMinor(error: RosterdockError): CodeMinor {
  return CODE_MINOR[error.code] ?? CATEGORY_CODE_MINOR[error.category];
}

/** An error as OneRoster's `imsx_StatusInfo`. */
export function imsxStatus(error: RosterdockError): Record<string, unknown> {
  return statusInfo(error, codeMinor(error));
}

/** OneRoster 1.2: its status vocabulary and references under its base URL. */
const V1P2: RosteringVersion = { prefix: ONEROSTER_PREFIX, tag: "oneroster", name: "OneRoster", status: imsxStatus, refs: refBuilder, largePages: "stream" };

/**
 * OneRoster 1.2 rostering, read-only, per district: every operation of 1EdTech's 1.2 rostering
 * service (see rostering-service.ts for what all versions share: scopes, paging, cache).
 */
export async function registerOneRosterRoutes(app: FastifyInstance, options: { auth: Authenticator; reader: RosterReader; publicUrl: string }): Promise<void> {
  await registerRosteringService(app, options, V1P2, ({ api, reader, doc, list, one, notFound, requireClassInSchool }) => {
    for (const [path, resource] of COLLECTIONS) {
      api.get(`/${path}`, { schema: { ...doc(`${path} (paged: limit, offset, sort, orderBy, filter, fields)`), params: SlugParams, querystring: ListQuerySchema } }, async (request, reply) =>
        list(request, reply, resource, request.query),
      );
      api.get(`/${path}/:id`, { schema: { ...doc(`one of the ${path} by sourcedId`), params: IdParams, querystring: FieldsQuerySchema } }, async (request, reply) =>
        one(request, reply, resource, request.params.id, request.query.fields),
      );
    }
    // get{Enrollments,Students,Teachers}ForClassInSchool: the class's members, when the class is the school's.
    for (const member of CLASS_MEMBERS) {
      api.get(
        `/schools/:schoolId/classes/:classId/${member.child}`,
        { schema: { ...doc(`${member.child} of a class of a school`), params: SchoolClassParams, querystring: ListQuerySchema } },
        async (request, reply) => {
          const { schoolId, classId } = request.params;
          await requireClassInSchool(request, SCHOOLS, CLASSES, schoolId, classId);
          return list(request, reply, member.resource, request.query, { sql: member.scope, params: { parent: classId } });
        },
      );
    }
    for (const nested of NESTED) {
      api.get(`/${nested.parent}/:id/${nested.child}`, { schema: { ...doc(`${nested.child} of one of the ${nested.parent}`), params: IdParams, querystring: ListQuerySchema } }, async (request, reply) => {
        const id = request.params.id;
        if (!(await reader.exists(request.district!, nested.parentResource, id))) throw notFound(nested.parentResource, id);
        return list(request, reply, nested.resource, request.query, { sql: nested.scope, params: { parent: id, ...(nested.params?.(id) ?? {}) } });
      });
    }
  });
}
