import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import iconv from "iconv-lite";
import yazl from "yazl";
import { DemoDistrict } from "./demo-district.ts";
import type { DemoCourse, DemoDate, DemoEnrollment, DemoSchool, DemoSection, DemoStudent, DemoTeacher, DemoTerm, DistrictSize } from "./demo-district.ts";

export const DEMO_STYLES = ["dem", "autosend", "canonical"] as const;
export type DemoStyle = (typeof DEMO_STYLES)[number];

export const DEFAULT_DEMO_SIZE: Readonly<DistrictSize> = Object.freeze({
  schools: 3,
  students: 300,
  teachers: 24,
  sectionsPerTeacher: 5,
  enrollmentsPerStudent: 6,
  courses: 30,
});

/** 1M users, 100k classes, ~8M CC rows: the benchmark district. */
export const BENCHMARK_DEMO_SIZE: Readonly<DistrictSize> = Object.freeze({
  schools: 40,
  students: 980_000,
  teachers: 20_000,
  sectionsPerTeacher: 5,
  enrollmentsPerStudent: 8,
  courses: 600,
});

export interface DemoDataOptions extends Partial<DistrictSize> {
  /** Default: all three. Each style is written to OUTDIR/<style>/. */
  styles?: readonly DemoStyle[];
  seed?: number;
  /** 1 = first night; each later night changes ~1% (students added, removed, renamed; enrollments moved). */
  night?: number;
  /** Date of night 1, YYYY-MM-DD; DEM file names carry the night's date. */
  firstNightDate?: string;
  /**
   * 1 = 2026-2027; 2 = the next school year (a year later): the same schools, people and courses,
   * but new sections, terms and CC records, as after PowerSchool's year-end rollover.
   */
  schoolYear?: number;
}

/** What a correct intake of any style must find. */
export interface DemoExpectations {
  schools: number;
  /** Active students (Enroll_Status 0). */
  students: number;
  inactiveStudents: number;
  /** Teachers rows: a teacher at two schools counts twice. */
  staff: number;
  classes: number;
  /** Active (class, student) pairs. */
  enrollments: number;
  /** CC rows with a negative SectionID. */
  droppedEnrollmentRows: number;
  courses: number;
  /** Term rows, one per term and school. */
  terms: number;
}

export interface DemoDataResult {
  /** Files written, by style. */
  files: Record<DemoStyle, string[]>;
  expected: DemoExpectations;
}

interface Format {
  delimiter: string;
  eol: string;
  encoding: "utf-8" | "utf-8-bom" | "windows-1252";
  /** PowerSchool's AutoSend never quotes; DEM can quote every value. */
  quoting: "all" | "needed" | "never";
  /** AutoSend ends every line with the delimiter. */
  trailingDelimiter: boolean;
  date: (date: DemoDate | null) => string;
}

interface Table<T> {
  stem: string;
  rows: () => Iterable<T>;
  columns: ReadonlyArray<readonly [label: string, value: (row: T) => string]>;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

const FORMATS: Record<DemoStyle, Format> = {
  dem: { delimiter: ",", eol: "\r\n", encoding: "utf-8-bom", quoting: "all", trailingDelimiter: false, date: (d) => (d === null ? "" : `${pad2(d[1])}/${pad2(d[2])}/${d[0]}`) },
  autosend: { delimiter: "\t", eol: "\n", encoding: "windows-1252", quoting: "never", trailingDelimiter: true, date: (d) => (d === null ? "0/0/0" : `${d[1]}/${d[2]}/${d[0]}`) },
  canonical: { delimiter: ",", eol: "\n", encoding: "utf-8", quoting: "needed", trailingDelimiter: false, date: (d) => (d === null ? "" : `${d[0]}-${pad2(d[1])}-${pad2(d[2])}`) },
};

/**
 * Writes a realistic night of roster files for a synthetic district, deterministically, in
 * bounded memory (rows are generated as they are written). For `rosterdock demo-data OUTDIR`.
 */
export async function generateDemoData(outDir: string, options: DemoDataOptions = {}): Promise<DemoDataResult> {
  const size: DistrictSize = { ...DEFAULT_DEMO_SIZE, ...definedOnly(options) };
  const district = new DemoDistrict(size, options.seed ?? 1, options.night ?? 1, options.schoolYear ?? 1);
  const exportedAt = nightDate(options.firstNightDate ?? "2026-11-28", district.night, district.schoolYear);
  const stamp = exportedAt.toISOString().slice(0, 10).replaceAll("-", "");
  const files = { dem: [], autosend: [], canonical: [] } as Record<DemoStyle, string[]>;
  for (const style of options.styles ?? DEMO_STYLES) {
    const dir = join(outDir, style);
    await mkdir(dir, { recursive: true });
    files[style] = style === "canonical" ? [await writeZip(dir, district, exportedAt)] : await writeTables(dir, style, district, stamp);
  }
  return { files, expected: expectations(district) };
}

function definedOnly(options: DemoDataOptions): Partial<DistrictSize> {
  const size: Partial<DistrictSize> = {};
  for (const key of Object.keys(DEFAULT_DEMO_SIZE) as Array<keyof DistrictSize>) {
    const value = options[key];
    if (value !== undefined) size[key] = value;
  }
  return size;
}

/** When the night's export ran: 3:00 AM UTC of the night's date, as a PowerSchool schedule would. */
function nightDate(firstNight: string, night: number, schoolYear: number): Date {
  const date = new Date(`${firstNight}T03:00:00Z`);
  date.setUTCFullYear(date.getUTCFullYear() + schoolYear - 1);
  date.setUTCDate(date.getUTCDate() + night - 1);
  return date;
}

async function writeTables(dir: string, style: "dem" | "autosend", district: DemoDistrict, stamp: string): Promise<string[]> {
  const format = FORMATS[style];
  const paths: string[] = [];
  for (const table of powerSchoolTables(district, style)) {
    const path = join(dir, style === "dem" ? `${table.stem}_${stamp}.csv` : `${table.stem}.txt`);
    await pipeline(Readable.from(encodeTable(table, format), { objectMode: false }), createWriteStream(path));
    paths.push(path);
  }
  return paths;
}

async function writeZip(dir: string, district: DemoDistrict, exportedAt: Date): Promise<string> {
  const path = join(dir, "roster.zip");
  const zip = new yazl.ZipFile();
  for (const table of canonicalTables(district)) {
    // Lazy: yazl asks for each entry's stream in turn, so only one table is generated at a time.
    // The entries' times are the export's, not the clock's: the same night is the same bytes.
    zip.addReadStreamLazy(`${table.stem}.csv`, { mtime: exportedAt }, (callback) => callback(null, Readable.from(encodeTable(table, FORMATS.canonical), { objectMode: false })));
  }
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(path));
  return path;
}

const FLUSH_CHARS = 256 * 1024;

function* encodeTable<T>(table: Table<T>, format: Format): Generator<Buffer> {
  let text = format.encoding === "utf-8-bom" ? "\uFEFF" : "";
  text += line(table.columns.map(([label]) => label), format);
  for (const row of table.rows()) {
    text += line(table.columns.map(([, value]) => value(row)), format);
    if (text.length >= FLUSH_CHARS) {
      yield encode(text, format);
      text = "";
    }
  }
  yield encode(text, format);
}

function line(values: string[], format: Format): string {
  const cells = values.map((value) => quote(value, format));
  return cells.join(format.delimiter) + (format.trailingDelimiter ? format.delimiter : "") + format.eol;
}

function quote(value: string, format: Format): string {
  if (format.quoting === "never") return value;
  const needs = format.quoting === "all" || value.includes(format.delimiter) || value.includes('"') || value.includes("\n") || value.includes("\r");
  return needs ? `"${value.replaceAll('"', '""')}"` : value;
}

function encode(text: string, format: Format): Buffer {
  return format.encoding === "windows-1252" ? iconv.encode(text, "windows-1252") : Buffer.from(text, "utf8");
}

function* activeStudents(district: DemoDistrict): Generator<DemoStudent> {
  for (const student of district.students()) if (student.enrollStatus === 0) yield student;
}

function* activeEnrollments(district: DemoDistrict): Generator<DemoEnrollment> {
  for (const enrollment of district.enrollments()) if (!enrollment.sectionId.startsWith("-")) yield enrollment;
}

function table<T>(stem: string, rows: () => Iterable<T>, columns: Table<T>["columns"]): Table<unknown> {
  return { stem, rows, columns } as Table<unknown>;
}

/** Data Export Manager labels carry the table (`Students.ID`); AutoSend's do not, except related-table `[NN]` fields. */
function powerSchoolTables(district: DemoDistrict, style: "dem" | "autosend"): Table<unknown>[] {
  const dem = style === "dem";
  const date = FORMATS[style].date;
  const label = (tableName: string, field: string) => (dem ? `${tableName}.${field}` : field);
  const onlyDem = <C>(columns: C[]): C[] => (dem ? columns : []);
  const onlyAutoSend = <C>(columns: C[]): C[] => (dem ? [] : columns);
  return [
    table<DemoSchool>("schools", () => district.schools(), [
      ...onlyDem([["Schools.ID", (s: DemoSchool) => String(Number(s.number) - 100)] as const]),
      [label("Schools", "School_Number"), (s) => s.number],
      [label("Schools", "Name"), (s) => s.name],
      ...onlyDem([["Schools.Abbreviation", (s: DemoSchool) => s.abbreviation] as const]),
      [label("Schools", "Low_Grade"), (s) => s.lowGrade],
      [label("Schools", "High_Grade"), (s) => s.highGrade],
    ]),
    table<DemoStudent>("students", () => district.students(), [
      [label("Students", "ID"), (s) => s.id],
      ...onlyDem([["Students.DCID", (s: DemoStudent) => String(Number(s.id) + 40_000)] as const]),
      [label("Students", "Student_Number"), (s) => s.studentNumber],
      [label("Students", "State_StudentNumber"), (s) => s.stateId],
      [label("Students", "First_Name"), (s) => s.firstName],
      [label("Students", "Middle_Name"), (s) => s.middleName],
      [label("Students", "Last_Name"), (s) => s.lastName],
      [label("Students", "Grade_Level"), (s) => s.grade],
      [label("Students", "SchoolID"), (s) => s.school],
      [label("Students", "DOB"), (s) => date(s.birthDate)],
      [label("Students", "Enroll_Status"), (s) => String(s.enrollStatus)],
      ...onlyAutoSend([["[39]Abbreviation", (s: DemoStudent) => district.school(Number(s.school) - 101).abbreviation] as const]),
    ]),
    table<DemoTeacher>("teachers", () => district.teachers(), [
      [label("Teachers", "ID"), (t) => t.id],
      ...onlyDem([["Teachers.DCID", (t: DemoTeacher) => String(Number(t.id) + 70_000)] as const]),
      [label("Teachers", "TeacherNumber"), (t) => t.teacherNumber],
      [label("Teachers", "First_Name"), (t) => t.firstName],
      [label("Teachers", "Last_Name"), (t) => t.lastName],
      [label("Teachers", "Email_Addr"), (t) => t.email],
      [label("Teachers", "SchoolID"), (t) => t.school],
      [label("Teachers", "Status"), () => "1"],
    ]),
    table<DemoSection>("sections", () => district.sections(), [
      [label("Sections", "ID"), (s) => s.id],
      [label("Sections", "SchoolID"), (s) => s.school],
      [label("Sections", "Course_Number"), (s) => s.courseNumber],
      [label("Sections", "Section_Number"), (s) => s.sectionNumber],
      [label("Sections", "TermID"), (s) => s.termId],
      [label("Sections", "Teacher"), (s) => s.teacherId],
      ...onlyDem([["Sections.Expression", (s: DemoSection) => s.expression] as const]),
      ...onlyAutoSend([
        ["[05]TeacherNumber", (s: DemoSection) => s.teacherNumber] as const,
        ["[02]Course_Name", (s: DemoSection) => s.courseName] as const,
      ]),
      [label("Sections", "Room"), (s) => s.room],
    ]),
    table<DemoEnrollment>("cc", () => district.enrollments(), [
      ...onlyDem([["CC.ID", (e: DemoEnrollment) => e.ccId] as const]),
      [label("CC", "StudentID"), (e) => e.studentId],
      [label("CC", "SectionID"), (e) => e.sectionId],
      [label("CC", "SchoolID"), (e) => e.school],
      [label("CC", "TermID"), (e) => e.termId],
      [label("CC", "DateEnrolled"), (e) => date(e.start)],
      [label("CC", "DateLeft"), (e) => date(e.end)],
      ...onlyAutoSend([["[01]Student_Number", (e: DemoEnrollment) => e.studentNumber] as const]),
    ]),
    table<DemoCourse>("courses", () => district.courses(), [
      [label("Courses", "Course_Number"), (c) => c.number],
      [label("Courses", "Course_Name"), (c) => c.name],
      ...onlyDem([["Courses.Credit_Hours", () => "1"] as const]),
    ]),
    table<DemoTerm>("terms", () => district.terms(), [
      [label("Terms", "ID"), (t) => t.id],
      [label("Terms", "Name"), (t) => t.name],
      ...onlyDem([["Terms.Abbreviation", (t: DemoTerm) => t.abbreviation] as const]),
      [label("Terms", "FirstDay"), (t) => date(t.start)],
      [label("Terms", "LastDay"), (t) => date(t.end)],
      [label("Terms", "YearID"), (t) => t.yearId],
      [label("Terms", "SchoolID"), (t) => t.school],
    ]),
  ];
}

type CanonicalUser = { kind: "student"; student: DemoStudent } | { kind: "teacher"; teacher: DemoTeacher };

function* canonicalUsers(district: DemoDistrict): Generator<CanonicalUser> {
  for (const student of activeStudents(district)) yield { kind: "student", student };
  for (const teacher of district.teachers()) yield { kind: "teacher", teacher };
}

/** The canonical format: spec column names, ISO dates, only what belongs in the roster. */
function canonicalTables(district: DemoDistrict): Table<unknown>[] {
  const date = FORMATS.canonical.date;
  const user = <K extends keyof DemoStudent & keyof DemoTeacher>(key: K) => (u: CanonicalUser) => (u.kind === "student" ? u.student[key] : u.teacher[key]);
  return [
    table<DemoSchool>("schools", () => district.schools(), [
      ["school_id", (s) => s.number],
      ["school_name", (s) => s.name],
      ["low_grade", (s) => s.lowGrade],
      ["high_grade", (s) => s.highGrade],
    ]),
    table<CanonicalUser>("users", () => canonicalUsers(district), [
      ["district_user_id", user("id")],
      ["role", (u) => u.kind],
      ["first_name", user("firstName")],
      ["middle_name", (u) => (u.kind === "student" ? u.student.middleName : "")],
      ["last_name", user("lastName")],
      ["email", (u) => (u.kind === "teacher" ? u.teacher.email : "")],
      ["school_id", user("school")],
      ["grade", (u) => (u.kind === "student" ? u.student.grade : "")],
      ["student_number", (u) => (u.kind === "student" ? u.student.studentNumber : "")],
      ["teacher_number", (u) => (u.kind === "teacher" ? u.teacher.teacherNumber : "")],
      ["birth_date", (u) => (u.kind === "student" ? date(u.student.birthDate) : "")],
    ]),
    table<DemoSection>("classes", () => district.sections(), [
      ["class_id", (s) => s.id],
      ["class_name", (s) => `${s.courseName} - ${s.sectionNumber}`],
      ["school_id", (s) => s.school],
      ["course_id", (s) => s.courseNumber],
      ["teacher_id", (s) => s.teacherId],
      ["term_id", (s) => s.termId],
      ["section_number", (s) => s.sectionNumber],
      ["period", (s) => s.expression],
      ["room", (s) => s.room],
    ]),
    table<DemoEnrollment>("enrollments", () => activeEnrollments(district), [
      ["class_id", (e) => e.sectionId],
      ["student_id", (e) => e.studentId],
      ["start_date", (e) => date(e.start)],
      ["end_date", (e) => date(e.end)],
    ]),
    table<DemoCourse>("courses", () => district.courses(), [
      ["course_id", (c) => c.number],
      ["course_name", (c) => c.name],
    ]),
    table<DemoTerm>("terms", () => district.terms(), [
      ["term_id", (t) => t.id],
      ["term_name", (t) => t.name],
      ["start_date", (t) => date(t.start)],
      ["end_date", (t) => date(t.end)],
      ["school_id", (t) => t.school],
    ]),
  ];
}

/** Counted by generating again: cheap next to writing, and keeps the writers simple. */
export function expectations(district: DemoDistrict): DemoExpectations {
  let students = 0;
  let inactiveStudents = 0;
  for (const student of district.students()) {
    if (student.enrollStatus === 0) students++;
    else inactiveStudents++;
  }
  let enrollments = 0;
  let droppedEnrollmentRows = 0;
  for (const enrollment of district.enrollments()) {
    if (enrollment.sectionId.startsWith("-")) droppedEnrollmentRows++;
    else enrollments++;
  }
  return {
    schools: district.size.schools,
    students,
    inactiveStudents,
    staff: district.size.teachers + (district.hasTwoSchoolTeacher ? 1 : 0),
    classes: district.sectionCount,
    enrollments,
    droppedEnrollmentRows,
    courses: district.size.courses,
    terms: district.size.schools * 3,
  };
}
