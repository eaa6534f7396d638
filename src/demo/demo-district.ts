/**
 * A deterministic synthetic school district. Every value is a pure function of (seed, index,
 * night), so a district of 1M students is generated row by row in bounded memory, and a
 * "second night" differs from the first by a reproducible ~1%.
 */

export interface DistrictSize {
  schools: number;
  students: number;
  teachers: number;
  sectionsPerTeacher: number;
  enrollmentsPerStudent: number;
  courses: number;
}

export interface DemoSchool {
  number: string;
  name: string;
  abbreviation: string;
  lowGrade: string;
  highGrade: string;
}

export interface DemoStudent {
  id: string;
  studentNumber: string;
  firstName: string;
  middleName: string;
  lastName: string;
  grade: string;
  school: string;
  /** null: unknown (exported as empty or 0/0/0). */
  birthDate: DemoDate | null;
  enrollStatus: number;
  stateId: string;
}

export interface DemoTeacher {
  /** Teachers.ID: one per school the teacher works at. */
  id: string;
  teacherNumber: string;
  firstName: string;
  lastName: string;
  email: string;
  school: string;
}

export interface DemoSection {
  id: string;
  school: string;
  courseNumber: string;
  courseName: string;
  sectionNumber: string;
  termId: string;
  teacherId: string;
  teacherNumber: string;
  expression: string;
  room: string;
}

export interface DemoEnrollment {
  ccId: string;
  studentId: string;
  studentNumber: string;
  /** Negative for a dropped enrollment, as PowerSchool writes it. */
  sectionId: string;
  school: string;
  termId: string;
  start: DemoDate;
  end: DemoDate;
}

export interface DemoTerm {
  id: string;
  name: string;
  abbreviation: string;
  start: DemoDate;
  end: DemoDate;
  yearId: string;
  school: string;
}

export interface DemoCourse {
  number: string;
  name: string;
}

export type DemoDate = readonly [year: number, month: number, day: number];

const FIRST_NAMES = ["José", "Zoë", "Renée", "Chloé", "François", "Søren", "Björn", "Inês", "Noël", "Maëlle", "Ana", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Aisha", "Wei", "Priya", "Kwame", "Sofia", "Lucas", "Mia", "Ethan", "Ava", "Jürgen"];
const LAST_NAMES = ["Peña", "Müller", "Núñez", "García", "O'Brien", "Smith", "Nguyen", "Johnson", "Kowalski", "Brontë", "Ødegaard", "Ibáñez", "Schröder", "Lefèvre", "Williams", "Brown", "Okafor", "Patel", "Chen", "Rossi", "Çelik", "Åberg"];
const MIDDLE_NAMES = ["", "", "Marie", "James", "Lee", "Ann", "José", ""];
const SCHOOL_NAMES = ["Lincoln Elementary", "Roosevelt Middle", "Jefferson High", "Washington Elementary", "Adams Middle", "Madison High", "Monroe Elementary", "Jackson Middle", "Kennedy High"];
const COURSE_NAMES = ["Algebra I", "Geometry", "Biology", "Chemistry", "World History", "English 9", "English 10", "Spanish I", "Français I", "Art", "Music", "Physical Education", "Computer Science", "Physics", "Economics"];
const SCHOOL_GRADES = [["0", "5"], ["6", "8"], ["9", "12"]] as const;
const INACTIVE_STATUSES = [-1, 1, 2, 3];

/** A student with a comma and a quote in the name, for the parsers' sake. */
const TRICKY_STUDENT = { firstName: 'Mary "Mae"', lastName: "O'Neil, Jr." };

const CHANGE_RATE = 0.003;
const ENROLLMENT_CHANGE_RATE = 0.005;
const DROPPED_RATE = 0.03;
const INACTIVE_RATE = 0.01;

export const FIRST_DAY: DemoDate = [2026, 8, 24];
export const LAST_DAY: DemoDate = [2027, 6, 11];
const TERMS = [
  { n: 0, name: "2026-2027", abbreviation: "26-27", start: FIRST_DAY, end: LAST_DAY },
  { n: 1, name: "Semester 1", abbreviation: "S1", start: FIRST_DAY, end: [2027, 1, 15] as DemoDate },
  { n: 2, name: "Semester 2", abbreviation: "S2", start: [2027, 1, 19] as DemoDate, end: LAST_DAY },
];
const YEAR_ID = 36;
/** Section ids of a later school year: new ones, as PowerSchool gives a new year's sections. */
const SECTION_IDS_PER_YEAR = 10_000_000;

function laterBy(date: DemoDate, years: number): DemoDate {
  return [date[0] + years, date[1], date[2]];
}

/** A 32-bit integer hash of the seed and keys (murmur3's finaliser over a simple mix). */
function hash(seed: number, ...keys: number[]): number {
  let h = seed ^ 0x9e3779b9;
  for (const key of keys) {
    h = Math.imul(h ^ (key | 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

const SALT = { name: 1, middle: 2, status: 3, dob: 4, removed: 5, renamed: 6, enrolChange: 7, pick: 8, dropped: 9, course: 10, term: 11, reenrolled: 12 } as const;

export class DemoDistrict {
  readonly size: DistrictSize;
  readonly seed: number;
  readonly night: number;
  /** 1 = the school year 2026-2027; each later year has new sections, terms and CC records. */
  readonly schoolYear: number;
  /** Years after the first: shifts dates, term and section ids. */
  readonly #years: number;

  constructor(size: DistrictSize, seed: number, night: number, schoolYear = 1) {
    if (size.schools < 1 || size.teachers < size.schools || size.sectionsPerTeacher < 1) {
      throw new RangeError("a demo district needs at least one school, one teacher per school and one section per teacher");
    }
    this.size = size;
    this.seed = seed;
    this.night = Math.max(1, Math.floor(night));
    this.schoolYear = Math.max(1, Math.floor(schoolYear));
    this.#years = this.schoolYear - 1;
  }

  /** A date of the first school year, in this one. */
  #date(date: DemoDate): DemoDate {
    return laterBy(date, this.#years);
  }

  get #yearId(): number {
    return YEAR_ID + this.#years;
  }

  /** A term of this school year, by its number in TERMS. */
  #term(n: number): { start: DemoDate; end: DemoDate } {
    const term = TERMS[n]!;
    return { start: this.#date(term.start), end: this.#date(term.end) };
  }

  #random(salt: number, ...keys: number[]): number {
    return hash(this.seed, salt, ...keys) / 2 ** 32;
  }

  #pick<T>(list: readonly T[], salt: number, ...keys: number[]): T {
    return list[hash(this.seed, salt, ...keys) % list.length]!;
  }

  school(s: number): DemoSchool {
    const [lowGrade, highGrade] = SCHOOL_GRADES[s % SCHOOL_GRADES.length]!;
    const base = SCHOOL_NAMES[s % SCHOOL_NAMES.length]!;
    const name = s < SCHOOL_NAMES.length ? base : `${base} ${Math.floor(s / SCHOOL_NAMES.length) + 1}`;
    return { number: String(101 + s), name, abbreviation: name.replace(/[^A-Z0-9]/g, ""), lowGrade, highGrade };
  }

  *schools(): Generator<DemoSchool> {
    for (let s = 0; s < this.size.schools; s++) yield this.school(s);
  }

  *terms(): Generator<DemoTerm> {
    for (let s = 0; s < this.size.schools; s++) {
      for (const term of TERMS) {
        const { start, end } = this.#term(term.n);
        // The year-long term is named after its years; the semesters keep their names.
        const name = term.n === 0 ? `${start[0]}-${end[0]}` : term.name;
        const abbreviation = term.n === 0 ? `${start[0] % 100}-${end[0] % 100}` : term.abbreviation;
        yield { id: String(this.#yearId * 100 + term.n), name, abbreviation, start, end, yearId: String(this.#yearId), school: this.school(s).number };
      }
    }
  }

  course(c: number): DemoCourse {
    const base = COURSE_NAMES[c % COURSE_NAMES.length]!;
    const level = Math.floor(c / COURSE_NAMES.length);
    return { number: `C${String(1001 + c)}`, name: level === 0 ? base : `${base} ${level + 1}` };
  }

  *courses(): Generator<DemoCourse> {
    for (let c = 0; c < this.size.courses; c++) yield this.course(c);
  }

  /** Teacher 0 also works at a second school: a second Teachers.ID with the same TeacherNumber. */
  get hasTwoSchoolTeacher(): boolean {
    return this.size.schools >= 2;
  }

  teacher(t: number): DemoTeacher {
    const firstName = this.#pick(FIRST_NAMES, SALT.name, 1, t);
    const lastName = this.#pick(LAST_NAMES, SALT.name, 2, t);
    const teacherNumber = String(5001 + t);
    return { id: String(1001 + t), teacherNumber, firstName, lastName, email: `t${teacherNumber}@district.example.org`, school: this.school(t % this.size.schools).number };
  }

  *teachers(): Generator<DemoTeacher> {
    for (let t = 0; t < this.size.teachers; t++) yield this.teacher(t);
    if (this.hasTwoSchoolTeacher) yield { ...this.teacher(0), id: this.#secondTeacherId(), school: this.school(1).number };
  }

  #secondTeacherId(): string {
    return String(1001 + this.size.teachers);
  }

  get sectionCount(): number {
    return this.size.teachers * this.size.sectionsPerTeacher;
  }

  section(index: number): DemoSection {
    const t = Math.floor(index / this.size.sectionsPerTeacher);
    const j = index % this.size.sectionsPerTeacher;
    const teacher = this.teacher(t);
    const course = this.course(hash(this.seed, SALT.course, index) % Math.max(1, this.size.courses));
    const { id, school, termId } = this.#sectionPlace(index);
    return {
      id,
      school,
      courseNumber: course.number,
      courseName: course.name,
      sectionNumber: String(j + 1),
      termId,
      teacherId: this.#isSecondSchoolSection(index) ? this.#secondTeacherId() : teacher.id,
      teacherNumber: teacher.teacherNumber,
      expression: `${(j % 8) + 1}(A)`,
      room: String(100 + (t % 60)),
    };
  }

  /** Teacher 0's last section is taught at the second school. */
  #isSecondSchoolSection(index: number): boolean {
    const spt = this.size.sectionsPerTeacher;
    return this.hasTwoSchoolTeacher && spt > 1 && index === spt - 1;
  }

  /** The cheap part of a section, for the millions of enrollment rows. */
  #sectionPlace(index: number): { id: string; school: string; termId: string } {
    const t = Math.floor(index / this.size.sectionsPerTeacher);
    const termRoll = this.#random(SALT.term, index);
    const termN = termRoll < 0.7 ? 0 : termRoll < 0.85 ? 1 : 2;
    const s = this.#isSecondSchoolSection(index) ? 1 : t % this.size.schools;
    return { id: String(this.#firstSectionId + index), school: String(101 + s), termId: String(this.#yearId * 100 + termN) };
  }

  get #firstSectionId(): number {
    return 20001 + this.#years * SECTION_IDS_PER_YEAR;
  }

  *sections(): Generator<DemoSection> {
    for (let i = 0; i < this.sectionCount; i++) yield this.section(i);
  }

  /** Students present tonight: the first night's, minus removals, plus additions, by night. */
  get studentSlots(): number {
    return this.size.students + (this.night - 1) * this.#additionsPerNight;
  }

  get #additionsPerNight(): number {
    return Math.round(this.size.students * CHANGE_RATE);
  }

  #addedOnNight(i: number): number {
    return i < this.size.students ? 1 : 2 + Math.floor((i - this.size.students) / Math.max(1, this.#additionsPerNight));
  }

  /** null when the student slot is not in tonight's file (removed, or added on a later night). */
  student(i: number): DemoStudent | null {
    const added = this.#addedOnNight(i);
    if (added > this.night) return null;
    let lastNameSalt = 0;
    for (let m = Math.max(2, added + 1); m <= this.night; m++) {
      if (this.#random(SALT.removed, m, i) < CHANGE_RATE) return null;
      if (this.#random(SALT.renamed, m, i) < CHANGE_RATE) lastNameSalt = m;
    }
    const s = i % this.size.schools;
    const school = this.school(s);
    const tricky = i === 1;
    const grades = SCHOOL_GRADES[s % SCHOOL_GRADES.length]!;
    const grade = Number(grades[0]) + (hash(this.seed, SALT.name, 9, i) % (Number(grades[1]) - Number(grades[0]) + 1));
    const forcedInactive = i === 2 && this.size.students > 3;
    const inactive = forcedInactive || this.#random(SALT.status, i) < INACTIVE_RATE;
    const birthYear = 2026 - 6 - grade;
    return {
      id: String(1001 + i),
      studentNumber: String(200001 + i),
      firstName: tricky ? TRICKY_STUDENT.firstName : this.#pick(FIRST_NAMES, SALT.name, 3, i),
      middleName: this.#pick(MIDDLE_NAMES, SALT.middle, i),
      lastName: tricky && lastNameSalt === 0 ? TRICKY_STUDENT.lastName : this.#pick(LAST_NAMES, SALT.name, 4, i, lastNameSalt),
      grade: String(grade),
      school: school.number,
      birthDate: this.#random(SALT.dob, i) < 0.01 ? null : [birthYear, 1 + (hash(this.seed, SALT.dob, 1, i) % 12), 1 + (hash(this.seed, SALT.dob, 2, i) % 28)],
      enrollStatus: inactive ? this.#pick(INACTIVE_STATUSES, SALT.status, 1, i) : 0,
      stateId: String(9_000_000_001 + i),
    };
  }

  *students(): Generator<DemoStudent> {
    for (let i = 0; i < this.studentSlots; i++) {
      const student = this.student(i);
      if (student !== null) yield student;
    }
  }

  /** Section indexes of an active student: distinct, at the student's school. */
  #studentSections(i: number): number[] {
    let salt = 0;
    for (let m = 2; m <= this.night; m++) if (this.#random(SALT.enrolChange, m, i) < ENROLLMENT_CHANGE_RATE) salt = m;
    // A new school year: every student takes new classes.
    salt += this.#years * 1_000;
    const s = i % this.size.schools;
    const teachersHere = Math.floor((this.size.teachers - 1 - s) / this.size.schools) + 1;
    const wanted = Math.min(this.size.enrollmentsPerStudent, teachersHere * this.size.sectionsPerTeacher);
    const chosen: number[] = [];
    for (let k = 0; chosen.length < wanted && k < wanted * 8; k++) {
      const h = hash(this.seed, SALT.pick, i, k, salt);
      const t = s + this.size.schools * (h % teachersHere);
      const index = t * this.size.sectionsPerTeacher + (Math.floor(h / teachersHere) % this.size.sectionsPerTeacher);
      if (!chosen.includes(index)) chosen.push(index);
    }
    return chosen;
  }

  /**
   * CC rows, student by student: active rows, some dropped rows (negative SectionID) for other
   * sections, and some dropped rows for a section the student is active in again (re-enrolled).
   */
  *enrollments(): Generator<DemoEnrollment> {
    for (let i = 0; i < this.studentSlots; i++) {
      const student = this.student(i);
      if (student === null || student.enrollStatus !== 0) continue;
      // CC.ID is the CC record's own key in PowerSchool: a student's rows keep theirs night after
      // night (a block of ids per student slot: at most 2 rows per section and one more dropped row).
      // A new school year's CC records are new ones.
      let ccId = (i + this.#years * this.studentSlots) * (2 * this.size.enrollmentsPerStudent + 1) + 1;
      const sections = this.#studentSections(i);
      for (const [k, index] of sections.entries()) {
        const section = this.#sectionPlace(index);
        const term = this.#term(Number(section.termId) % 100);
        if (this.#random(SALT.reenrolled, i, k) < DROPPED_RATE / 3 || (i === 0 && k === 0)) {
          yield { ccId: String(ccId++), studentId: student.id, studentNumber: student.studentNumber, sectionId: `-${section.id}`, school: section.school, termId: `-${section.termId}`, start: term.start, end: this.#date([2026, 9, 4]) };
        }
        yield { ccId: String(ccId++), studentId: student.id, studentNumber: student.studentNumber, sectionId: section.id, school: section.school, termId: section.termId, start: term.start, end: term.end };
      }
      if (this.#random(SALT.dropped, i) < DROPPED_RATE || i === 0) {
        const other = this.#sectionPlace(hash(this.seed, SALT.dropped, 1, i) % this.sectionCount);
        if (!sections.includes(Number(other.id) - this.#firstSectionId)) {
          yield { ccId: String(ccId++), studentId: student.id, studentNumber: student.studentNumber, sectionId: `-${other.id}`, school: other.school, termId: `-${other.termId}`, start: this.#date(FIRST_DAY), end: this.#date([2026, 9, 4]) };
        }
      }
    }
  }
}
