/**
 * How each OneRoster 1.2 resource is read from the roster tables. A resource is a virtual table:
 * named logical columns, each an SQL expression in every arm (a SELECT over roster tables; the
 * enrollments resource has two arms, students from roster_enrollments and teachers synthesised
 * from roster_classes). OneRoster fields name the logical columns they are built from, filtered
 * on and sorted by, so `filter`, `sort` and `fields` become SQL over indexed columns.
 *
 * Records a sync or a rollback removed are read by tombstone arms (see `tombstoneArm`), made
 * from the live arms, with `status` 'tobedeleted'.
 *
 * `@d` is the district id and `@slug` its slug in every statement. Names and titles sort by their
 * collation key (sync/collation-key.ts): stored beside users' given and family names, computed by
 * the reader's `rd_key()` for the others (small tables). The SQL is written for both dialects (see
 * roster-sql-dialect.ts).
 */

import { oneRosterRoleSql, roleFilter, roleOrgFilter, userRoles } from "./user-roles.ts";

export type Row = Record<string, unknown>;

export interface Ref {
  href: string;
  sourcedId: string;
  type: string;
}

/** Builds `{href, sourcedId, type}` references to other records of the district. */
export interface RefBuilder {
  ref(path: RefPath, sourcedId: string): Ref;
  readonly districtOrgId: string;
  /** When a sync was applied; looked up in a per-version map rather than a subquery per row. */
  appliedAt(syncId: number): string | null;
}

export type RefPath = "orgs" | "users" | "classes" | "courses" | "academicSessions" | "enrollments";

export interface Arm {
  /** FROM clause, with table aliases. */
  readonly from: string;
  /** What every row of this arm satisfies (district scoping, role). */
  readonly where: string;
  /** Every logical column of the resource as an SQL expression of this arm. */
  readonly columns: Readonly<Record<string, string>>;
  /** For a tombstone arm, the table it reads: a district with no rows there reads without the arm. */
  readonly tombstones?: string;
}

export type FilterValueType = "string" | "datetime";

export interface FieldFilter {
  /** The logical column compared. */
  readonly column: string;
  readonly type?: FilterValueType;
  /** SQL for the comparison instead of `column op value` (dateLastModified goes through syncs); `value` is the client's. */
  readonly compile?: (op: string, param: string, col: (column: string) => string, value: string) => string | undefined;
}

export interface FieldDef {
  /** Logical columns the value is built from. */
  readonly uses: readonly string[];
  readonly build: (row: Row, refs: RefBuilder) => unknown;
  readonly filter?: FieldFilter;
  /** Logical columns to order by; absent: not sortable. */
  readonly sort?: readonly string[];
  /** Not part of the record: a filter and sort name kept for clients that use it. */
  readonly hidden?: boolean;
}

export interface Resource {
  /** Key of a list response body (`users`). */
  readonly plural: string;
  /** Key of a single-record body (`user`). */
  readonly singular: string;
  /** Where references to it point. */
  readonly path: RefPath;
  readonly arms: readonly Arm[];
  /** Logical columns giving a total order (the tie-breaker of every sort). */
  readonly key: readonly string[];
  /** The logical column holding the sourcedId. */
  readonly sourcedId: string;
  /** Conditions on logical columns that find a sourcedId through an index; alternatives are ORed. */
  readonly lookup: (sourcedId: string) => ReadonlyArray<Readonly<Record<string, string>>>;
  /** Logical columns that may be null (a cursor over them cannot use row-value comparisons). */
  readonly nullable: ReadonlySet<string>;
  readonly fields: Readonly<Record<string, FieldDef>>;
  /**
   * Filters by names other than the fields' own, looked up first: dotted names (`roles.role`),
   * the string forms of booleans and enumerations, names kept for older clients (`role`).
   */
  readonly filters?: Readonly<Record<string, FieldFilter>>;
}

// ---- shared pieces ----

/** When a sync was applied: its changeset's time, which a later rollback of the sync does not move. */
const modifiedBy = (alias: string) => `(SELECT cs.created_at FROM roster_changesets cs WHERE cs.sync_id = ${alias}.last_sync_id AND cs.kind = 'apply')`;

/** dateLastModified = when the sync that last changed the record was applied. */
const dateLastModified: FieldDef = {
  uses: ["last_sync_id", "own_modified"],
  build: (row, refs) => (row.last_sync_id == null ? (row.own_modified ?? null) : refs.appliedAt(Number(row.last_sync_id))),
  filter: {
    column: "modified",
    type: "datetime",
    compile: (op, param, col) => {
      if (op === "~") return undefined;
      if (col("last_sync_id") === "NULL") return `rd_bytes(${col("modified")}) ${op === "!=" ? "<>" : op} ${param}`;
      const inverse = op === "!=";
      return `${col("last_sync_id")} ${inverse ? "NOT IN" : "IN"} (SELECT cs.sync_id FROM roster_changesets cs WHERE cs.district_id = @d AND cs.kind = 'apply' AND rd_bytes(cs.created_at) ${inverse ? "=" : op} ${param})`;
    },
  },
  sort: ["modified"],
};

const sourcedIdField = (column: string, sort: readonly string[]): FieldDef => ({ uses: [column], build: (row) => row[column], filter: { column }, sort });
const constant = (value: unknown): FieldDef => ({ uses: [], build: () => value });
const text = (column: string, options: { sortable?: boolean; filterable?: boolean } = {}): FieldDef => ({
  uses: [column],
  build: (row) => row[column] ?? null,
  ...(options.filterable === false ? {} : { filter: { column } }),
  ...(options.sortable === false ? {} : { sort: [column] }),
});
const status: FieldDef = { uses: ["status"], build: (row) => row.status ?? "active", filter: { column: "status" }, sort: ["status"] };

/**
 * The arm reading the tombstones of a live arm's records: the live arm's own column expressions
 * over `tombstones_<table>` (same columns, same alias), but for what says the record went and
 * when: `status` 'tobedeleted' and dateLastModified its removal. Generated, so that every column
 * a live arm gains exists in its tombstone arm too. `table` and `from` replace the mirrored
 * table where it is not the live table's mirror; `columns` overrides columns that read other
 * tables through joins of the live arm.
 */
export function tombstoneArm(live: Arm, options: { table?: string; from?: string; columns?: Record<string, string> } = {}): Arm {
  const match = /^roster_(\w+)\s+(\w+)/.exec(live.from);
  if (match === null) throw new Error(`A tombstone arm mirrors a roster table; this arm reads ${live.from}.`);
  const [, entity, alias] = match;
  const table = options.table ?? `tombstones_${entity}`;
  return {
    from: options.from ?? `${table} ${alias}${live.from.slice(match[0].length)}`,
    where: live.where,
    tombstones: table,
    columns: { ...live.columns, status: "'tobedeleted'", modified: `${alias}.removed_at`, own_modified: `${alias}.removed_at`, last_sync_id: "NULL", ...options.columns },
  };
}

const orgRef = (column: string): FieldDef => ({
  uses: [column],
  build: (row, refs) => (row[column] == null || row[column] === "" ? refs.ref("orgs", refs.districtOrgId) : refs.ref("orgs", String(row[column]))),
  filter: { column },
  sort: [column],
});

/** PowerSchool grade levels (-2…13, or codes) as the CEDS codes OneRoster uses. */
export function cedsGrade(grade: string | null | undefined): string | null {
  if (grade === null || grade === undefined || grade === "") return null;
  const upper = grade.toUpperCase();
  if (["-2", "-1", "P", "PK", "PK3", "PK4", "PR"].includes(upper)) return "PK";
  if (["0", "00", "K", "KG"].includes(upper)) return "KG";
  if (/^\d$/.test(upper)) return `0${upper}`;
  return upper;
}

/** The same mapping in SQL, so `grades='KG'` filters in the database. */
const cedsGradeSql = (column: string) =>
  `CASE WHEN ${column} IS NULL OR ${column} = '' THEN NULL WHEN upper(${column}) IN ('-2','-1','P','PK','PK3','PK4','PR') THEN 'PK' ` +
  `WHEN upper(${column}) IN ('0','00','K','KG') THEN 'KG' WHEN rd_glob(${column}, '[0-9]') THEN '0' || ${column} ELSE upper(${column}) END`;

// ---- orgs ----

const schoolArm: Arm = {
  from: "roster_schools s",
  where: "s.district_id = @d",
  columns: {
    sourced_id: "s.school_id",
    status: "'active'",
    type: "'school'",
    name: "s.school_name",
    name_key: "rd_key(s.school_name)",
    identifier: "coalesce(s.school_number, s.school_id)",
    parent_id: "'district-' || @slug",
    children: "NULL",
    modified: modifiedBy("s"),
    last_sync_id: "s.last_sync_id",
    own_modified: "NULL",
  },
};

const districtArm: Arm = {
  from: "districts dd",
  where: "dd.id = @d",
  columns: {
    sourced_id: "'district-' || dd.slug",
    status: "'active'",
    type: "'district'",
    name: "dd.name",
    name_key: "rd_key(dd.name)",
    identifier: "dd.slug",
    parent_id: "NULL",
    children: "(SELECT rd_json_agg(sc.school_id) FROM (SELECT cs.school_id FROM roster_schools cs WHERE cs.district_id = @d ORDER BY rd_bytes(cs.school_id)) sc)",
    modified: "dd.updated_at",
    own_modified: "dd.updated_at",
    last_sync_id: "NULL",
  },
};

const orgFields: Record<string, FieldDef> = {
  sourcedId: sourcedIdField("sourced_id", ["sourced_id"]),
  status,
  dateLastModified,
  name: { ...text("name"), sort: ["name_key"] },
  type: text("type"),
  identifier: text("identifier"),
  parent: {
    uses: ["parent_id"],
    build: (row, refs) => (row.parent_id == null ? null : refs.ref("orgs", String(row.parent_id))),
    filter: { column: "parent_id" },
    sort: ["parent_id"],
  },
  children: {
    uses: ["children"],
    build: (row, refs) => (row.children == null ? [] : (JSON.parse(String(row.children)) as string[]).map((id) => refs.ref("orgs", id))),
  },
};

const orgLookup = (id: string) => [{ sourced_id: id }];

export const ORGS: Resource = {
  plural: "orgs",
  singular: "org",
  path: "orgs",
  arms: [districtArm, schoolArm, tombstoneArm(schoolArm)],
  key: ["sourced_id"],
  sourcedId: "sourced_id",
  lookup: orgLookup,
  nullable: new Set(["parent_id", "children", "identifier"]),
  fields: orgFields,
};

export const SCHOOLS: Resource = { ...ORGS, arms: [schoolArm, tombstoneArm(schoolArm)] };

// ---- academic sessions ----

/*
 * Academic sessions as the district has them. A PowerSchool term whose id ends in 00 is its school
 * year (TermID = YearID × 100 + n, YearID = first year − 1990: 3600 is 2026–27); otherwise the
 * dates decide: 240 days or more is a school year, 100 days or more (about 4–7 months) a
 * semester, anything shorter a term. A session belongs to the school year its first day falls in
 * (from July 1st on, the year that ends the next summer); `schoolYear` is that year's end, "YYYY".
 * A term or semester's parent is its school's school-year session for that year, else the
 * district-wide one (a term without a school), else the derived district-wide school year
 * `school-year-<YYYY>` ("2026–2027 school year", July 1st to June 30th), which exists for every
 * year a term or a class needs one that the district did not send.
 */

const sessionDays = (start: string, end: string) => `rd_days(${start}, ${end})`;

/** `schoolYear`, `semester` or `term` for a term row (see above). */
export const sessionTypeSql = (id: string, start: string, end: string) =>
  `CASE WHEN rd_glob(${id}, '[1-9][0-9]00') OR ${sessionDays(start, end)} >= 240 THEN 'schoolYear' WHEN ${sessionDays(start, end)} >= 100 THEN 'semester' ELSE 'term' END`;

/** The school year (its ending year, an integer) a YYYY-MM-DD… date falls in. */
export const dateSchoolYearSql = (date: string) => `(CAST(substr(${date}, 1, 4) AS INTEGER) + CASE WHEN CAST(substr(${date}, 6, 2) AS INTEGER) >= 7 THEN 1 ELSE 0 END)`;

/** A PowerSchool term id's school year (YearID = id / 100 = first year − 1990); NULL for other ids. */
const powerSchoolYearSql = (id: string) => `(CASE WHEN rd_glob(${id}, '[1-9][0-9][0-9][0-9]') THEN 1991 + CAST(${id} AS INTEGER) / 100 END)`;

const termSidSql = (alias: string) => `(CASE WHEN ${alias}.school_id = '' THEN ${alias}.term_id ELSE ${alias}.term_id || '-' || ${alias}.school_id END)`;

/** The school-year session of a school and year: the school's own, else the district-wide one, else the derived one. */
export const yearSessionSql = (school: string, year: string) =>
  `coalesce((SELECT ${termSidSql("ys")} FROM roster_terms ys WHERE ys.district_id = @d AND ys.school_id IN (${school}, '') ` +
  `AND ${sessionTypeSql("ys.term_id", "ys.start_date", "ys.end_date")} = 'schoolYear' AND ${dateSchoolYearSql("ys.start_date")} = ${year} ` +
  `ORDER BY rd_bytes(ys.school_id) DESC, rd_bytes(ys.term_id) LIMIT 1), 'school-year-' || ${year})`;

/**
 * A class's session: its school's term of that id, else the district-wide one; a class whose term
 * was never described gets the school year it falls in, from its PowerSchool term id, else from
 * when the class was last applied.
 */
export const classSessionSql = (c: string, appliedAt: string) =>
  `CASE WHEN ${c}.term_id IS NOT NULL AND EXISTS (SELECT 1 FROM roster_terms ct WHERE ct.district_id = ${c}.district_id AND ct.term_id = ${c}.term_id AND ct.school_id = ${c}.school_id) ` +
  `THEN ${c}.term_id || '-' || ${c}.school_id ` +
  `WHEN ${c}.term_id IS NOT NULL AND EXISTS (SELECT 1 FROM roster_terms ct WHERE ct.district_id = ${c}.district_id AND ct.term_id = ${c}.term_id AND ct.school_id = '') THEN ${c}.term_id ` +
  `ELSE ${yearSessionSql(`${c}.school_id`, `coalesce(${powerSchoolYearSql(`${c}.term_id`)}, ${dateSchoolYearSql(appliedAt)})`)} END`;

/** Every session of the district: the terms it sent, typed and parented, and the derived school years. */
const sessionsSql = `(WITH st AS (
    SELECT t.term_id, t.school_id, t.term_name, t.start_date, t.end_date, t.last_sync_id, ${termSidSql("t")} AS sid,
      ${sessionTypeSql("t.term_id", "t.start_date", "t.end_date")} AS kind, ${dateSchoolYearSql("t.start_date")} AS sy
    FROM roster_terms t WHERE t.district_id = @d),
  parented AS (
    SELECT st.*, CASE WHEN st.kind = 'schoolYear' THEN NULL ELSE coalesce((SELECT y.sid FROM st y WHERE y.kind = 'schoolYear' AND y.sy = st.sy AND y.school_id IN (st.school_id, '')
      ORDER BY rd_bytes(y.school_id) DESC, rd_bytes(y.term_id) LIMIT 1), 'school-year-' || st.sy) END AS parent_sid
    FROM st),
  class_sessions AS (
    SELECT ${classSessionSql("cg", "(SELECT cs.created_at FROM roster_changesets cs WHERE cs.sync_id = cg.last_sync_id AND cs.kind = 'apply')")} AS sid, cg.last_sync_id
    FROM (SELECT district_id, term_id, school_id, last_sync_id FROM roster_classes WHERE district_id = @d GROUP BY district_id, term_id, school_id, last_sync_id) cg),
  derived AS (
    SELECT CAST(substr(sid, 13) AS INTEGER) AS sy, max(last_sync_id) AS last_sync_id FROM (
      SELECT parent_sid AS sid, last_sync_id FROM parented WHERE rd_glob(parent_sid, 'school-year-*')
      UNION ALL SELECT sid, last_sync_id FROM class_sessions WHERE rd_glob(sid, 'school-year-*')) ys
    GROUP BY CAST(substr(sid, 13) AS INTEGER))
  SELECT p.sid AS sourced_id, p.term_id, p.school_id, p.term_name AS title, p.start_date, p.end_date, p.kind, CAST(p.sy AS TEXT) AS school_year, p.parent_sid,
    CASE WHEN p.kind = 'schoolYear' THEN (SELECT rd_json_agg(kk.sid) FROM (SELECT k.sid FROM parented k WHERE k.parent_sid = p.sid ORDER BY rd_bytes(k.start_date), rd_bytes(k.term_id)) kk) END AS children,
    p.last_sync_id
  FROM parented p
  UNION ALL
  SELECT 'school-year-' || d.sy, 'school-year-' || d.sy, '', (d.sy - 1) || '–' || d.sy || ' school year', (d.sy - 1) || '-07-01', d.sy || '-06-30', 'schoolYear', CAST(d.sy AS TEXT), NULL,
    (SELECT rd_json_agg(kk.sid) FROM (SELECT k.sid FROM parented k WHERE k.parent_sid = 'school-year-' || d.sy ORDER BY rd_bytes(k.start_date), rd_bytes(k.term_id)) kk),
    d.last_sync_id
  FROM derived d)`;

/** The parent and children of one session (`@sid`), as the academic sessions resource has them. */
export const sessionFamilySql = `SELECT ss.parent_sid, ss.children FROM ${sessionsSql} ss WHERE ss.sourced_id = @sid`;

const sessionArm: Arm = {
  from: `${sessionsSql} ss`,
  where: "1 = 1",
  columns: {
    sourced_id: "ss.sourced_id",
    term_id: "ss.term_id",
    school_id: "ss.school_id",
    status: "'active'",
    title: "ss.title",
    title_key: "rd_key(ss.title)",
    start_date: "ss.start_date",
    end_date: "ss.end_date",
    type: "ss.kind",
    school_year: "ss.school_year",
    parent_id: "ss.parent_sid",
    children: "ss.children",
    modified: "(SELECT cs.created_at FROM roster_changesets cs WHERE cs.sync_id = ss.last_sync_id AND cs.kind = 'apply')",
    last_sync_id: "ss.last_sync_id",
    own_modified: "NULL",
  },
};

/**
 * Terms a sync removed, as `tobedeleted` sessions typed like the live ones. A removed term keeps
 * its school year as `schoolYear` but names no parent or children: those may be gone with it.
 * Derived school years have no tombstones; they exist while a term or class needs them.
 */
const removedTermArm: Arm = {
  from: "tombstones_terms t",
  where: "t.district_id = @d",
  tombstones: "tombstones_terms",
  columns: {
    sourced_id: termSidSql("t"),
    term_id: "t.term_id",
    school_id: "t.school_id",
    status: "'tobedeleted'",
    title: "t.term_name",
    title_key: "rd_key(t.term_name)",
    start_date: "t.start_date",
    end_date: "t.end_date",
    type: sessionTypeSql("t.term_id", "t.start_date", "t.end_date"),
    school_year: `CAST(${dateSchoolYearSql("t.start_date")} AS TEXT)`,
    parent_id: "NULL",
    children: "NULL",
    modified: "t.removed_at",
    last_sync_id: "NULL",
    own_modified: "t.removed_at",
  },
};

/** A school's term is `<term_id>-<school_id>`, a district-wide one (or a derived school year) `<term_id>`. */
export function termLookup(id: string): Array<Record<string, string>> {
  const alternatives: Array<Record<string, string>> = [{ term_id: id, school_id: "" }];
  for (let i = id.indexOf("-"); i > 0; i = id.indexOf("-", i + 1)) alternatives.push({ term_id: id.slice(0, i), school_id: id.slice(i + 1) });
  return alternatives;
}

const sessionRef = (column: string): FieldDef => ({
  uses: [column],
  build: (row, refs) => (row[column] == null ? null : refs.ref("academicSessions", String(row[column]))),
  filter: { column },
  sort: [column],
});

export const ACADEMIC_SESSIONS: Resource = {
  plural: "academicSessions",
  singular: "academicSession",
  path: "academicSessions",
  arms: [sessionArm, removedTermArm],
  key: ["term_id", "school_id"],
  sourcedId: "sourced_id",
  lookup: termLookup,
  nullable: new Set(["parent_id", "children"]),
  fields: {
    sourcedId: sourcedIdField("sourced_id", ["term_id", "school_id"]),
    status,
    dateLastModified,
    title: { ...text("title"), sort: ["title_key"] },
    type: text("type"),
    startDate: text("start_date"),
    endDate: text("end_date"),
    parent: sessionRef("parent_id"),
    children: {
      uses: ["children"],
      build: (row, refs) => (row.children == null ? null : (JSON.parse(String(row.children)) as string[]).map((id) => refs.ref("academicSessions", id))),
    },
    schoolYear: text("school_year"),
    org: { ...orgRef("school_id"), hidden: true },
  },
};

// ---- courses ----

const courseArm: Arm = {
  from: "roster_courses co",
  where: "co.district_id = @d",
  columns: {
    sourced_id: "co.course_id",
    status: "'active'",
    title: "co.course_name",
    title_key: "rd_key(co.course_name)",
    school_id: "co.school_id",
    org_id: "coalesce(nullif(co.school_id, ''), 'district-' || @slug)",
    modified: modifiedBy("co"),
    last_sync_id: "co.last_sync_id",
    own_modified: "NULL",
  },
};

export const COURSES: Resource = {
  plural: "courses",
  singular: "course",
  path: "courses",
  arms: [courseArm, tombstoneArm(courseArm)],
  key: ["sourced_id"],
  sourcedId: "sourced_id",
  lookup: (id) => [{ sourced_id: id }],
  nullable: new Set(["school_id"]),
  fields: {
    sourcedId: sourcedIdField("sourced_id", ["sourced_id"]),
    status,
    dateLastModified,
    title: { ...text("title"), sort: ["title_key"] },
    courseCode: text("sourced_id"),
    grades: constant([]),
    subjects: constant([]),
    org: orgRef("school_id"),
  },
  // The org a course shows: its school, or the district for a course without one.
  filters: { org: { column: "org_id" }, "org.sourcedId": { column: "org_id" } },
};

// ---- classes ----

const classArm: Arm = {
  from: "roster_classes c",
  where: "c.district_id = @d",
  columns: {
    sourced_id: "c.class_id",
    status: "'active'",
    title: "c.class_name",
    title_key: "rd_key(c.class_name)",
    class_code: "c.section_number",
    location: "c.room",
    period: "c.period",
    course_id: "c.course_id",
    school_id: "c.school_id",
    term_id: "c.term_id",
    term_sid: classSessionSql("c", modifiedBy("c")),
    teacher_key: "c.teacher_key",
    class_type: "'scheduled'",
    modified: modifiedBy("c"),
    last_sync_id: "c.last_sync_id",
    own_modified: "NULL",
  },
};

export const CLASSES: Resource = {
  plural: "classes",
  singular: "class",
  path: "classes",
  arms: [classArm, tombstoneArm(classArm)],
  key: ["sourced_id"],
  sourcedId: "sourced_id",
  lookup: (id) => [{ sourced_id: id }],
  nullable: new Set(["class_code", "location", "period", "term_id"]),
  fields: {
    sourcedId: sourcedIdField("sourced_id", ["sourced_id"]),
    status,
    dateLastModified,
    title: { ...text("title"), sort: ["title_key"] },
    classCode: text("class_code"),
    classType: constant("scheduled"),
    location: text("location"),
    grades: constant([]),
    subjects: constant([]),
    course: { uses: ["course_id"], build: (row, refs) => refs.ref("courses", String(row.course_id)), filter: { column: "course_id" }, sort: ["course_id"] },
    school: { uses: ["school_id"], build: (row, refs) => refs.ref("orgs", String(row.school_id)), filter: { column: "school_id" }, sort: ["school_id"] },
    terms: { uses: ["term_sid"], build: (row, refs) => [refs.ref("academicSessions", String(row.term_sid))], filter: { column: "term_sid" } },
    periods: { uses: ["period"], build: (row) => (row.period == null || row.period === "" ? [] : [row.period]), filter: { column: "period" } },
  },
  filters: { classType: { column: "class_type" } },
};

// ---- users ----

const userArm = (role?: string): Arm => ({
  from: "roster_users u",
  where: role === undefined ? "u.district_id = @d" : `u.district_id = @d AND u.role = '${role}'`,
  columns: {
    sourced_id: "u.user_key",
    status: "'active'",
    role: "u.role",
    given_name: "u.first_name",
    family_name: "u.last_name",
    middle_name: "u.middle_name",
    email: "u.email",
    username: "coalesce(u.username, '')",
    identifier: "coalesce(u.student_number, u.teacher_number)",
    district_user_id: "u.district_user_id",
    state_id: "u.state_id",
    school_id: "u.school_id",
    school_ids: "u.school_ids",
    grade: cedsGradeSql("u.grade"),
    family_name_key: "u.family_name_key",
    given_name_key: "u.given_name_key",
    middle_name_key: "rd_key(u.middle_name)",
    enabled_user: "'true'",
    oneroster_role: oneRosterRoleSql("u.role", "u.school_ids"),
    role_type: "'primary'",
    modified: modifiedBy("u"),
    last_sync_id: "u.last_sync_id",
    own_modified: "NULL",
  },
});

/** A name sorted by its collation key (collation-key.ts); equality looks the key up, then checks the name. */
const name = (column: string, key: string): FieldDef => ({
  ...text(column),
  filter: { column, compile: (op, param, col) => (op === "=" ? `${col(key)} = rd_key(${param}) AND ${col(column)} = ${param}` : undefined) },
  sort: [key],
});

const userFields: Record<string, FieldDef> = {
  sourcedId: sourcedIdField("sourced_id", ["sourced_id"]),
  status,
  dateLastModified,
  enabledUser: constant("true"),
  username: text("username"),
  userIds: {
    uses: ["district_user_id", "state_id"],
    build: (row) => [
      { type: "district", identifier: row.district_user_id },
      ...(row.state_id == null ? [] : [{ type: "state", identifier: row.state_id }]),
    ],
    filter: { column: "district_user_id" },
  },
  givenName: name("given_name", "given_name_key"),
  familyName: name("family_name", "family_name_key"),
  middleName: { ...text("middle_name"), sort: ["middle_name_key"] },
  role: { uses: ["role"], build: (row) => row.role, filter: { column: "role" }, sort: ["role"], hidden: true },
  roles: {
    uses: ["role", "school_id", "school_ids"],
    build: (row, refs) => userRoles(row, refs.districtOrgId).map((r) => ({ roleType: r.roleType, role: r.role, org: refs.ref("orgs", r.org) })),
    filter: roleFilter(false),
  },
  primaryOrg: {
    uses: ["school_id"],
    build: (row, refs) => refs.ref("orgs", row.school_id == null ? refs.districtOrgId : String(row.school_id)),
    filter: { column: "school_id" },
    sort: ["school_id"],
  },
  identifier: text("identifier"),
  email: text("email"),
  grades: { uses: ["grade"], build: (row) => (row.grade == null ? [] : [row.grade]), filter: { column: "grade" }, sort: ["grade"] },
  agents: constant([]),
};

const userResource = (arm: Arm): Resource => ({
  plural: "users",
  singular: "user",
  path: "users",
  arms: [arm, tombstoneArm(arm)],
  key: ["sourced_id"],
  sourcedId: "sourced_id",
  lookup: (id) => [{ sourced_id: id }],
  nullable: new Set(["middle_name", "middle_name_key", "email", "identifier", "state_id", "school_id", "grade"]),
  fields: userFields,
  filters: {
    enabledUser: { column: "enabled_user" },
    role: roleFilter(true),
    "roles.role": roleFilter(false),
    "roles.roleType": { column: "role_type" },
    "roles.org.sourcedId": roleOrgFilter,
    "roles.org": roleOrgFilter,
  },
});

export const USERS = userResource(userArm());
export const STUDENTS = userResource(userArm("student"));
export const TEACHERS = userResource(userArm("teacher"));

// ---- enrollments ----

const studentEnrollmentArm: Arm = {
  from: "roster_enrollments e JOIN roster_classes ec ON ec.district_id = e.district_id AND ec.class_id = e.class_id",
  where: "e.district_id = @d",
  columns: {
    sourced_id: "e.class_id || '-student-' || e.student_id",
    status: "'active'",
    class_id: "e.class_id",
    role_rank: "'1'",
    member: "e.student_id",
    role: "'student'",
    user_key: "'student-' || e.student_id",
    is_primary: "0",
    primary_text: "'false'",
    school_id: "ec.school_id",
    begin_date: "e.start_date",
    end_date: "e.end_date",
    modified: modifiedBy("e"),
    last_sync_id: "e.last_sync_id",
    own_modified: "NULL",
  },
};

/** A class's teacher is an enrollment too (OneRoster has no other way to say who teaches it). */
const teacherEnrollmentArm: Arm = {
  from: "roster_classes tc",
  where: "tc.district_id = @d",
  columns: {
    sourced_id: "tc.class_id || '-teacher-' || tc.teacher_key",
    status: "'active'",
    class_id: "tc.class_id",
    role_rank: "'0'",
    member: "tc.teacher_key",
    role: "'teacher'",
    user_key: "tc.teacher_key",
    is_primary: "1",
    primary_text: "'true'",
    school_id: "tc.school_id",
    begin_date: "NULL",
    end_date: "NULL",
    modified: modifiedBy("tc"),
    last_sync_id: "tc.last_sync_id",
    own_modified: "NULL",
  },
};

/** `<class>-student-<student id>` or `<class>-teacher-<user sourcedId>`. */
export function enrollmentLookup(id: string): Array<Record<string, string>> {
  const alternatives: Array<Record<string, string>> = [];
  for (const role of ["student", "teacher"] as const) {
    const marker = `-${role}-`;
    for (let i = id.indexOf(marker); i > 0; i = id.indexOf(marker, i + 1)) {
      const member = id.slice(i + marker.length);
      alternatives.push({ class_id: id.slice(0, i), role, member });
    }
  }
  return alternatives.length > 0 ? alternatives : [{ sourced_id: id }];
}

export const ENROLLMENTS: Resource = {
  plural: "enrollments",
  singular: "enrollment",
  path: "enrollments",
  arms: [
    teacherEnrollmentArm,
    studentEnrollmentArm,
    // A class's teacher stops being one when the class goes or gets another teacher.
    tombstoneArm(teacherEnrollmentArm, { table: "tombstones_class_teachers" }),
    // A removed enrollment's class may be live or removed too.
    tombstoneArm(studentEnrollmentArm, {
      from:
        "tombstones_enrollments e LEFT JOIN roster_classes ec ON ec.district_id = e.district_id AND ec.class_id = e.class_id " +
        "LEFT JOIN tombstones_classes xc ON ec.class_id IS NULL AND xc.district_id = e.district_id AND xc.class_id = e.class_id",
      columns: { school_id: "coalesce(ec.school_id, xc.school_id)" },
    }),
  ],
  key: ["class_id", "role_rank", "member"],
  sourcedId: "sourced_id",
  lookup: enrollmentLookup,
  nullable: new Set(["begin_date", "end_date"]),
  fields: {
    sourcedId: sourcedIdField("sourced_id", ["class_id", "role_rank", "member"]),
    status,
    dateLastModified,
    role: { uses: ["role"], build: (row) => row.role, filter: { column: "role" }, sort: ["role"] },
    primary: { uses: ["is_primary"], build: (row) => (Number(row.is_primary) === 1 ? "true" : "false") },
    user: { uses: ["user_key"], build: (row, refs) => refs.ref("users", String(row.user_key)), filter: { column: "user_key" }, sort: ["user_key"] },
    class: { uses: ["class_id"], build: (row, refs) => refs.ref("classes", String(row.class_id)), filter: { column: "class_id" }, sort: ["class_id"] },
    school: orgRef("school_id"),
    beginDate: text("begin_date"),
    endDate: text("end_date"),
  },
  filters: { primary: { column: "primary_text" } },
};

// ---- grading periods ----

/**
 * Grading periods are the academic sessions of type `gradingPeriod`, read through the sessions'
 * own arms restricted by their `type` logical column. Where the arms have no such column every
 * session is a term ('term' stands in), so the set is empty: collections answer `[]`, a
 * sourcedId 404. `parent_id` (the session's parent, a term) is NULL where the arms have none.
 */
const gradingPeriodArm = (arm: Arm): Arm => ({
  ...arm,
  where: `${arm.where} AND ${arm.columns.type ?? "'term'"} = 'gradingPeriod'`,
  columns: { parent_id: "NULL", ...arm.columns },
});

export const GRADING_PERIODS: Resource = { ...ACADEMIC_SESSIONS, arms: ACADEMIC_SESSIONS.arms.map(gradingPeriodArm) };

// ---- demographics ----

/**
 * A user's demographics (OneRoster's demographics service, sourcedId = the user's): from the
 * optional birth date and sex the district sends. Only users with either have a record.
 */
const demographicsArm: Arm = {
  from: "roster_users u",
  where: "u.district_id = @d AND (u.birth_date IS NOT NULL OR u.gender IS NOT NULL)",
  columns: {
    sourced_id: "u.user_key",
    status: "'active'",
    birth_date: "u.birth_date",
    sex: "u.gender",
    modified: modifiedBy("u"),
    last_sync_id: "u.last_sync_id",
    own_modified: "NULL",
  },
};

/** An optional value: left out of the record when absent. */
const optional = (column: string): FieldDef => ({ ...text(column), build: (row) => row[column] ?? undefined });

export const DEMOGRAPHICS: Resource = {
  plural: "demographics",
  // The single-record body is `{"demographics": {…}}` too (SingleDemographicsDType).
  singular: "demographics",
  // Never referenced; a user's demographics share the user's sourcedId.
  path: "users",
  arms: [demographicsArm, tombstoneArm(demographicsArm)],
  key: ["sourced_id"],
  sourcedId: "sourced_id",
  lookup: (id) => [{ sourced_id: id }],
  nullable: new Set(["birth_date", "sex"]),
  fields: {
    sourcedId: sourcedIdField("sourced_id", ["sourced_id"]),
    status,
    dateLastModified,
    birthDate: optional("birth_date"),
    sex: optional("sex"),
  },
};

/** Dotted filter names clients use for references (`school.sourcedId`) → our field names. */
export function canonicalFieldName(resource: Resource, name: string): string | undefined {
  if (resource.fields[name]) return name;
  const head = name.replace(/\.sourcedId$/, "").replace(/^roles\.role$/, "roles").replace(/^(roles\.org|org)$/, (org) => (org === "org" && resource.fields.org ? "org" : "primaryOrg"));
  return resource.fields[head] ? head : undefined;
}

const REF_TYPES: Record<RefPath, string> = {
  orgs: "org",
  users: "user",
  classes: "class",
  courses: "course",
  academicSessions: "academicSession",
  enrollments: "enrollment",
};

/** References under the district's OneRoster base URL; the district itself is org `district-<slug>`. */
export function refBuilder(publicUrl: string, slug: string, appliedAt: (syncId: number) => string | null, servicePath = "ims/oneroster/rostering/v1p2"): RefBuilder {
  const base = `${publicUrl.replace(/\/$/, "")}/districts/${encodeURIComponent(slug)}/${servicePath}`;
  return {
    districtOrgId: `district-${slug}`,
    appliedAt,
    ref: (path, sourcedId) => ({ href: `${base}/${path}/${encodeURIComponent(sourcedId)}`, sourcedId, type: REF_TYPES[path] }),
  };
}

/** A record with the chosen fields, in the resource's field order; a field without a value is left out, never null. */
export function shapeRecord(resource: Resource, fields: readonly string[], row: Row, refs: RefBuilder): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  for (const name of fields) {
    const def = resource.fields[name]!;
    if (def.hidden) continue;
    const value = def.build(row, refs);
    if (value !== null && value !== undefined) record[name] = value;
  }
  return record;
}
