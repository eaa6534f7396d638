import { join } from "node:path";
import { matchHeaders } from "../intake/match-headers.ts";
import { badRowLimitIssue, emptyFileStats, readRosterFile } from "../intake/read-roster-file.ts";
import type { FileStats } from "../intake/read-roster-file.ts";
import { MemoryIssueSink, makeIssue } from "../intake/issue.ts";
import type { IssueSink } from "../intake/issue.ts";
import { recogniseDelivery } from "../intake/recognise-file.ts";
import type { RecognisedFile } from "../intake/recognise-file.ts";
import { unpackDelivery } from "../intake/unpack.ts";
import type { DeliveryFile, RosterSource, UnpackLimits } from "../intake/unpack.ts";
import type {
  ClassRecord,
  CourseRecord,
  EnrollmentRecord,
  EntityName,
  SchoolRecord,
  Scope,
  TermRecord,
  UserRecord,
} from "../spec/roster-spec.ts";
import { ENTITY_NAMES } from "../spec/roster-spec.ts";
import { DIGESTED_ENTITIES, removedKeys, rowsOfKeys, sealDigest, writeExcludedRows } from "./line-digest.ts";
import type { DigestMeta, DigestPlan, DigestRef, DigestResult } from "./line-digest.ts";
import { ParseThread } from "./parse-thread.ts";
import type { ParsedMessage } from "./parse-thread.ts";
import { ROSTER_TABLES, allColumns, keyedStage, q, rosterTable, userKey } from "./roster-tables.ts";
import type { RosterEntity, RosterTable } from "./roster-tables.ts";
import type { Sqlite } from "./sync-connection.ts";

/** Which parts of the roster tonight's delivery speaks for; everything else is left as it is. */
export interface PresentParts {
  entities: Set<EntityName>;
  /** users.csv covers both scopes; students.* only students; teachers.*, staff.* only staff. */
  userScopes: Set<Scope>;
}

export interface StagedFile {
  name: string;
  entity: EntityName;
  /** The spec's file stem the name matched (students, teachers, cc…). */
  stem: string;
  stats: FileStats;
  /** Rows dropped because they point at something absent. */
  orphans: number;
  /** A digested file (see line-digest.ts): tonight's digest, and rows read but not staged or removed since. */
  digest: { dir: string; result: DigestResult; excluded: number[] } | null;
}

/** Line digests for a sync: where tonight's go, and the previous night's that match the live roster. */
export interface DigestOptions {
  dir: string;
  previous: readonly DigestRef[];
}

/** A digest written and sealed by this sync: usable by the next one once this sync is applied. */
export interface SealedDigest {
  file: string;
  dir: string;
  meta: DigestMeta;
  delta: boolean;
  unchanged: number;
  removed: number;
}

export interface StagedDelivery {
  present: PresentParts;
  files: StagedFile[];
  /** Files with a header and no data rows: they hold the sync. */
  emptyFiles: string[];
  /** A file-level error was reported: the delivery fails. */
  failed: boolean;
  /**
   * Entities read against the previous night's digest: only changed lines were staged, and
   * `stage.removed_<entity>` holds the keys of live rows whose lines did not come back.
   */
  delta: Set<EntityName>;
  digests: SealedDigest[];
}

export interface StageProgress {
  file: string;
  fileIndex: number;
  files: number;
  /** Bytes of this file read so far and its size (uncompressed). */
  bytes: number;
  size: number;
  /** Bytes read so far of all files, and their total. */
  totalBytes: number;
  totalSize: number;
}

export interface StageOptions {
  sqlite: Sqlite;
  districtId: number;
  issues: IssueSink;
  unpackLimits?: Partial<UnpackLimits>;
  onProgress?: (progress: StageProgress) => void;
  /** Keep line digests of the big files, and read against the previous night's. */
  digests?: DigestOptions;
}

const ROWS_PER_STATEMENT = 100;
const ENTITY_ORDER: readonly EntityName[] = ["schools", "courses", "terms", "users", "classes", "enrollments"];

/**
 * Streams a delivery's records into the sync's staging tables (`stage.*`, see SyncConnection),
 * checking references on the way (targets are staged first: schools, courses, terms, users,
 * classes, enrollments), then builds keys and lets the database find duplicate keys.
 * Row-level problems become issues; the caller decides from `failed` and the issue counts.
 */
export async function stageDelivery(files: readonly DeliveryFile[], options: StageOptions): Promise<StagedDelivery> {
  const { sqlite, issues } = options;
  createStagingTables(sqlite);
  const { sources, close } = await unpackDelivery(files, issues, options.unpackLimits ?? {});
  const staged: StagedFile[] = [];
  let present: PresentParts = { entities: new Set(), userScopes: new Set() };
  let parser: ParseThread | null = null;
  let references: References | null = null;
  try {
    const recognised = recogniseDelivery(sources, issues).sort(
      (a, b) => ENTITY_ORDER.indexOf(a.file.entity) - ENTITY_ORDER.indexOf(b.file.entity) || a.source.name.localeCompare(b.source.name),
    );
    present = presentParts(recognised.map((r) => r.file));
    references = new References(sqlite, options.districtId, present, recognised);
    const totalSize = recognised.reduce((sum, r) => sum + r.source.size, 0);
    let doneBytes = 0;
    let failedFile = false;
    for (const [fileIndex, { source, file }] of recognised.entries()) {
      if (failedFile) {
        // The delivery has already failed: tell the district now what else is wrong at file level.
        await checkFileLevel(source, file, issues);
        continue;
      }
      const progress = options.onProgress
        ? (bytes: number) =>
            options.onProgress!({ file: source.name, fileIndex, files: recognised.length, bytes, size: source.size, totalBytes: doneBytes + bytes, totalSize })
        : undefined;
      // Parsing runs on a thread of its own, overlapping the inserts here; it opens the same sources by index.
      if (parser === null) {
        parser = new ParseThread(files, options.unpackLimits ?? {});
        parser.prepare(recognised.slice(fileIndex).map((r) => sources.indexOf(r.source)));
      }
      const digestPlan = planDigest(options.digests, recognised, file);
      const parsed = parser.read(sources.indexOf(source), file, progress !== undefined, digestPlan);
      const result = await stageFile(sqlite, parsed, source.name, file, fileIndex, issues, references, progress, digestPlan?.outDir ?? null);
      staged.push(result);
      if (result.digest?.result.delta === true && result.stats.failed === null) {
        loadRemovedKeys(sqlite, result);
        // Before the files that point at students are read: unchanged students are live ones.
        if (result.entity === "users") {
          references.fillUnchangedStudents(options.districtId);
          orphansOfUnchangedStudents(sqlite, options.districtId, present, result, issues, references);
        }
      }
      doneBytes += source.size;
      progress?.(source.size);
      if (result.stats.failed !== null) {
        failedFile = true;
        await parser.close();
      }
    }
  } finally {
    await parser?.close();
    await close();
  }
  const delta = new Set<EntityName>();
  const digests: SealedDigest[] = [];
  if (issues.counts.error === 0) {
    for (const file of staged) {
      if (file.digest?.result.delta !== true) continue;
      delta.add(file.entity);
      duplicatesOfUnchangedLines(sqlite, options.districtId, file, issues);
    }
    buildKeys(sqlite, staged, issues);
    for (const file of staged) if (file.entity === "enrollments" && delta.has("enrollments")) orphansOfUnchangedLines(sqlite, options.districtId, present, delta, file, issues, references!);
    for (const file of staged) {
      const limit = badRowLimitIssue(file.name, file.stats);
      if (limit !== null) issues.add(limit);
    }
    for (const file of staged) {
      if (file.digest === null) continue;
      writeExcludedRows(file.digest.dir, file.digest.excluded);
      const { identity, entries, keyBytes } = file.digest.result;
      const meta: DigestMeta = { identity, entries, keyBytes };
      sealDigest(file.digest.dir, meta);
      const { delta: usedPrevious, unchanged, removed } = file.digest.result;
      digests.push({ file: file.name, dir: file.digest.dir, meta, delta: usedPrevious, unchanged, removed });
    }
  }
  return {
    present,
    files: staged,
    emptyFiles: staged.filter((s) => s.stats.failed === null && s.stats.rows === 0).map((s) => s.name),
    failed: issues.counts.error > 0,
    delta,
    digests,
  };
}

/**
 * Tonight's digest plan for a file: only for the entities digests are kept for, and only when
 * the file is the delivery's only file of its entity (the digest speaks for all its live rows).
 */
function planDigest(options: DigestOptions | undefined, recognised: ReadonlyArray<{ file: RecognisedFile }>, file: RecognisedFile): DigestPlan | null {
  if (options === undefined || !DIGESTED_ENTITIES.has(file.entity)) return null;
  // A users digest speaks for the live students: kept for the one file that has students.
  const speaksFor = (f: RecognisedFile) => f.entity === file.entity && (f.entity !== "users" || presentParts([f]).userScopes.has("student"));
  if (!speaksFor(file) || recognised.filter((r) => speaksFor(r.file)).length !== 1) return null;
  const previous = options.previous.find((p) => p.meta.identity.entity === file.entity && p.meta.identity.stem === file.stem) ?? null;
  return { outDir: join(options.dir, file.entity), previous };
}

/** Reads only as far as the header and first rows, keeping file-level errors (encoding, header, columns). */
async function checkFileLevel(source: RosterSource, file: RecognisedFile, issues: IssueSink): Promise<void> {
  const local = new MemoryIssueSink({ maxPerFileAndCode: 5 });
  const records = readRosterFile(source, file, local, { duplicates: null });
  try {
    await records.next();
  } finally {
    await records.return(emptyFileStats());
  }
  for (const issue of local.kept) if (issue.severity === "error" && (issue.row === null || issue.row <= 1)) issues.add(issue);
}

// ---- which parts are present ----

function presentParts(files: readonly RecognisedFile[]): PresentParts {
  const entities = new Set<EntityName>();
  const userScopes = new Set<Scope>();
  for (const file of files) {
    entities.add(file.entity);
    if (file.entity !== "users") continue;
    if (file.stem === "students") userScopes.add("student");
    else if (file.stem === "teachers" || file.stem === "staff") userScopes.add("staff");
    else {
      userScopes.add("student");
      userScopes.add("staff");
    }
  }
  return { entities, userScopes };
}

// ---- staging tables ----

function createStagingTables(sqlite: Sqlite): void {
  for (const table of ROSTER_TABLES) {
    // Key columns NOT NULL: then a unique index proves the order of every column, and the diff's EXCEPT is a merge without sorting.
    const notNull = new Set([...table.key, ...(table.entity === "users" ? ["scope", "district_user_id"] : [])]);
    const columns = allColumns(table).map((c) => `${q(c)} TEXT${notNull.has(c) ? " NOT NULL" : ""}`);
    sqlite.exec(`CREATE TABLE stage.${q(table.entity)} (${columns.join(", ")}, file_idx INTEGER NOT NULL, row INTEGER NOT NULL)`);
  }
}

/** Multi-row INSERTs of up to 100 rows: a fraction of the per-statement cost of single rows. */
class BatchInserter {
  readonly #width: number;
  readonly #many: ReturnType<Sqlite["prepare"]>;
  readonly #one: ReturnType<Sqlite["prepare"]>;
  #params: unknown[] = [];
  #rows = 0;

  constructor(sqlite: Sqlite, entity: RosterEntity) {
    const columns = [...allColumns(rosterTable(entity)), "file_idx", "row"];
    this.#width = columns.length;
    const tuple = `(${columns.map(() => "?").join(",")})`;
    const insert = `INSERT INTO stage.${q(entity)} (${columns.map(q).join(",")}) VALUES `;
    this.#many = sqlite.prepare(insert + Array.from({ length: ROWS_PER_STATEMENT }, () => tuple).join(","));
    this.#one = sqlite.prepare(insert + tuple);
  }

  /** Values in column order, then file index and row. */
  push(values: unknown[]): void {
    for (const value of values) this.#params.push(value);
    if (++this.#rows === ROWS_PER_STATEMENT) {
      this.#many.run(this.#params);
      this.#params = [];
      this.#rows = 0;
    }
  }

  /** Inserts the rows still pending (fewer than a full statement): at the end of a file. */
  flush(): void {
    for (let i = 0; i < this.#rows; i++) this.#one.run(this.#params.slice(i * this.#width, (i + 1) * this.#width));
    this.#params = [];
    this.#rows = 0;
  }
}

// ---- references ----

/**
 * Ids kept as numbers when they are plain decimal integers: a fraction of the memory of strings.
 * Small ones (PowerSchool's ids) are bits in a bitmap, which grows with the largest id seen: a
 * lookup per enrollment row is then one array read instead of a hash probe.
 */
class IdSet {
  #bits = new Uint32Array(1024);
  #bitCount = 0;
  readonly #numbers = new Set<number>();
  readonly #strings = new Set<string>();

  get size(): number {
    return this.#bitCount + this.#numbers.size + this.#strings.size;
  }

  add(id: string): void {
    const n = plainInteger(id);
    if (n < 0) this.#strings.add(id);
    else if (n >= BITMAP_LIMIT) this.#numbers.add(n);
    else {
      const word = n >>> 5;
      if (word >= this.#bits.length) this.#grow(word);
      const mask = 1 << (n & 31);
      if ((this.#bits[word]! & mask) === 0) {
        this.#bits[word]! |= mask;
        this.#bitCount++;
      }
    }
  }

  delete(id: string): void {
    const n = plainInteger(id);
    if (n < 0) this.#strings.delete(id);
    else if (n >= BITMAP_LIMIT) this.#numbers.delete(n);
    else {
      const word = n >>> 5;
      const mask = 1 << (n & 31);
      if (word < this.#bits.length && (this.#bits[word]! & mask) !== 0) {
        this.#bits[word]! &= ~mask;
        this.#bitCount--;
      }
    }
  }

  has(id: string): boolean {
    const n = plainInteger(id);
    if (n < 0) return this.#strings.has(id);
    if (n >= BITMAP_LIMIT) return this.#numbers.has(n);
    const word = n >>> 5;
    return word < this.#bits.length && (this.#bits[word]! & (1 << (n & 31))) !== 0;
  }

  #grow(word: number): void {
    let length = this.#bits.length;
    while (length <= word) length *= 2;
    const bits = new Uint32Array(length);
    bits.set(this.#bits);
    this.#bits = bits;
  }
}

/** Ids below this are bits (at most 4 MiB per set); larger ones go to a Set. */
const BITMAP_LIMIT = 2 ** 25;

/** The value of a plain decimal integer id (no sign, no leading zero, at most 15 digits), else -1. */
function plainInteger(id: string): number {
  const length = id.length;
  if (length === 0 || length > 15) return -1;
  let n = 0;
  for (let i = 0; i < length; i++) {
    const digit = id.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9 || (digit === 0 && i === 0)) return -1;
    n = n * 10 + digit;
  }
  return n;
}

type Target = "schools" | "courses" | "terms" | "students" | "staff" | "classes";

interface TargetState {
  /** Tonight's file(s) for the target, or null when checked against the live roster. */
  files: string[] | null;
  /** Null: not checked at all (an optional file the district does not send). */
  ids: IdSet | null;
}

const TARGET_NOUN: Record<Target, string> = {
  schools: "a school",
  courses: "a course",
  terms: "a term (of the class's school)",
  students: "a student",
  staff: "a staff member",
  classes: "a class",
};

/**
 * What rows may point at: ids staged so far tonight (targets are staged before the rows that
 * point at them), or, for a part absent from tonight's delivery, the live roster's ids.
 */
class References {
  readonly #targets = new Map<Target, TargetState>();
  /** Staff id → person (user_key), for classes.teacher_key. */
  readonly staffKeys = new Map<string, string>();
  /** Course id → name, for class names. */
  readonly courseNames = new Map<string, string>();

  constructor(
    private readonly sqlite: Sqlite,
    private readonly districtId: number,
    present: PresentParts,
    recognised: ReadonlyArray<{ source: RosterSource; file: RecognisedFile }>,
  ) {
    const filesOf = (entity: EntityName, scope?: Scope) =>
      recognised
        .filter((r) => r.file.entity === entity && (scope === undefined || presentParts([r.file]).userScopes.has(scope)))
        .map((r) => r.source.name);
    const state = (isPresent: boolean, files: string[], loadLive: () => IdSet | null): TargetState =>
      isPresent ? { files, ids: new IdSet() } : { files: null, ids: loadLive() };
    const d = districtId;
    this.#targets.set("schools", state(present.entities.has("schools"), filesOf("schools"), () => this.#live("SELECT school_id FROM roster_schools WHERE district_id = ?", d)));
    this.#targets.set(
      "courses",
      state(present.entities.has("courses"), filesOf("courses"), () => {
        for (const [id, name] of this.sqlite.prepare("SELECT course_id, course_name FROM roster_courses WHERE district_id = ?").raw(true).iterate(d) as Iterable<[string, string]>) {
          this.courseNames.set(id, name);
        }
        if (this.courseNames.size === 0) return null;
        const ids = new IdSet();
        for (const id of this.courseNames.keys()) ids.add(id);
        return ids;
      }),
    );
    this.#targets.set(
      "terms",
      state(present.entities.has("terms"), filesOf("terms"), () => {
        const ids = this.#live("SELECT term_id || char(0) || school_id FROM roster_terms WHERE district_id = ?", d);
        return ids.size === 0 ? null : ids;
      }),
    );
    this.#targets.set(
      "students",
      state(present.userScopes.has("student"), filesOf("users", "student"), () => this.#live("SELECT district_user_id FROM roster_users WHERE district_id = ? AND scope = 'student'", d)),
    );
    this.#targets.set(
      "staff",
      state(present.userScopes.has("staff"), filesOf("users", "staff"), () => {
        const ids = new IdSet();
        for (const [id, key] of this.sqlite.prepare("SELECT district_user_id, user_key FROM roster_staff_ids WHERE district_id = ?").raw(true).iterate(d) as Iterable<[string, string]>) {
          ids.add(id);
          this.staffKeys.set(id, key);
        }
        return ids;
      }),
    );
    this.#targets.set("classes", state(present.entities.has("classes"), filesOf("classes"), () => this.#live("SELECT class_id FROM roster_classes WHERE district_id = ?", d)));
  }

  #live(query: string, districtId: number): IdSet {
    const ids = new IdSet();
    for (const id of this.sqlite.prepare(query).pluck(true).iterate(districtId) as Iterable<string>) ids.add(id);
    return ids;
  }

  /** True when the id is known, or when the target is not checked. */
  has(target: Target, id: string): boolean {
    const ids = this.#targets.get(target)!.ids;
    return ids === null || ids.has(id);
  }

  hasTerm(termId: string, schoolId: string): boolean {
    const ids = this.#targets.get("terms")!.ids;
    return ids === null || ids.has(`${termId}\u0000${schoolId}`) || ids.has(`${termId}\u0000`);
  }

  add(target: Target, id: string): void {
    this.#targets.get(target)!.ids?.add(id);
  }

  drop(target: Target, id: string): void {
    this.#targets.get(target)!.ids?.delete(id);
  }

  /**
   * A students file read against its line digest staged only changed lines: tonight's other
   * students are the live ones whose lines came back (not in `stage.removed_users`).
   */
  fillUnchangedStudents(districtId: number): void {
    const ids = this.#targets.get("students")!.ids!;
    const query = `SELECT u.district_user_id FROM main.roster_users u WHERE u.district_id = ? AND u.scope = 'student'
      AND NOT EXISTS (SELECT 1 FROM ${removedTable("users")} r WHERE r.user_key = u.user_key)`;
    for (const id of this.sqlite.prepare(query).pluck(true).iterate(districtId) as Iterable<string>) ids.add(id);
  }

  /** Live ids of a target that tonight's files do not have (nothing when the target is not checked). */
  gone(target: "schools", districtId: number): string[] {
    if (this.#targets.get(target)!.files === null) return [];
    const ids = this.sqlite.prepare("SELECT school_id FROM main.roster_schools WHERE district_id = ?").pluck(true).all(districtId) as string[];
    return ids.filter((id) => !this.has(target, id));
  }

  /** "a school in schools.csv", or "a school in the roster" when tonight's delivery has none. */
  expected(target: Target): { expected: string; detail: string } {
    const files = this.#targets.get(target)!.files;
    const noun = TARGET_NOUN[target];
    if (files === null) return { expected: `${noun} in the roster (tonight's delivery has no ${target} file)`, detail: target };
    return { expected: `${noun} in ${files.join(" or ") || "tonight's files"}`, detail: files.join(", ") || target };
  }
}

// ---- one file ----

interface RowContext {
  file: string;
  row: number;
  labels: (column: string) => string;
}

async function stageFile(
  sqlite: Sqlite,
  parsed: AsyncIterable<ParsedMessage>,
  name: string,
  file: RecognisedFile,
  fileIndex: number,
  issues: IssueSink,
  refs: References,
  progress: ((bytes: number) => void) | undefined,
  digestDir: string | null,
): Promise<StagedFile> {
  const stats = emptyFileStats();
  const staged: StagedFile = { name, entity: file.entity, stem: file.stem, stats, orphans: 0, digest: null };
  const excluded: number[] = [];
  const entity = file.entity;
  const inserter = new BatchInserter(sqlite, entity);
  let labels: ((column: string) => string) | null = null;
  const derived = { names: 0 };
  const orphan = (ctx: RowContext, target: Target, column: string, value: string) => {
    issues.add(makeIssue("UNKNOWN_REFERENCE", { file: ctx.file, row: ctx.row, column: ctx.labels(column), value, ...refs.expected(target) }));
  };
  const insertBatch = sqlite.transaction((records: unknown[], rows: ArrayLike<number>) => {
    const ctx: RowContext = { file: name, row: 0, labels: labels! };
    for (let i = 0; i < records.length; i++) {
      ctx.row = rows[i]!;
      const values = toStagedRow(entity, records[i], ctx, refs, orphan, derived);
      if (values === null) {
        staged.orphans++;
        excluded.push(ctx.row);
        continue;
      }
      values.push(fileIndex, ctx.row);
      inserter.push(values);
    }
  });
  for await (const message of parsed) {
    // The issues the reader found before this batch, in order, as if it ran here.
    for (const issue of message.issues) issues.add(issue);
    Object.assign(stats, message.stats);
    if (message.bytes > 0) progress?.(message.bytes);
    if (message.kind === "end") {
      if (message.digest !== null && digestDir !== null) staged.digest = { dir: digestDir, result: message.digest, excluded };
      break;
    }
    labels ??= labelLookup(stats.header, file);
    insertBatch(message.records, message.rows);
  }
  // Rows short of a full statement wait for the next batch; the last ones go in here.
  sqlite.transaction(() => inserter.flush())();
  if (derived.names > 0) issues.add(makeIssue("CLASS_NAME_DERIVED", { file: name, count: derived.names }));
  return staged;
}

function labelLookup(header: string[], file: RecognisedFile): (column: string) => string {
  const match = matchHeaders(header, file);
  return (column) => match.bindings.get(column)?.label ?? column;
}

type Orphan = (ctx: RowContext, target: Target, column: string, value: string) => void;

/** The staged values of a record in table column order, or null when it points at something absent. */
function toStagedRow(entity: EntityName, record: unknown, ctx: RowContext, refs: References, orphan: Orphan, derived: { names: number }): unknown[] | null {
  switch (entity) {
    case "schools": {
      const r = record as SchoolRecord;
      refs.add("schools", r.school_id);
      return [r.school_id, r.school_name, r.school_number, r.state_id, r.low_grade, r.high_grade];
    }
    case "courses": {
      const r = record as CourseRecord;
      if (r.school_id !== null && !refs.has("schools", r.school_id)) return orphan(ctx, "schools", "school_id", r.school_id), null;
      refs.add("courses", r.course_id);
      if (!refs.courseNames.has(r.course_id)) refs.courseNames.set(r.course_id, r.course_name);
      return [r.course_id, r.course_name, r.school_id];
    }
    case "terms": {
      const r = record as TermRecord;
      if (r.school_id !== null && !refs.has("schools", r.school_id)) return orphan(ctx, "schools", "school_id", r.school_id), null;
      refs.add("terms", `${r.term_id}\u0000${r.school_id ?? ""}`);
      return [r.term_id, r.school_id ?? "", r.term_name, r.start_date, r.end_date];
    }
    case "users": {
      const r = record as UserRecord;
      if (r.school_id !== null && !refs.has("schools", r.school_id)) return orphan(ctx, "schools", "school_id", r.school_id), null;
      const key = userKey(r.scope, r.district_user_id, r.teacher_number);
      if (r.scope === "student") refs.add("students", r.district_user_id);
      else {
        refs.add("staff", r.district_user_id);
        if (!refs.staffKeys.has(r.district_user_id)) refs.staffKeys.set(r.district_user_id, key);
      }
      return [
        key,
        r.scope,
        r.district_user_id,
        r.role,
        r.first_name,
        r.middle_name,
        r.last_name,
        r.email,
        r.username,
        r.school_id,
        r.school_id === null ? "[]" : JSON.stringify([r.school_id]),
        r.grade,
        r.student_number,
        r.teacher_number,
        r.state_id,
        r.birth_date,
      ];
    }
    case "classes": {
      const r = record as ClassRecord;
      let ok = true;
      if (!refs.has("schools", r.school_id)) ok = (orphan(ctx, "schools", "school_id", r.school_id), false);
      if (!refs.has("staff", r.teacher_id)) ok = (orphan(ctx, "staff", "teacher_id", r.teacher_id), false);
      if (!refs.has("courses", r.course_id)) ok = (orphan(ctx, "courses", "course_id", r.course_id), false);
      if (r.term_id !== null && !refs.hasTerm(r.term_id, r.school_id)) ok = (orphan(ctx, "terms", "term_id", r.term_id), false);
      if (!ok) return null;
      refs.add("classes", r.class_id);
      const teacherKey = refs.staffKeys.get(r.teacher_id) ?? userKey("staff", r.teacher_id, null);
      let name = r.class_name;
      if (name === null) {
        const course = refs.courseNames.get(r.course_id) ?? r.course_id;
        name = r.section_number === null ? course : `${course} - ${r.section_number}`;
        derived.names++;
      }
      return [r.class_id, name, r.school_id, r.course_id, r.teacher_id, teacherKey, r.term_id, r.section_number, r.period, r.room];
    }
    case "enrollments": {
      const r = record as EnrollmentRecord;
      let ok = true;
      if (!refs.has("classes", r.class_id)) ok = (orphan(ctx, "classes", "class_id", r.class_id), false);
      if (!refs.has("students", r.student_id)) ok = (orphan(ctx, "students", "student_id", r.student_id), false);
      return ok ? [r.class_id, r.student_id, r.start_date, r.end_date] : null;
    }
  }
}

// ---- keys and duplicates ----

/** The natural key each staged table must be unique on. Users: (scope, id), before staff are merged into people. */
const NATURAL_KEYS: Record<EntityName, readonly string[]> = {
  schools: ["school_id"],
  courses: ["course_id"],
  terms: ["term_id", "school_id"],
  users: ["scope", "district_user_id"],
  classes: ["class_id"],
  enrollments: ["class_id", "student_id"],
};

function buildKeys(sqlite: Sqlite, files: StagedFile[], issues: IssueSink): void {
  for (const entity of ENTITY_NAMES) {
    // Users are unique per (scope, id) before staff rows merge into people (keyed by user_key).
    if (entity === "users") uniqueIndex(sqlite, entity, NATURAL_KEYS[entity], files, issues);
    else clusterUnique(sqlite, rosterTable(entity), files, issues);
  }
  mergeStaff(sqlite);
  clusterByKey(sqlite, rosterTable("users"));
  clusterByKey(sqlite, rosterTable("staff_ids"));
}

/**
 * Where the natural key is the live key, the sort into the keyed table is the uniqueness check:
 * only when it fails are the repeats found, reported and removed (`uniqueIndex`), then sorted again.
 */
function clusterUnique(sqlite: Sqlite, table: RosterTable, files: StagedFile[], issues: IssueSink): void {
  try {
    clusterByKey(sqlite, table);
  } catch (error) {
    if (!isConstraintError(error)) throw error;
    uniqueIndex(sqlite, table.entity as EntityName, NATURAL_KEYS[table.entity as EntityName], files, issues);
    clusterByKey(sqlite, table);
  }
}

/**
 * `keyedStage(entity)`: the staged rows in a WITHOUT ROWID table keyed like the live table,
 * filled from one sort (NOT INDEXED: walking an index over the unsorted rows would read them in
 * random order). Diff and apply then read staged and live rows in the same order, as merges.
 * Throws a constraint error on a repeated key (the table is then recreated on the next call).
 */
function clusterByKey(sqlite: Sqlite, table: RosterTable): void {
  const keyed = keyedStage(table.entity);
  const columns = allColumns(table).map(q);
  const key = table.key.map(q).join(", ");
  sqlite.exec(`DROP TABLE IF EXISTS ${keyed}`);
  sqlite.exec(`CREATE TABLE ${keyed} (${columns.map((c) => `${c} TEXT`).join(", ")}, PRIMARY KEY (${key})) WITHOUT ROWID`);
  sqlite.exec(`INSERT INTO ${keyed} (${columns.join(", ")}) SELECT ${columns.join(", ")} FROM stage.${q(table.entity)} NOT INDEXED ORDER BY ${key}`);
}

function isConstraintError(error: unknown): boolean {
  return error instanceof Error && "code" in error && String(error.code).startsWith("SQLITE_CONSTRAINT");
}

/**
 * Builds the unique key after loading (far faster than inserting into a keyed table). When it
 * fails, finds the repeated keys, reports every repeat against the first row, deletes the repeats
 * and builds it again: the rare case pays, the common one does not.
 */
function uniqueIndex(sqlite: Sqlite, entity: EntityName, key: readonly string[], files: StagedFile[], issues: IssueSink): void {
  const table = `stage.${q(entity)}`;
  const index = `stage.${q(`${entity}_nk`)}`;
  const cols = key.map(q).join(", ");
  try {
    sqlite.exec(`CREATE UNIQUE INDEX ${index} ON ${q(entity)} (${cols})`);
    return;
  } catch (error) {
    if (!isConstraintError(error)) throw error;
  }
  sqlite.exec(`CREATE INDEX ${index} ON ${q(entity)} (${cols})`);
  const on = key.map((c) => `e.${q(c)} = d.${q(c)}`).join(" AND ");
  const repeats = sqlite
    .prepare(
      `SELECT e.rowid AS rid, e.file_idx AS file, e.row AS row, ${key.map((c) => `e.${q(c)} AS ${q(c)}`).join(", ")}, f.file_idx AS first_file, f.row AS first_row
       FROM (SELECT ${cols}, min(rowid) AS first FROM ${table} GROUP BY ${cols} HAVING count(*) > 1) d
       JOIN ${table} e ON ${on} AND e.rowid <> d.first
       JOIN ${table} f ON f.rowid = d.first
       ORDER BY e.file_idx, e.row`,
    )
    .all() as Array<Record<string, string | number | null>>;
  const byFile = new Map<number, (column: string) => string>();
  const remove = sqlite.prepare(`DELETE FROM ${table} WHERE rowid = ?`);
  sqlite.transaction(() => {
    for (const r of repeats) {
      const fileIndex = Number(r.file);
      const file = files[fileIndex]!;
      let labels = byFile.get(fileIndex);
      if (labels === undefined) {
        labels = labelLookup(file.stats.header, { entity, stem: file.stem, implied: {} });
        byFile.set(fileIndex, labels);
      }
      const first = files[Number(r.first_file)]!;
      const shownKey = key.filter((c) => c !== "scope");
      issues.add(
        makeIssue("DUPLICATE_KEY", {
          file: file.name,
          row: Number(r.row),
          column: labels(shownKey[0]!),
          value: shownKey.map((c) => r[c]).filter((v) => v !== null && v !== "").join(" + "),
          expected: entity === "users" ? `${String(r.scope)} id` : shownKey.join(" + "),
          detail: first === file ? `in row ${r.first_row}` : `in ${first.name}, row ${r.first_row}`,
        }),
      );
      file.stats.badRows++;
      file.stats.records--;
      file.digest?.excluded.push(Number(r.row));
      remove.run(r.rid);
    }
  })();
  sqlite.exec(`DROP INDEX ${index}`);
  sqlite.exec(`CREATE UNIQUE INDEX ${index} ON ${q(entity)} (${cols})`);
}

/**
 * A teacher at two schools is two Teachers rows (two ids, one TeacherNumber): one person in the
 * roster. Every staff id is kept in `staff_ids` (classes point at either); the person keeps the
 * first row's fields, with every school in `school_ids`.
 */
function mergeStaff(sqlite: Sqlite): void {
  sqlite.exec(`
    INSERT INTO stage.staff_ids (district_user_id, user_key, school_id, file_idx, row)
      SELECT district_user_id, user_key, school_id, file_idx, row FROM stage.users WHERE scope = 'staff' ORDER BY district_user_id;
    CREATE UNIQUE INDEX stage.staff_ids_key ON staff_ids (district_user_id);
    CREATE TABLE stage.staff_groups AS
      SELECT user_key, min(rowid) AS keep FROM stage.users WHERE scope = 'staff' GROUP BY user_key HAVING count(*) > 1;
    UPDATE stage.users SET school_ids = (
        SELECT json_group_array(school_id) FROM (
          SELECT DISTINCT s.school_id FROM stage.users s WHERE s.scope = 'staff' AND s.user_key = users.user_key AND s.school_id IS NOT NULL ORDER BY s.school_id))
      WHERE rowid IN (SELECT keep FROM stage.staff_groups);
    DELETE FROM stage.users WHERE scope = 'staff' AND user_key IN (SELECT user_key FROM stage.staff_groups) AND rowid NOT IN (SELECT keep FROM stage.staff_groups);
  `);
}

// ---- second nights: a file read against the previous night's digest ----

function removedTable(entity: EntityName): string {
  return `stage.${q(`removed_${entity}`)}`;
}

/** The keys of live rows whose lines did not come back tonight: the only live rows the diff looks at. */
function loadRemovedKeys(sqlite: Sqlite, file: StagedFile): void {
  const key = rosterTable(file.entity).key;
  sqlite.exec(`CREATE TABLE ${removedTable(file.entity)} (${key.map((c) => `${q(c)} TEXT NOT NULL`).join(", ")}, PRIMARY KEY (${key.map(q).join(", ")})) WITHOUT ROWID`);
  const insert = removedInserter(sqlite, file.entity);
  sqlite.transaction(() => {
    for (const batch of removedKeys(file.digest!.dir)) for (const k of batch) insert(k);
  })();
}

function removedInserter(sqlite: Sqlite, entity: EntityName): (key: string) => void {
  const key = rosterTable(entity).key;
  const insert = sqlite.prepare(`INSERT OR IGNORE INTO ${removedTable(entity)} VALUES (${key.map(() => "?").join(", ")})`);
  return (k) => insert.run(k.split("\u0000"));
}

function digestKey(entity: EntityName, values: Record<string, unknown>): string {
  return rosterTable(entity)
    .key.map((c) => String(values[c] ?? ""))
    .join("\u0000");
}

/**
 * A changed line whose key is also the key of an unchanged line: a duplicate, as the full read
 * would have found. The earlier row wins: either the staged row goes, or the unchanged line's
 * live row is looked at again (its key joins the removed keys) and the staged row replaces it.
 */
function duplicatesOfUnchangedLines(sqlite: Sqlite, districtId: number, file: StagedFile, issues: IssueSink): void {
  const entity = file.entity;
  const table = rosterTable(entity);
  const key = table.key;
  const on = (a: string, b: string) => key.map((c) => `${a}.${q(c)} = ${b}.${q(c)}`).join(" AND ");
  // Users: the digest speaks for students only; staff are read in full every night.
  const users = entity === "users";
  const conflicts = sqlite
    .prepare(
      `SELECT s.rowid AS rid, s.row AS row, ${[...key, ...(users ? ["district_user_id"] : [])].map((c) => `s.${q(c)} AS ${q(c)}`).join(", ")} FROM stage.${q(entity)} s
       WHERE ${users ? "s.scope = 'student' AND " : ""}EXISTS (SELECT 1 FROM main.${q(table.live)} l WHERE l.district_id = ? AND ${on("l", "s")})
         AND NOT EXISTS (SELECT 1 FROM ${removedTable(entity)} r WHERE ${on("r", "s")})
       ORDER BY s.row`,
    )
    .all(districtId) as Array<Record<string, string | number>>;
  if (conflicts.length === 0) return;
  const groups = new Map<string, Array<Record<string, string | number>>>();
  for (const c of conflicts) {
    const k = digestKey(entity, c);
    const group = groups.get(k);
    if (group === undefined) groups.set(k, [c]);
    else group.push(c);
  }
  const rows = rowsOfKeys(file.digest!.dir, new Set(groups.keys()));
  const labels = labelLookup(file.stats.header, { entity, stem: file.stem, implied: {} });
  const remove = sqlite.prepare(`DELETE FROM stage.${q(entity)} WHERE rowid = ?`);
  const addRemoved = removedInserter(sqlite, entity);
  const duplicate = (row: number, values: Record<string, unknown>, firstRow: number) => {
    issues.add(
      makeIssue("DUPLICATE_KEY", {
        file: file.name,
        row,
        // As uniqueIndex reports them: users by their id within the scope.
        ...(users
          ? { column: labels("district_user_id"), value: String(values.district_user_id), expected: "student id" }
          : { column: labels(key[0]!), value: key.map((c) => values[c]).filter((v) => v !== null && v !== "").join(" + "), expected: key.join(" + ") }),
        detail: `in row ${firstRow}`,
      }),
    );
    file.stats.badRows++;
    file.stats.records--;
    file.digest!.excluded.push(row);
  };
  sqlite.transaction(() => {
    for (const [k, staged] of groups) {
      const stagedRows = new Set(staged.map((s) => Number(s.row)));
      const unchanged = (rows.get(k) ?? []).filter((r) => !stagedRows.has(r));
      if (unchanged.length === 0) continue;
      const u = Math.min(...unchanged);
      const first = staged[0]!;
      if (Number(first.row) > u) {
        for (const s of staged) {
          duplicate(Number(s.row), s, u);
          remove.run(s.rid);
        }
      } else {
        // The unchanged line comes later: it is the duplicate; the other staged repeats are found with the keys.
        duplicate(u, first, Number(first.row));
        addRemoved(k);
      }
    }
  })();
}

/**
 * An unchanged enrollment line whose class or student is gone tonight: dropped with the same
 * warning the full read gives (at its row tonight), and its live row is deleted like any row
 * whose line did not come back.
 */
function orphansOfUnchangedLines(
  sqlite: Sqlite,
  districtId: number,
  present: PresentParts,
  delta: ReadonlySet<EntityName>,
  file: StagedFile,
  issues: IssueSink,
  refs: References,
): void {
  if (file.entity !== "enrollments") return;
  const d = Number(districtId);
  const removed = removedTable("enrollments");
  const notRemoved = `NOT EXISTS (SELECT 1 FROM ${removed} r WHERE r.class_id = l.class_id AND r.student_id = l.student_id)`;
  const found = new Map<string, { class_id: string; student_id: string; noStudent: boolean; noClass: boolean }>();
  const collect = (query: string, missing: "noStudent" | "noClass") => {
    for (const r of sqlite.prepare(query).iterate() as Iterable<{ class_id: string; student_id: string }>) {
      const k = `${r.class_id}\u0000${r.student_id}`;
      const entry = found.get(k) ?? { class_id: r.class_id, student_id: r.student_id, noStudent: false, noClass: false };
      entry[missing] = true;
      found.set(k, entry);
    }
  };
  if (present.userScopes.has("student")) {
    // Read in full, tonight's students are all staged; read against a digest, the gone ones are removed keys not staged again.
    const stagedAgain = (id: string) => `EXISTS (SELECT 1 FROM stage.users s WHERE s.scope = 'student' AND s.district_user_id = ${id})`;
    sqlite.exec(
      delta.has("users")
        ? `CREATE TABLE stage.gone_students AS SELECT substr(r.user_key, 9) AS id FROM ${removedTable("users")} r
           WHERE substr(r.user_key, 1, 8) = 'student-' AND NOT ${stagedAgain("substr(r.user_key, 9)")}`
        : `CREATE TABLE stage.gone_students AS SELECT u.district_user_id AS id FROM main.roster_users u
           WHERE u.district_id = ${d} AND u.scope = 'student' AND NOT ${stagedAgain("u.district_user_id")}`,
    );
    collect(
      `SELECT l.class_id, l.student_id FROM stage.gone_students g CROSS JOIN main.roster_enrollments l ON l.district_id = ${d} AND l.student_id = g.id WHERE ${notRemoved}`,
      "noStudent",
    );
  }
  if (present.entities.has("classes")) {
    sqlite.exec(`CREATE INDEX stage.classes_class_id ON classes (class_id)`);
    sqlite.exec(`CREATE TABLE stage.gone_classes AS SELECT c.class_id AS id FROM main.roster_classes c
      WHERE c.district_id = ${d} AND NOT EXISTS (SELECT 1 FROM stage.classes s WHERE s.class_id = c.class_id)`);
    collect(`SELECT l.class_id, l.student_id FROM stage.gone_classes g CROSS JOIN main.roster_enrollments l ON l.district_id = ${d} AND l.class_id = g.id WHERE ${notRemoved}`, "noClass");
  }
  if (found.size === 0) return;
  const rows = rowsOfKeys(file.digest!.dir, new Set(found.keys()));
  const labels = labelLookup(file.stats.header, { entity: "enrollments", stem: file.stem, implied: {} });
  const orphans = [...found].flatMap(([k, entry]) => (rows.get(k) ?? []).map((row) => ({ k, row, entry }))).sort((a, b) => a.row - b.row);
  const addRemoved = removedInserter(sqlite, "enrollments");
  sqlite.transaction(() => {
    for (const { k, row, entry } of orphans) {
      if (entry.noClass) issues.add(makeIssue("UNKNOWN_REFERENCE", { file: file.name, row, column: labels("class_id"), value: entry.class_id, ...refs.expected("classes") }));
      if (entry.noStudent) issues.add(makeIssue("UNKNOWN_REFERENCE", { file: file.name, row, column: labels("student_id"), value: entry.student_id, ...refs.expected("students") }));
      file.orphans++;
      file.digest!.excluded.push(row);
      addRemoved(k);
    }
  })();
}

/**
 * An unchanged student line whose school is gone tonight: dropped with the full read's warning
 * (at its row tonight), its live row looked at again, and the student no longer counts as
 * present for the files read after this one.
 */
function orphansOfUnchangedStudents(sqlite: Sqlite, districtId: number, present: PresentParts, file: StagedFile, issues: IssueSink, refs: References): void {
  if (!present.entities.has("schools")) return;
  const gone = refs.gone("schools", districtId);
  if (gone.length === 0) return;
  const candidates = sqlite.prepare(
    `SELECT u.user_key, u.district_user_id, u.school_id FROM main.roster_users u WHERE u.district_id = ? AND u.school_id = ? AND u.scope = 'student'
       AND NOT EXISTS (SELECT 1 FROM ${removedTable("users")} r WHERE r.user_key = u.user_key)`,
  );
  const found = new Map<string, { id: string; school: string }>();
  for (const school of gone) {
    for (const r of candidates.iterate(districtId, school) as Iterable<{ user_key: string; district_user_id: string; school_id: string }>) {
      found.set(r.user_key, { id: r.district_user_id, school: r.school_id });
    }
  }
  if (found.size === 0) return;
  const rows = rowsOfKeys(file.digest!.dir, new Set(found.keys()));
  const labels = labelLookup(file.stats.header, { entity: "users", stem: file.stem, implied: {} });
  const orphans = [...found].flatMap(([k, entry]) => (rows.get(k) ?? []).map((row) => ({ k, row, entry }))).sort((a, b) => a.row - b.row);
  const addRemoved = removedInserter(sqlite, "users");
  sqlite.transaction(() => {
    for (const { k, row, entry } of orphans) {
      issues.add(makeIssue("UNKNOWN_REFERENCE", { file: file.name, row, column: labels("school_id"), value: entry.school, ...refs.expected("schools") }));
      file.orphans++;
      file.digest!.excluded.push(row);
      addRemoved(k);
      refs.drop("students", entry.id);
    }
  })();
}
