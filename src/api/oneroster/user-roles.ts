import type { FieldFilter, Row } from "./oneroster-resources.ts";

/** OneRoster 1.2's RoleEnum (RoleDType.role), as 1EdTech's OpenAPI document lists it. */
export const ONEROSTER_ROLES = [
  "aide",
  "counselor",
  "districtAdministrator",
  "guardian",
  "parent",
  "principal",
  "proctor",
  "relative",
  "siteAdministrator",
  "student",
  "systemAdministrator",
  "teacher",
] as const;
export type OneRosterRole = (typeof ONEROSTER_ROLES)[number];

/**
 * A roster role (roster-spec.ts ROLES) in OneRoster 1.2's vocabulary. An administrator listed at a
 * school administers that school (`siteAdministrator`); one listed at none, the district.
 */
export function oneRosterRole(role: string, atSchool: boolean): OneRosterRole {
  switch (role) {
    case "student":
    case "teacher":
    case "aide":
      return role;
    case "administrator":
      return atSchool ? "siteAdministrator" : "districtAdministrator";
    default:
      throw new Error(`No OneRoster role for the roster role ${role}`);
  }
}

export interface UserRole {
  roleType: "primary" | "secondary";
  role: OneRosterRole;
  /** The org's sourcedId. */
  org: string;
}

/** The schools a user row lists (`school_ids`, a JSON array). */
export function userSchools(row: Row): string[] {
  return JSON.parse(String(row.school_ids ?? "[]")) as string[];
}

/**
 * A user's roles: one per org the user is listed at (each school, or the district when none),
 * each the org's one primary role, as 1.2 requires. A person has one roster role, so it is the
 * same role at each school: a teacher at two schools is a primary teacher at both.
 */
export function userRoles(row: Row, districtOrgId: string): UserRole[] {
  const schools = userSchools(row);
  const role = oneRosterRole(String(row.role), schools.length > 0);
  return (schools.length > 0 ? schools : [districtOrgId]).map((org) => ({ roleType: "primary", role, org }));
}

/** SQL: the user row is listed at a school (else its org is the district). */
const atSchool = (col: (column: string) => string) => `${col("school_ids")} <> '[]'`;

/** SQL for the user's OneRoster role, for comparisons other than equality. */
export const oneRosterRoleSql = (role: string, schoolIds: string) =>
  `CASE WHEN ${role} = 'administrator' THEN CASE WHEN ${schoolIds} <> '[]' THEN 'siteAdministrator' ELSE 'districtAdministrator' END ELSE ${role} END`;

/**
 * `roles.role`: equality goes to the indexed roster role, the administrators split by whether
 * they are at a school. With `compatible`, the roster's own `administrator` (the old `role`
 * filter's value) still finds every administrator.
 */
export function roleFilter(compatible: boolean): FieldFilter {
  return {
    column: "oneroster_role",
    compile: (op, param, col, value) => {
      if (op !== "=" && op !== "!=") return undefined;
      let match: string;
      if (value === "siteAdministrator") match = `(${col("role")} = 'administrator' AND ${atSchool(col)})`;
      else if (value === "districtAdministrator") match = `(${col("role")} = 'administrator' AND NOT ${atSchool(col)})`;
      else if (value === "student" || value === "teacher" || value === "aide" || (compatible && value === "administrator")) match = `${col("role")} = ${param}`;
      else match = "(1 = 0)";
      return op === "=" ? match : `NOT ${match}`;
    },
  };
}

/**
 * `roles.org.sourcedId`: any of the user's orgs. Equality looks the users up through the school
 * indexes (users by their school, staff by each of their staff ids' schools), so a school of a
 * large district costs its own users, not the district's.
 */
export const roleOrgFilter: FieldFilter = {
  column: "sourced_id",
  compile: (op, param, col) => {
    if (op === "=" || op === "!=") {
      const users =
        `SELECT ro.user_key FROM roster_users ro WHERE ro.district_id = @d AND ro.school_id = ${param} ` +
        `UNION ALL SELECT rs.user_key FROM roster_staff_ids rs WHERE rs.district_id = @d AND rs.school_id = ${param} ` +
        `UNION ALL SELECT rd.user_key FROM roster_users rd WHERE ${param} = 'district-' || @slug AND rd.district_id = @d AND rd.school_ids = '[]'`;
      return `${col("sourced_id")} ${op === "=" ? "IN" : "NOT IN"} (${users})`;
    }
    const org = op === "~" ? `rd_contains(ro.value, ${param})` : `rd_bytes(ro.value) ${op} ${param}`;
    return `EXISTS (SELECT 1 FROM rd_json_each(CASE WHEN ${col("school_ids")} = '[]' THEN rd_json_array('district-' || @slug) ELSE ${col("school_ids")} END, ro) WHERE ${org})`;
  },
};
