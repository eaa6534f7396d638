import { sql } from "../db/kysely.ts";
import type { Database } from "../db/schema.ts";
import type { RosterDatabase } from "../db/open-database.ts";
import { collationKey } from "../sync/collation-key.ts";

/** Users a page of search results shows. */
export const USERS_PER_PAGE = 25;

/** Above every character a name key can hold: `key < prefix + TOP` bounds a prefix range on an index. */
const TOP = "\u{10FFFF}";

export interface UserRow {
  userKey: string;
  districtUserId: string;
  role: string;
  firstName: string;
  lastName: string;
  schoolId: string | null;
  grade: string | null;
}

export interface UserSearch {
  users: UserRow[];
  /** Whether another page follows. */
  more: boolean;
}

const USER_COLUMNS = ["user_key", "district_user_id", "role", "first_name", "last_name", "school_id", "grade"] as const;

type UserColumns = Pick<Database["roster_users"], (typeof USER_COLUMNS)[number]>;

/** The database the console reads the roster from. */
export type RosterReader = Pick<RosterDatabase, "db" | "dialect">;

function toUserRow(r: UserColumns): UserRow {
  return { userKey: r.user_key, districtUserId: r.district_user_id, role: r.role, firstName: r.first_name, lastName: r.last_name, schoolId: r.school_id, grade: r.grade };
}

/**
 * A district's users whose id is the query, or whose names start with it: "lov" finds Lovelace
 * and Lovisa, "ada lov" (or "lovelace, ada") a given name and a family name together. Ids are
 * looked up on the primary keys (a sourcedId such as `student-1001`, or PowerSchool's ID of a
 * student or a staff member); names through the name-key indexes (migration 0010) as prefix
 * ranges, so accents and case do not matter ("ase" finds Åse). Only the matches are sorted:
 * id matches first, then by family name, given name, sourcedId.
 */
export async function searchUsers(database: RosterReader, districtId: number, query: string, page: number): Promise<UserSearch> {
  const { db } = database;
  const hints = database.dialect.name === "sqlite";
  const text = query.trim();
  if (text === "") return { users: [], more: false };
  const offset = (page - 1) * USERS_PER_PAGE;

  const ids = [text, `student-${text}`, `staff-${text}`, `staff-id-${text}`];
  const staff = await db.selectFrom("roster_staff_ids").select("user_key").where("district_id", "=", districtId).where("district_user_id", "=", text).execute();
  const idKeys = [...new Set([...ids, ...staff.map((s) => s.user_key)])];
  const byId = offset > 0 ? [] : await db.selectFrom("roster_users").select(USER_COLUMNS).where("district_id", "=", districtId).where("user_key", "in", idKeys).orderBy("user_key").execute();
  const found = new Set(byId.map((r) => r.user_key));

  const words = text.split(/[\s,]+/).filter(Boolean).map(collationKey);
  // One word: a family or a given name starting with it. Several: the first and the last word as
  // given and family name, either way round ("Ada Lovelace", "Lovelace, Ada").
  const [first, last] = [words[0]!, words[words.length - 1]!];
  const arms: [index: "family" | "given", key: string, also?: { column: "given_name_key" | "family_name_key"; key: string }][] =
    words.length === 1
      ? [
          ["family", first],
          ["given", first],
        ]
      : [
          ["family", last, { column: "given_name_key", key: first }],
          ["family", first, { column: "given_name_key", key: last }],
        ];
  // Each arm is a range on its name-key index (named on SQLite, whose planner would otherwise walk
  // the district's whole primary key when its tables have no statistics); only matches are sorted.
  const arm = ([index, key, also]: (typeof arms)[number]) => {
    const column = sql.ref(`${index}_name_key`);
    const table = hints ? sql.raw(`roster_users INDEXED BY roster_users_${index}_name_key`) : sql.raw("roster_users");
    const extra = also ? sql` AND ${sql.ref(also.column)} >= ${also.key} AND ${sql.ref(also.column)} < ${also.key + TOP}` : sql``;
    return sql`SELECT ${sql.join(USER_COLUMNS.map((c) => sql.ref(c)))}, family_name_key, given_name_key FROM ${table} WHERE district_id = ${districtId} AND ${column} >= ${key} AND ${column} < ${key + TOP}${extra}`;
  };
  const byName = (
    await sql<UserColumns>`SELECT ${sql.join(USER_COLUMNS.map((c) => sql.ref(c)))} FROM (${sql.join(arms.map(arm), sql` UNION `)}) AS matches ORDER BY family_name_key, given_name_key, user_key LIMIT ${USERS_PER_PAGE + 1} OFFSET ${offset}`.execute(db)
  ).rows;
  const names = byName.slice(0, USERS_PER_PAGE).filter((r) => !found.has(r.user_key));
  return { users: [...byId, ...names].map(toUserRow), more: byName.length > USERS_PER_PAGE };
}

export interface UserDetail extends UserRow {
  scope: "student" | "staff";
  middleName: string | null;
  email: string | null;
  username: string | null;
  schoolIds: string[];
  studentNumber: string | null;
  teacherNumber: string | null;
  lastSyncId: number;
}

export interface UserClass {
  classId: string;
  className: string;
  courseName: string | null;
  schoolName: string | null;
  termName: string | null;
  period: string | null;
  /** The class's teacher, for a student's classes. */
  teacher: { userKey: string; name: string } | null;
}

/** One user of a district, and their classes: a student's enrollments, or the classes a teacher teaches. */
export async function userWithClasses(database: RosterReader, districtId: number, userKey: string): Promise<{ user: UserDetail; classes: UserClass[] } | undefined> {
  const { db } = database;
  const r = await db.selectFrom("roster_users").selectAll().where("district_id", "=", districtId).where("user_key", "=", userKey).executeTakeFirst();
  if (!r) return undefined;
  const user: UserDetail = {
    ...toUserRow(r),
    scope: r.scope,
    middleName: r.middle_name,
    email: r.email,
    username: r.username,
    schoolIds: JSON.parse(r.school_ids) as string[],
    studentNumber: r.student_number,
    teacherNumber: r.teacher_number,
    lastSyncId: r.last_sync_id,
  };
  const classes = db
    .selectFrom("roster_classes as c")
    .leftJoin("roster_courses as co", (j) => j.onRef("co.district_id", "=", "c.district_id").onRef("co.course_id", "=", "c.course_id"))
    .leftJoin("roster_schools as s", (j) => j.onRef("s.district_id", "=", "c.district_id").onRef("s.school_id", "=", "c.school_id"))
    .leftJoin("roster_users as tu", (j) => j.onRef("tu.district_id", "=", "c.district_id").onRef("tu.user_key", "=", "c.teacher_key"))
    .select(["c.class_id", "c.class_name", "c.period", "c.teacher_key", "co.course_name", "s.school_name", "tu.first_name", "tu.last_name"])
    // The school's own term, else the district-wide one (school_id '').
    .select((eb) =>
      eb
        .selectFrom("roster_terms as t")
        .select("t.term_name")
        .whereRef("t.district_id", "=", "c.district_id")
        .whereRef("t.term_id", "=", "c.term_id")
        .where((w) => w.or([w("t.school_id", "=", w.ref("c.school_id")), w("t.school_id", "=", "")]))
        .orderBy("t.school_id", "desc")
        .limit(1)
        .as("term_name"),
    )
    .where("c.district_id", "=", districtId);
  const rows =
    r.scope === "student"
      ? await classes
          .where("c.class_id", "in", (eb) => eb.selectFrom("roster_enrollments").select("class_id").where("district_id", "=", districtId).where("student_id", "=", r.district_user_id))
          .orderBy("c.class_name")
          .orderBy("c.class_id")
          .execute()
      : await classes
          .where(
            "c.class_id",
            "in",
            // The teacher's classes off their index (named on SQLite: see searchUsers).
            sql<string>`(SELECT class_id FROM ${sql.raw(database.dialect.name === "sqlite" ? "roster_classes INDEXED BY roster_classes_teacher" : "roster_classes")} WHERE district_id = ${districtId} AND teacher_key = ${userKey})`,
          )
          .orderBy("c.class_name")
          .orderBy("c.class_id")
          .execute();
  return {
    user,
    classes: rows.map((c) => ({
      classId: c.class_id,
      className: c.class_name,
      courseName: c.course_name,
      schoolName: c.school_name,
      termName: c.term_name,
      period: c.period,
      teacher: r.scope === "student" ? { userKey: c.teacher_key, name: c.first_name === null ? c.teacher_key : `${c.first_name} ${c.last_name ?? ""}`.trim() } : null,
    })),
  };
}
