import { RosterdockError, type ErrorCode } from "../../../errors.ts";
import type { FilterExpression } from "../oneroster-filter.ts";
import {
  ACADEMIC_SESSIONS,
  CLASSES,
  COURSES,
  DEMOGRAPHICS,
  GRADING_PERIODS,
  ENROLLMENTS,
  ORGS,
  SCHOOLS,
  STUDENTS,
  TEACHERS,
  USERS,
  refBuilder,
  type FieldDef,
  type Ref,
  type RefBuilder,
  type Resource,
  type Row,
} from "../oneroster-resources.ts";
import { CATEGORY_CODE_MINOR, statusInfo } from "../rostering-service.ts";

/**
 * OneRoster 1.1 over the same roster as 1.2: each 1.1 resource is the 1.2 resource (its arms,
 * keys, lookups, filters and sorts) with the fields 1.1 defines. Orgs, academic sessions, courses,
 * classes and enrollments have the same fields in both versions; users have one `role` in 1.1's
 * RoleType and `orgs` instead of 1.2's `roles` and `primaryOrg`.
 */

/** The 1.2 resource with only the named fields, in that order; a name 1.2 no longer has is a programming error caught at load. */
function withFields(resource: Resource, names: readonly string[], own: Readonly<Record<string, FieldDef>> = {}): Resource {
  const fields: Record<string, FieldDef> = {};
  for (const name of names) {
    const def = own[name] ?? resource.fields[name];
    if (def === undefined) throw new Error(`OneRoster 1.1 ${resource.plural}: the 1.2 resource has no field ${name}`);
    fields[name] = def.hidden ? { ...def, hidden: false } : def;
  }
  return { ...resource, fields };
}

/** 1.1's RoleType (§4.13.5 of the 1.1 specification). */
export const V1P1_ROLES = ["administrator", "aide", "guardian", "parent", "proctor", "relative", "student", "teacher"] as const;

/** A stored role in 1.1's vocabulary: 1.2's two administrators are 1.1's one. */
export function v1p1Role(role: unknown): string {
  const value = String(role);
  if (value === "districtAdministrator" || value === "siteAdministrator" || value === "principal") return "administrator";
  return value;
}

/** A user's orgs: their schools, the primary one first, or the district for staff without a school. */
function userOrgs(row: Row, refs: RefBuilder): Ref[] {
  const schools = JSON.parse(String(row.school_ids ?? "[]")) as string[];
  const primary = row.school_id == null ? undefined : String(row.school_id);
  const ordered = primary === undefined ? schools : [primary, ...schools.filter((s) => s !== primary)];
  return (ordered.length > 0 ? ordered : [refs.districtOrgId]).map((org) => refs.ref("orgs", org));
}

const userFields: Record<string, FieldDef> = {
  role: { uses: ["role"], build: (row) => v1p1Role(row.role), filter: { column: "role" }, sort: ["role"] },
  orgs: { uses: ["school_id", "school_ids"], build: userOrgs, filter: { column: "school_id" }, sort: ["school_id"] },
};

const USER_FIELDS = [
  "sourcedId",
  "status",
  "dateLastModified",
  "username",
  "userIds",
  "enabledUser",
  "givenName",
  "familyName",
  "middleName",
  "role",
  "identifier",
  "email",
  "agents",
  "orgs",
  "grades",
] as const;

export const V1P1_ORGS = withFields(ORGS, ["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parent", "children"]);
export const V1P1_SCHOOLS = withFields(SCHOOLS, Object.keys(V1P1_ORGS.fields));
export const V1P1_ACADEMIC_SESSIONS = withFields(ACADEMIC_SESSIONS, ["sourcedId", "status", "dateLastModified", "title", "startDate", "endDate", "type", "parent", "children", "schoolYear"]);
export const V1P1_GRADING_PERIODS = withFields(GRADING_PERIODS, Object.keys(V1P1_ACADEMIC_SESSIONS.fields));
export const V1P1_COURSES = withFields(COURSES, ["sourcedId", "status", "dateLastModified", "title", "courseCode", "grades", "subjects", "org"]);
export const V1P1_CLASSES = withFields(CLASSES, ["sourcedId", "status", "dateLastModified", "title", "classCode", "classType", "location", "grades", "subjects", "course", "school", "terms", "periods"]);
export const V1P1_USERS = withFields(USERS, USER_FIELDS, userFields);
export const V1P1_STUDENTS = withFields(STUDENTS, USER_FIELDS, userFields);
export const V1P1_TEACHERS = withFields(TEACHERS, USER_FIELDS, userFields);
/** 1.1's Gender has only `male` and `female`: other values are left out, as an unknown sex. */
export const V1P1_DEMOGRAPHICS = withFields(DEMOGRAPHICS, ["sourcedId", "status", "dateLastModified", "birthDate", "sex"], {
  sex: { ...DEMOGRAPHICS.fields.sex!, build: (row) => (row.sex === "male" || row.sex === "female" ? row.sex : undefined) },
});
export const V1P1_ENROLLMENTS = withFields(ENROLLMENTS, ["sourcedId", "status", "dateLastModified", "user", "class", "school", "role", "primary", "beginDate", "endDate"]);

/**
 * A dotted filter or sort name (`org.sourcedId`, `orgs.sourcedId`, `school.sourcedId`) as the
 * field it names; other names are left as they are, for the shared compiler to accept or refuse.
 */
export function v1p1FieldName(resource: Resource, name: string): string {
  const head = name.replace(/\.sourcedId$/, "");
  return head !== name && resource.fields[head] !== undefined ? head : name;
}

export function v1p1Filter(resource: Resource, filter: FilterExpression): FilterExpression {
  if (filter.kind === "predicate") return { ...filter, field: v1p1FieldName(resource, filter.field) };
  return { ...filter, clauses: filter.clauses.map((clause) => v1p1Filter(resource, clause)) };
}

export const V1P1_PATH = "ims/oneroster/v1p1";

/** References under the district's OneRoster 1.1 base URL; the district itself is org `district-<slug>`, as in 1.2. */
export function v1p1RefBuilder(publicUrl: string, slug: string, appliedAt: (syncId: number) => string | null): RefBuilder {
  return refBuilder(publicUrl, slug, appliedAt, V1P1_PATH);
}

/** 1.1's imsx_CodeMinor values (the 1.1 specification's status codes, with its `invalid_sort_field`). */
export const V1P1_CODE_MINOR_VALUES = [
  "fullsuccess",
  "invalid_filter_field",
  "invalid_selection_field",
  "invalid_sort_field",
  "invaliddata",
  "unauthorisedrequest",
  "forbidden",
  "server_busy",
  "unknownobject",
  "internal_server_error",
] as const;
export type V1p1CodeMinor = (typeof V1P1_CODE_MINOR_VALUES)[number];

const CODE_MINOR: Partial<Record<ErrorCode, V1p1CodeMinor>> = {
  ERR_ONEROSTER_INVALID_FILTER: "invalid_filter_field",
  ERR_ONEROSTER_INVALID_SORT: "invalid_sort_field",
  ERR_ONEROSTER_INVALID_FIELDS: "invalid_selection_field",
};

/** An error as a OneRoster 1.1 `imsx_StatusInfo`. */
export function v1p1Status(error: RosterdockError): Record<string, unknown> {
  return statusInfo(error, CODE_MINOR[error.code] ?? CATEGORY_CODE_MINOR[error.category]);
}
