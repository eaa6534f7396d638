/**
 * The roster file format as data: the one source of truth from which header matching,
 * file recognition, normalisation, validation and docs/file-format.md are derived.
 * Change the format here, then run `npm run docs`.
 */

export const ROLES = ["student", "teacher", "administrator", "aide"] as const;
export type Role = (typeof ROLES)[number];

/** OneRoster's sex vocabulary (demographics), which the `sex` column type reads into. */
export const SEXES = ["male", "female", "other", "unspecified"] as const;
export type Sex = (typeof SEXES)[number];

/** Student and staff ids are separate PowerSchool sequences, so user keys are scoped. */
export const SCOPES = ["student", "staff"] as const;
export type Scope = (typeof SCOPES)[number];

export function scopeOfRole(role: Role): Scope {
  return role === "student" ? "student" : "staff";
}

export const COLUMN_TYPES = {
  id: "Text identifier, 1-255 characters, kept exactly as sent apart from surrounding spaces.",
  string: "Text, up to 255 characters.",
  integer: "Whole number, for example `0` or `-1`.",
  date:
    "A date as `MM/DD/YYYY`, `DD/MM/YYYY`, `M/D/YY`, `D/M/YY` or `YYYY-MM-DD`. Each date column of a file is read one way: month first (PowerSchool's US default), or day first when one of its values can only be read so (a first part over 12, reported). A column holding both kinds is not read at all (a warning): an optional one keeps yesterday's values, a required one's rows are left out. A district's date format (`rosterdock district settings SLUG --date-format mdy` or `dmy`) reads every date its way instead. `0/0/0`, `00/00/0000` and `01/01/1900` mean no date.",
  role: "One of `student`, `teacher`, `administrator`, `aide`, in any case.",
  grade: "A grade level such as `-2`…`13` (PowerSchool) or a code such as `K`, `PK`, `01`, up to 8 characters.",
  email: "An email address (`name@domain`).",
  sex: "`M`/`Male`, `F`/`Female`, `X`/`N`/`O`/`Other`/`Non-binary` (other), `U`/`Unknown`/`Unspecified`, in any case; shown to OneRoster clients as `male`, `female`, `other` or `unspecified`.",
} as const;
export type ColumnType = keyof typeof COLUMN_TYPES;

export interface ColumnSpec {
  readonly name: string;
  readonly type: ColumnType;
  /** A row without a value here is skipped; a file without the column fails. */
  readonly required: boolean;
  readonly description: string;
  /** Other labels for the column, PowerSchool's first. Matched like the name (see match-headers.ts). */
  readonly aliases: readonly string[];
  /** Read to apply a rule, never stored in the record. */
  readonly inputOnly?: boolean;
}

export interface FileStemSpec {
  readonly stem: string;
  /** Values every record of such a file gets when its own column is absent or empty. */
  readonly implied?: Readonly<Record<string, string>>;
  readonly note?: string;
  /** How a district exports this file from PowerSchool; absent for Rosterdock's own canonical files. */
  readonly powerSchool?: PowerSchoolExportSpec;
}

/**
 * How well a PowerSchool fact is established (see docs on PowerSchool): `sure` documented,
 * `seen` observed in districts' real exports, `unknown` expected from PowerSchool's schema but
 * not yet confirmed, so the setup guide marks it as one to skip when PowerSchool does not list it.
 */
export type PowerSchoolConfidence = "sure" | "seen" | "unknown";

/** One column of a PowerSchool export: the field as each tool labels it, or why PowerSchool has none. */
export type PowerSchoolFieldSpec =
  | {
      readonly column: string;
      /** As Data Export Manager shows and labels it: `Table.Field`. */
      readonly dem: string;
      /** As AutoSend labels it (`Field`, `[NN]Field` for a related table); null when AutoSend cannot send the table. */
      readonly autoSend: string | null;
      readonly confidence: PowerSchoolConfidence;
    }
  | { readonly column: string; readonly none: string };

export interface PowerSchoolExportSpec {
  /** The PowerSchool table the template exports, as Data Export Manager names it. */
  readonly table: string;
  /** PowerSchool's table number (AutoSend's `[NN]` prefix for related-table fields). */
  readonly tableNumber: number;
  /** AutoSend's "Data to Send" choice for the table; null when AutoSend has none (Data Export Manager sends it). */
  readonly autoSendData: string | null;
  readonly fileNames: { readonly dem: string; readonly autoSend: string | null };
  /** What the district's admin must know about this export, in one or two sentences. */
  readonly note: string;
  /** Every column of the table, in the order the templates export them (those PowerSchool has no field for last). */
  readonly fields: readonly PowerSchoolFieldSpec[];
}

export interface ReferenceSpec {
  readonly columns: readonly string[];
  readonly entity: EntityName;
  readonly targetColumns: readonly string[];
  /** For references to users: which key scope the id belongs to. */
  readonly targetScope?: Scope;
  readonly note?: string;
}

export type RuleSpec =
  | {
      readonly kind: "skip-unless-zero";
      readonly column: string;
      readonly issue: "INACTIVE_STUDENTS_SKIPPED";
      readonly description: string;
    }
  | {
      readonly kind: "drop-if-negative";
      readonly column: string;
      readonly issue: "DROPPED_ENROLLMENTS";
      readonly description: string;
    }
  | {
      readonly kind: "derive-class-name";
      readonly column: string;
      readonly description: string;
    };

export interface EntitySpec {
  readonly name: string;
  readonly description: string;
  /** An optional file may be absent from every delivery; a missing file never deletes anything. */
  readonly optionalFile: boolean;
  readonly fileStems: readonly FileStemSpec[];
  /** Unique key. For users the derived `scope` is part of it. */
  readonly key: readonly string[];
  readonly columns: readonly ColumnSpec[];
  readonly references: readonly ReferenceSpec[];
  readonly rules: readonly RuleSpec[];
}

export const ENTITY_NAMES = ["schools", "users", "classes", "enrollments", "courses", "terms"] as const;
export type EntityName = (typeof ENTITY_NAMES)[number];

export const FILE_EXTENSIONS = [".csv", ".txt", ".tsv"] as const;
export const DELIMITERS = [",", "\t", "|", ";"] as const;

export const ROSTER_SPEC = {
  entities: {
    schools: {
      name: "schools",
      description: "One row per school.",
      optionalFile: false,
      fileStems: [
        {
          stem: "schools",
          powerSchool: {
            table: "Schools",
            tableNumber: 39,
            autoSendData: null,
            fileNames: { dem: "schools.csv", autoSend: null },
            note: "AutoSend has no Schools data: districts using AutoSend export this file with Data Export Manager too. Every `SchoolID` elsewhere holds a school's `School_Number`.",
            fields: [
              { column: "school_id", dem: "Schools.School_Number", autoSend: null, confidence: "sure" },
              { column: "school_name", dem: "Schools.Name", autoSend: null, confidence: "sure" },
              { column: "low_grade", dem: "Schools.Low_Grade", autoSend: null, confidence: "unknown" },
              { column: "high_grade", dem: "Schools.High_Grade", autoSend: null, confidence: "unknown" },
              { column: "school_number", none: "`school_id` already holds Schools.School_Number." },
              { column: "state_id", none: "No standard PowerSchool field is known for it." },
            ],
          },
        },
      ],
      key: ["school_id"],
      columns: [
        { name: "school_id", type: "id", required: true, description: "The school's number; every `school_id` elsewhere points here.", aliases: ["School_Number"] },
        { name: "school_name", type: "string", required: true, description: "The school's name.", aliases: ["Name"] },
        { name: "school_number", type: "string", required: false, description: "Another number for the school (used only when `school_id` is present too).", aliases: [] },
        { name: "state_id", type: "string", required: false, description: "The school's state identifier.", aliases: [] },
        { name: "low_grade", type: "grade", required: false, description: "Lowest grade taught.", aliases: [] },
        { name: "high_grade", type: "grade", required: false, description: "Highest grade taught.", aliases: [] },
      ],
      references: [],
      rules: [],
    },
    users: {
      name: "users",
      description:
        "Students and staff. Student and staff ids are separate sequences (PowerSchool's Students.ID and Teachers.ID can hold the same number), so a user is identified by its scope (`student` for students, `staff` for every other role) and `district_user_id`.",
      optionalFile: false,
      fileStems: [
        { stem: "users" },
        {
          stem: "students",
          implied: { role: "student" },
          powerSchool: {
            table: "Students",
            tableNumber: 1,
            autoSendData: "Students",
            fileNames: { dem: "students.csv", autoSend: "students.txt" },
            note: "Export every student, inactive ones included: `Enroll_Status` tells Rosterdock which to keep (0, active).",
            fields: [
              { column: "district_user_id", dem: "Students.ID", autoSend: "ID", confidence: "sure" },
              { column: "student_number", dem: "Students.Student_Number", autoSend: "Student_Number", confidence: "sure" },
              { column: "state_id", dem: "Students.State_StudentNumber", autoSend: "State_StudentNumber", confidence: "sure" },
              { column: "first_name", dem: "Students.First_Name", autoSend: "First_Name", confidence: "sure" },
              { column: "middle_name", dem: "Students.Middle_Name", autoSend: "Middle_Name", confidence: "sure" },
              { column: "last_name", dem: "Students.Last_Name", autoSend: "Last_Name", confidence: "sure" },
              { column: "grade", dem: "Students.Grade_Level", autoSend: "Grade_Level", confidence: "sure" },
              { column: "school_id", dem: "Students.SchoolID", autoSend: "SchoolID", confidence: "sure" },
              { column: "birth_date", dem: "Students.DOB", autoSend: "DOB", confidence: "sure" },
              { column: "gender", dem: "Students.Gender", autoSend: "Gender", confidence: "unknown" },
              { column: "enroll_status", dem: "Students.Enroll_Status", autoSend: "Enroll_Status", confidence: "sure" },
              { column: "role", none: "Implied by the file name: every row of `students` is a student." },
              { column: "email", none: "PowerSchool has no standard student email field." },
              { column: "username", none: "No standard PowerSchool field is known for it." },
              { column: "teacher_number", none: "Staff only." },
            ],
          },
        },
        {
          stem: "teachers",
          implied: { role: "teacher" },
          note: "A teacher at two schools appears twice, with two ids and the same teacher number.",
          powerSchool: {
            table: "Teachers",
            tableNumber: 5,
            autoSendData: "Teachers",
            fileNames: { dem: "teachers.csv", autoSend: "teachers.txt" },
            note: "A teacher at two schools appears twice, with two `ID`s and the same `TeacherNumber`: that is expected.",
            fields: [
              { column: "district_user_id", dem: "Teachers.ID", autoSend: "ID", confidence: "sure" },
              { column: "teacher_number", dem: "Teachers.TeacherNumber", autoSend: "TeacherNumber", confidence: "sure" },
              { column: "first_name", dem: "Teachers.First_Name", autoSend: "First_Name", confidence: "sure" },
              { column: "last_name", dem: "Teachers.Last_Name", autoSend: "Last_Name", confidence: "sure" },
              { column: "email", dem: "Teachers.Email_Addr", autoSend: "Email_Addr", confidence: "sure" },
              { column: "school_id", dem: "Teachers.SchoolID", autoSend: "SchoolID", confidence: "sure" },
              { column: "role", none: "Implied by the file name: every row of `teachers` is a teacher." },
              { column: "middle_name", none: "Not among the Teachers fields Rosterdock relies on." },
              { column: "username", none: "No standard PowerSchool field is known for it." },
              { column: "grade", none: "Students only." },
              { column: "student_number", none: "Students only." },
              { column: "state_id", none: "Not among the Teachers fields Rosterdock relies on." },
              { column: "birth_date", none: "Students only." },
              { column: "gender", none: "Students only." },
              { column: "enroll_status", none: "Students only (a teacher's `Status` is read differently)." },
            ],
          },
        },
        { stem: "staff", implied: { role: "teacher" } },
      ],
      key: ["scope", "district_user_id"],
      columns: [
        { name: "district_user_id", type: "id", required: true, description: "The user's id within its scope (PowerSchool Students.ID or Teachers.ID).", aliases: ["ID"] },
        { name: "first_name", type: "string", required: true, description: "Given name.", aliases: [] },
        { name: "last_name", type: "string", required: true, description: "Family name.", aliases: [] },
        { name: "role", type: "role", required: true, description: "Implied by the file name for `students`, `teachers` and `staff` files.", aliases: [] },
        { name: "middle_name", type: "string", required: false, description: "Middle name.", aliases: [] },
        { name: "email", type: "email", required: false, description: "Email address.", aliases: ["Email_Addr"] },
        { name: "username", type: "string", required: false, description: "Login name.", aliases: [] },
        { name: "school_id", type: "id", required: false, description: "The user's school (`school_id` of schools).", aliases: [] },
        { name: "grade", type: "grade", required: false, description: "Grade level of a student.", aliases: ["Grade_Level"] },
        { name: "student_number", type: "string", required: false, description: "The student number staff see.", aliases: [] },
        { name: "teacher_number", type: "string", required: false, description: "The staff member's number, the same at every school.", aliases: [] },
        { name: "state_id", type: "string", required: false, description: "State identifier.", aliases: ["State_StudentNumber"] },
        { name: "birth_date", type: "date", required: false, description: "Date of birth.", aliases: ["DOB"] },
        { name: "gender", type: "sex", required: false, description: "Sex, as PowerSchool's Students.Gender holds it (OneRoster demographics).", aliases: ["Gender"] },
        { name: "enroll_status", type: "integer", required: false, inputOnly: true, description: "PowerSchool's enrollment status; read, not stored (see rules).", aliases: [] },
      ],
      references: [{ columns: ["school_id"], entity: "schools", targetColumns: ["school_id"] }],
      rules: [
        {
          kind: "skip-unless-zero",
          column: "enroll_status",
          issue: "INACTIVE_STUDENTS_SKIPPED",
          description:
            "A user whose `enroll_status` is present and not `0` (-1 pre-registered, 1 inactive, 2 transferred out, 3 graduated, 4 historical) is skipped and counted, not created.",
        },
      ],
    },
    classes: {
      name: "classes",
      description: "One row per class (PowerSchool section).",
      optionalFile: false,
      fileStems: [
        { stem: "classes" },
        {
          stem: "sections",
          powerSchool: {
            table: "Sections",
            tableNumber: 3,
            autoSendData: "Sections",
            fileNames: { dem: "sections.csv", autoSend: "sections.txt" },
            note: "PowerSchool sections have no name: Rosterdock names each class from its course name (the courses file) and section number.",
            fields: [
              { column: "class_id", dem: "Sections.ID", autoSend: "ID", confidence: "sure" },
              { column: "school_id", dem: "Sections.SchoolID", autoSend: "SchoolID", confidence: "sure" },
              { column: "course_id", dem: "Sections.Course_Number", autoSend: "Course_Number", confidence: "sure" },
              { column: "section_number", dem: "Sections.Section_Number", autoSend: "Section_Number", confidence: "sure" },
              { column: "term_id", dem: "Sections.TermID", autoSend: "TermID", confidence: "sure" },
              { column: "teacher_id", dem: "Sections.Teacher", autoSend: "Teacher", confidence: "sure" },
              { column: "period", dem: "Sections.Expression", autoSend: "Expression", confidence: "sure" },
              { column: "room", dem: "Sections.Room", autoSend: "Room", confidence: "sure" },
              { column: "class_name", none: "PowerSchool sections have no name; Rosterdock builds it from the course name and section number." },
            ],
          },
        },
      ],
      key: ["class_id"],
      columns: [
        { name: "class_id", type: "id", required: true, description: "The class's id (PowerSchool Sections.ID).", aliases: ["ID"] },
        { name: "class_name", type: "string", required: false, description: "The class's name; when absent it is built from the course (see rules).", aliases: [] },
        { name: "school_id", type: "id", required: true, description: "The class's school.", aliases: [] },
        { name: "course_id", type: "id", required: true, description: "The class's course.", aliases: ["Course_Number"] },
        { name: "teacher_id", type: "id", required: true, description: "The lead teacher: a staff `district_user_id` (PowerSchool Teachers.ID).", aliases: ["Teacher"] },
        { name: "term_id", type: "id", required: false, description: "The class's term.", aliases: [] },
        { name: "section_number", type: "string", required: false, description: "Section number within the course.", aliases: [] },
        { name: "period", type: "string", required: false, description: "Period or meeting time (PowerSchool's expression, e.g. `1(A)`).", aliases: ["Expression"] },
        { name: "room", type: "string", required: false, description: "Room.", aliases: [] },
      ],
      references: [
        { columns: ["school_id"], entity: "schools", targetColumns: ["school_id"] },
        { columns: ["teacher_id"], entity: "users", targetColumns: ["district_user_id"], targetScope: "staff" },
        { columns: ["course_id"], entity: "courses", targetColumns: ["course_id"] },
        { columns: ["term_id"], entity: "terms", targetColumns: ["term_id"], note: "matched together with the class's `school_id` when terms carry one" },
      ],
      rules: [
        {
          kind: "derive-class-name",
          column: "class_name",
          description:
            "A class without `class_name` is named `<course_name> - <section_number>` from the courses file, else `<course_id> - <section_number>` (without ` - <section_number>` when that is empty).",
        },
      ],
    },
    enrollments: {
      name: "enrollments",
      description: "One row per student in a class (PowerSchool CC).",
      optionalFile: false,
      fileStems: [
        { stem: "enrollments" },
        {
          stem: "cc",
          powerSchool: {
            table: "CC",
            tableNumber: 4,
            autoSendData: "Student Schedules",
            fileNames: { dem: "cc.csv", autoSend: "cc.txt" },
            note: "Keep dropped enrollments in the export: PowerSchool marks a drop with a negative `SectionID`, and Rosterdock removes the student from the class.",
            fields: [
              { column: "student_id", dem: "CC.StudentID", autoSend: "StudentID", confidence: "sure" },
              { column: "class_id", dem: "CC.SectionID", autoSend: "SectionID", confidence: "sure" },
              { column: "start_date", dem: "CC.DateEnrolled", autoSend: "DateEnrolled", confidence: "sure" },
              { column: "end_date", dem: "CC.DateLeft", autoSend: "DateLeft", confidence: "sure" },
            ],
          },
        },
      ],
      key: ["class_id", "student_id"],
      columns: [
        { name: "class_id", type: "id", required: true, description: "The class (PowerSchool CC.SectionID).", aliases: ["SectionID"] },
        { name: "student_id", type: "id", required: true, description: "The student: a student `district_user_id` (PowerSchool Students.ID, not Student_Number).", aliases: [] },
        { name: "start_date", type: "date", required: false, description: "First day in the class.", aliases: ["DateEnrolled"] },
        { name: "end_date", type: "date", required: false, description: "Day after the last day in the class (exclusive).", aliases: ["DateLeft"] },
      ],
      references: [
        { columns: ["class_id"], entity: "classes", targetColumns: ["class_id"] },
        { columns: ["student_id"], entity: "users", targetColumns: ["district_user_id"], targetScope: "student" },
      ],
      rules: [
        {
          kind: "drop-if-negative",
          column: "class_id",
          issue: "DROPPED_ENROLLMENTS",
          description:
            "A row whose `class_id` is a negative number is a dropped enrollment (PowerSchool negates SectionID on a drop): not in the roster, not an error, counted. It never cancels an active row for the same class and student.",
        },
      ],
    },
    courses: {
      name: "courses",
      description: "One row per course. Optional: used to name classes.",
      optionalFile: true,
      fileStems: [
        {
          stem: "courses",
          powerSchool: {
            table: "Courses",
            tableNumber: 2,
            autoSendData: "Courses",
            fileNames: { dem: "courses.csv", autoSend: "courses.txt" },
            note: "Used to name classes; a night without it changes nothing.",
            fields: [
              { column: "course_id", dem: "Courses.Course_Number", autoSend: "Course_Number", confidence: "sure" },
              { column: "course_name", dem: "Courses.Course_Name", autoSend: "Course_Name", confidence: "sure" },
              { column: "school_id", none: "Not needed: PowerSchool's course catalogue serves the whole district." },
            ],
          },
        },
      ],
      key: ["course_id"],
      columns: [
        { name: "course_id", type: "id", required: true, description: "The course number.", aliases: ["Course_Number"] },
        { name: "course_name", type: "string", required: true, description: "The course's name.", aliases: [] },
        { name: "school_id", type: "id", required: false, description: "The school offering the course.", aliases: [] },
      ],
      references: [{ columns: ["school_id"], entity: "schools", targetColumns: ["school_id"] }],
      rules: [],
    },
    terms: {
      name: "terms",
      description: "One row per term and school. Optional.",
      optionalFile: true,
      fileStems: [
        {
          stem: "terms",
          powerSchool: {
            table: "Terms",
            tableNumber: 13,
            autoSendData: null,
            fileNames: { dem: "terms.csv", autoSend: null },
            note: "AutoSend has no Terms data: districts using AutoSend export this file with Data Export Manager too. PowerSchool repeats each term per school.",
            fields: [
              { column: "term_id", dem: "Terms.ID", autoSend: null, confidence: "sure" },
              { column: "term_name", dem: "Terms.Name", autoSend: null, confidence: "sure" },
              { column: "start_date", dem: "Terms.FirstDay", autoSend: null, confidence: "sure" },
              { column: "end_date", dem: "Terms.LastDay", autoSend: null, confidence: "sure" },
              { column: "school_id", dem: "Terms.SchoolID", autoSend: null, confidence: "sure" },
            ],
          },
        },
      ],
      key: ["term_id", "school_id"],
      columns: [
        { name: "term_id", type: "id", required: true, description: "The term's id (PowerSchool Terms.ID, e.g. 3600 for 2026-27).", aliases: ["ID"] },
        { name: "term_name", type: "string", required: true, description: "The term's name.", aliases: ["Name"] },
        { name: "start_date", type: "date", required: true, description: "First day.", aliases: ["FirstDay"] },
        { name: "end_date", type: "date", required: true, description: "Last day.", aliases: ["LastDay"] },
        { name: "school_id", type: "id", required: false, description: "The school; PowerSchool repeats each term per school.", aliases: [] },
      ],
      references: [{ columns: ["school_id"], entity: "schools", targetColumns: ["school_id"] }],
      rules: [],
    },
  },
  /** Aliases that hold in every file whose entity has the target column. */
  commonAliases: {
    school_id: ["SchoolID"],
    course_id: ["Course_Number"],
    term_id: ["TermID"],
  },
} as const satisfies {
  entities: { readonly [E in EntityName]: EntitySpec & { readonly name: E } };
  commonAliases: Readonly<Record<string, readonly string[]>>;
};

export function entitySpec(entity: EntityName): EntitySpec {
  return ROSTER_SPEC.entities[entity];
}

/** Every label a column answers to: its name, its own aliases, and the common aliases. */
export function columnLabels(column: ColumnSpec): readonly string[] {
  const common: readonly string[] =
    (ROSTER_SPEC.commonAliases as Readonly<Record<string, readonly string[]>>)[column.name] ?? [];
  return [column.name, ...column.aliases, ...common.filter((alias) => !column.aliases.includes(alias))];
}

// ---- record types, derived from the spec ----

type Entities = typeof ROSTER_SPEC.entities;
type ColumnOf<E extends EntityName> = Entities[E]["columns"][number];
type StoredColumnOf<E extends EntityName> = Exclude<ColumnOf<E>, { inputOnly: true }>;
type ValueOfType<T extends ColumnType> = T extends "integer" ? number : T extends "role" ? Role : T extends "sex" ? Sex : string;

export type RecordOf<E extends EntityName> = {
  [C in StoredColumnOf<E> as C["name"]]: C["required"] extends true ? ValueOfType<C["type"]> : ValueOfType<C["type"]> | null;
};

export type SchoolRecord = RecordOf<"schools">;
/** `scope` is derived from `role`; (scope, district_user_id) is the key. */
export type UserRecord = RecordOf<"users"> & { scope: Scope };
/**
 * `class_name` is null when the file has none: the staging layer fills it from the course
 * (`<course_name> - <section_number>`), see the derive-class-name rule.
 */
export type ClassRecord = RecordOf<"classes">;
/** `student_id` is a student-scope user key; `class_id` never negative (dropped rows are removed). */
export type EnrollmentRecord = RecordOf<"enrollments">;
export type CourseRecord = RecordOf<"courses">;
export type TermRecord = RecordOf<"terms">;

export interface CanonicalRecords {
  schools: SchoolRecord;
  users: UserRecord;
  classes: ClassRecord;
  enrollments: EnrollmentRecord;
  courses: CourseRecord;
  terms: TermRecord;
}
export type CanonicalRecord = CanonicalRecords[EntityName];

/** Column names of an entity's stored record, in spec order (plus `scope` for users). */
export function recordColumns(entity: EntityName): readonly string[] {
  const names = entitySpec(entity)
    .columns.filter((column) => !column.inputOnly)
    .map((column) => column.name);
  return entity === "users" ? [...names, "scope"] : names;
}

/** A file a district exports from PowerSchool, with the roster table it feeds. */
export interface PowerSchoolFile {
  entity: EntityName;
  stem: string;
  export: PowerSchoolExportSpec;
}

/** Every file PowerSchool sends, in spec order. */
export function powerSchoolFiles(): PowerSchoolFile[] {
  return ENTITY_NAMES.flatMap((entity) =>
    entitySpec(entity).fileStems.flatMap((stem) => (stem.powerSchool ? [{ entity, stem: stem.stem, export: stem.powerSchool }] : [])),
  );
}
