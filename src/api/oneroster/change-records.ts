import type { ChangeRow } from "./roster-reader.ts";
import { selectedFields } from "./oneroster-sql.ts";
import {
  ACADEMIC_SESSIONS,
  CLASSES,
  COURSES,
  ENROLLMENTS,
  ORGS,
  USERS,
  cedsGrade,
  shapeRecord,
  type RefBuilder,
  type Resource,
  type Row,
} from "./oneroster-resources.ts";

export const CHANGE_ENTITIES = ["orgs", "academicSessions", "courses", "classes", "users", "enrollments"] as const;
export type ChangeEntity = (typeof CHANGE_ENTITIES)[number];
export type ChangeOp = "created" | "updated" | "deleted";

export interface ChangeItem {
  /** The stored change's id; the feed replaces it with the entry's cursor. */
  cursor: number;
  entity: ChangeEntity;
  /** The record's OneRoster sourcedId. */
  id: string;
  op: ChangeOp;
  /** The record after the change, shaped as the OneRoster API returns it; null when deleted. */
  data: Record<string, unknown> | null;
}

/** A roster change as stored by the sync engine (src/sync/apply-sync.ts). */
export type StoredChange = ChangeRow;

/** What shaping needs besides the stored row: lookups in the live roster and the change's time. */
export interface ChangeContext {
  refs: RefBuilder;
  /** A class's academic session sourcedId, by the rule of the API's classes (`classSessionSql`); `syncId` applied the change. */
  classTerm(termId: string | null, schoolId: string, syncId: number): Promise<string>;
  /** A term's session type, school year and parent, by the rule of the API's academic sessions. */
  termSession(termId: string, schoolId: string, startDate: string, endDate: string): Promise<{ type: string; schoolYear: string; parent: string | null; children: string | null }>;
  /** The school of a class, if it is still in the roster. */
  classSchool(classId: string): Promise<string | null>;
}

/** Load markers never reach here: the reader reads them out as one `create` per row. */
const OPS: Record<Exclude<StoredChange["op"], "load">, ChangeOp> = { create: "created", update: "updated", delete: "deleted" };

type Raw = Record<string, string | number | null>;

interface Mapping {
  entity: ChangeEntity;
  resource: Resource;
  id: (key: string[]) => string;
  row: (raw: Raw, context: ChangeContext, syncId: number) => Row | Promise<Row>;
}

const termId = (termIdValue: string, schoolId: string) => (schoolId === "" ? termIdValue : `${termIdValue}-${schoolId}`);

const MAPPINGS: Record<string, Mapping> = {
  schools: {
    entity: "orgs",
    resource: ORGS,
    id: ([school]) => school!,
    row: (r, c) => ({ sourced_id: r.school_id, type: "school", name: r.school_name, identifier: r.school_number ?? r.school_id, parent_id: c.refs.districtOrgId, children: null }),
  },
  courses: {
    entity: "courses",
    resource: COURSES,
    id: ([course]) => course!,
    row: (r) => ({ sourced_id: r.course_id, title: r.course_name, school_id: r.school_id }),
  },
  terms: {
    entity: "academicSessions",
    resource: ACADEMIC_SESSIONS,
    id: ([term, school]) => termId(term!, school ?? ""),
    row: async (r, c) => {
      const session = await c.termSession(String(r.term_id), String(r.school_id ?? ""), String(r.start_date), String(r.end_date));
      return {
        sourced_id: termId(String(r.term_id), String(r.school_id ?? "")),
        title: r.term_name,
        start_date: r.start_date,
        end_date: r.end_date,
        type: session.type,
        school_year: session.schoolYear,
        parent_id: session.parent,
        children: session.children,
        school_id: r.school_id,
      };
    },
  },
  users: {
    entity: "users",
    resource: USERS,
    id: ([user]) => user!,
    row: (r) => ({
      sourced_id: r.user_key,
      role: r.role,
      given_name: r.first_name,
      family_name: r.last_name,
      middle_name: r.middle_name,
      email: r.email,
      username: r.username ?? "",
      identifier: r.student_number ?? r.teacher_number,
      district_user_id: r.district_user_id,
      state_id: r.state_id,
      school_id: r.school_id,
      school_ids: r.school_ids,
      grade: cedsGrade(r.grade === null ? null : String(r.grade)),
    }),
  },
  classes: {
    entity: "classes",
    resource: CLASSES,
    id: ([cls]) => cls!,
    row: async (r, c, syncId) => ({
      sourced_id: r.class_id,
      title: r.class_name,
      class_code: r.section_number,
      location: r.room,
      period: r.period,
      course_id: r.course_id,
      school_id: r.school_id,
      term_sid: await c.classTerm(r.term_id === null ? null : String(r.term_id), String(r.school_id), typeof r.last_sync_id === "number" ? r.last_sync_id : syncId),
    }),
  },
  enrollments: {
    entity: "enrollments",
    resource: ENROLLMENTS,
    id: ([cls, student]) => `${cls}-student-${student}`,
    row: async (r, c) => ({
      sourced_id: `${r.class_id}-student-${r.student_id}`,
      role: "student",
      is_primary: 0,
      user_key: `student-${r.student_id}`,
      class_id: r.class_id,
      school_id: await c.classSchool(String(r.class_id)),
      begin_date: r.start_date,
      end_date: r.end_date,
    }),
  },
};

/**
 * The feed items of one stored change: usually one; a class change also moves its synthesised
 * teacher enrollment (created, deleted, or replaced when the class changes teacher). Every item of
 * a change carries the change's cursor, and a page never splits a change.
 */
export async function changeItems(change: StoredChange, context: ChangeContext): Promise<ChangeItem[]> {
  const mapping = MAPPINGS[change.entity];
  if (mapping === undefined || change.op === "load") return [];
  const op = change.op;
  const key = JSON.parse(change.key) as string[];
  const after = change.after_json === null ? null : (JSON.parse(change.after_json) as Raw);
  const before = change.before_json === null ? null : (JSON.parse(change.before_json) as Raw);
  const shape = (resource: Resource, row: Row, raw: Raw) =>
    shapeRecord(resource, selectedFields(resource, undefined), { status: "active", ...row, last_sync_id: typeof raw.last_sync_id === "number" ? raw.last_sync_id : change.sync_id }, context.refs);
  const items: ChangeItem[] = [
    {
      cursor: change.id,
      entity: mapping.entity,
      id: mapping.id(key),
      op: OPS[op],
      data: after === null ? null : shape(mapping.resource, await mapping.row(after, context, change.sync_id), after),
    },
  ];
  if (change.entity === "classes") {
    const teacherEnrollment = (raw: Raw) => ({
      sourced_id: `${raw.class_id}-teacher-${raw.teacher_key}`,
      role: "teacher",
      is_primary: 1,
      user_key: raw.teacher_key,
      class_id: raw.class_id,
      school_id: raw.school_id,
      begin_date: null,
      end_date: null,
    });
    const item = (op: ChangeOp, raw: Raw): ChangeItem => ({
      cursor: change.id,
      entity: "enrollments",
      id: `${raw.class_id}-teacher-${raw.teacher_key}`,
      op,
      data: op === "deleted" ? null : shape(ENROLLMENTS, teacherEnrollment(raw), raw),
    });
    if (before !== null && (after === null || after.teacher_key !== before.teacher_key)) items.push(item("deleted", before));
    if (after !== null && (before === null || after.teacher_key !== before.teacher_key)) items.push(item("created", after));
    else if (after !== null && before !== null && after.school_id !== before.school_id) items.push(item("updated", after));
  }
  return items;
}
