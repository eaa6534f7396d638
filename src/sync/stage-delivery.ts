import { join } from "node:path";
import type { DateFormatSetting } from "../intake/date-format.ts";
import { dateColumnMemory } from "../intake/date-format.ts";
import { labelsFor } from "../intake/match-headers.ts";
import { badRowLimitIssue, emptyFileStats, readRosterFile } from "../intake/read-roster-file.ts";
import type { FileStats } from "../intake/read-roster-file.ts";
import { MemoryIssueSink, makeIssue } from "../intake/issue.ts";
import type { IssueSink } from "../intake/issue.ts";
import { exampleFileNames, recogniseDelivery } from "../intake/recognise-file.ts";
import type { RecognisedFile } from "../intake/recognise-file.ts";
import { unpackDelivery } from "../intake/unpack.ts";
import type { DeliveryFile, RosterSource, UnpackLimits } from "../intake/unpack.ts";
import type {
  ClassRecord,
  CourseRecord,
  EnrollmentRecord,
  EntityName,
  SchoolRecord,
  TermRecord,
  UserRecord,
} from "../spec/roster-spec.ts";
import { ENTITY_NAMES } from "../spec/roster-spec.ts";
import { settleDateColumns } from "./date-columns.ts";
import { KeptValueIssues, takeLiveValues } from "./kept-values.ts";
import { DIGESTED_ENTITIES, sealDigest, writeExcludedRows } from "./line-digest.ts";
import type { DigestMeta, DigestPlan, DigestRef, DigestResult } from "./line-digest.ts";
import { ParseThreads, type ParseThread } from "./parse-thread.ts";
import { presentParts } from "./present-parts.ts";
import type { PresentParts } from "./present-parts.ts";
import { KeptRecords, createKeptTables } from "./kept-records.ts";
import type { UnreadableKeys } from "./kept-records.ts";
import { References } from "./references.ts";
import type { Target } from "./references.ts";
import { duplicatesOfUnchangedLines, loadRemovedKeys, orphansOfUnchangedLines, orphansOfUnchangedStudents } from "./unchanged-lines.ts";
import type { ParsedMessage } from "./parse-thread.ts";
import { ROSTER_TABLES, allColumns, keyedStage, q, rosterTable, staged as stagedTable, userKey } from "./roster-tables.ts";
import { collationKey } from "./collation-key.ts";
import type { RosterTable } from "./roster-tables.ts";
import type { EngineSql, StageWriter } from "./engine-sql.ts";
import { isUniqueViolation } from "../db/dialect-info.ts";


export interface StagedFile {
  name: string;
  entity: EntityName;
  /** The spec's file stem the name matched (students, teachers, cc…). */
  stem: string;
  stats: FileStats;
  /** Rows dropped because they point at something absent. */
  orphans: number;
  /** Rejected rows whose live record was kept unchanged. */
  kept: number;
  /** A digested file (see line-digest.ts): tonight's digest, and rows read but not staged or removed since. */
  digest: { dir: string; result: DigestResult; excluded: number[] } | null;
}

/** Line digests for a sync: where tonight's go, and the previous night's that match the live roster. */
export interface DigestOptions {
  dir: string;
  previous: readonly DigestRef[];
  /** Most lines looked at again (see DigestRevisitLimitError); beyond, the sync is read in full. */
  revisitLimit: number;
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
  /** Live records kept unchanged because their row was rejected, per entity (staff ids count for users). */
  kept: Map<EntityName, number>;
  /** Entities with rejected rows whose key could not be read: their deletions wait for a person. */
  unreadable: UnreadableKeys[];
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
  /** Rows of this file read so far, and of all files. */
  rows: number;
  totalRows: number;
}

export interface StageOptions {
  sql: EngineSql;
  districtId: number;
  issues: IssueSink;
  unpackLimits?: Partial<UnpackLimits>;
  onProgress?: (progress: StageProgress) => void;
  /** Keep line digests of the big files, and read against the previous night's. */
  digests?: DigestOptions;
  /** The district's date format setting; default `auto`. */
  dateFormat?: DateFormatSetting;
  /** The engine's parse threads, one kept between syncs; without them a thread of the delivery's own. */
  parseThreads?: ParseThreads;
}

/** Repeated keys reported and removed per transaction (see uniqueIndex). */
const REPEATS_PER_PAGE = 10_000;
const ENTITY_ORDER: readonly EntityName[] = ["schools", "courses", "terms", "users", "classes", "enrollments"];

/**
 * Streams a delivery's records into the sync's staging tables (`stage.*`, see SyncConnection),
 * checking references on the way (targets are staged first: schools, courses, terms, users,
 * classes, enrollments), then builds keys and lets the database find duplicate keys.
 * Row-level problems become issues; the caller decides from `failed` and the issue counts.
 */
export async function stageDelivery(files: readonly DeliveryFile[], options: StageOptions): Promise<StagedDelivery> {
  const { sql, issues } = options;
  await createStagingTables(sql);
  const { sources, close } = await unpackDelivery(files, issues, options.unpackLimits ?? {});
  const threads = options.parseThreads ?? new ParseThreads();
  const staged: StagedFile[] = [];
  let present: PresentParts = { entities: new Set(), userScopes: new Set() };
  let parser: ParseThread | null = null;
  let references: References | null = null;
  let kept: KeptRecords | null = null;
  try {
    const recognised = recogniseDelivery(sources, issues).sort(
      (a, b) => ENTITY_ORDER.indexOf(a.file.entity) - ENTITY_ORDER.indexOf(b.file.entity) || a.source.name.localeCompare(b.source.name),
    );
    if (recognised.length === 0) noRosterFiles(files, sources, issues);
    present = presentParts(recognised.map((r) => r.file));
    references = await References.create(sql, options.districtId, present, recognised);
    kept = new KeptRecords(sql, options.districtId, references);
    const totalSize = recognised.reduce((sum, r) => sum + r.source.size, 0);
    let doneBytes = 0;
    let doneRows = 0;
    let failedFile = false;
    for (const [fileIndex, { source, file }] of recognised.entries()) {
      if (failedFile) {
        // The delivery has already failed: tell the district now what else is wrong at file level.
        await checkFileLevel(source, file, issues);
        continue;
      }
      const progress = options.onProgress
        ? (bytes: number, rows: number) =>
            options.onProgress!({
              file: source.name,
              fileIndex,
              files: recognised.length,
              bytes,
              size: source.size,
              totalBytes: doneBytes + bytes,
              totalSize,
              rows,
              totalRows: doneRows + rows,
            })
        : undefined;
      // Parsing runs on a thread of its own, overlapping the inserts here; it opens the same sources by index.
      if (parser === null) {
        parser = threads.acquire(files, options.unpackLimits ?? {});
        parser.prepare(recognised.slice(fileIndex).map((r) => sources.indexOf(r.source)));
      }
      const dateFormat = options.dateFormat ?? "auto";
      const digestPlan = planDigest(options.digests, recognised, file, dateFormat);
      const parsed = parser.read(sources.indexOf(source), file, progress !== undefined, digestPlan, dateFormat);
      const fileIssues = new KeptValueIssues(issues);
      const result = await stageFile(sql, parsed, source.name, file, fileIndex, fileIssues, references, kept, progress, digestPlan?.outDir ?? null);
      staged.push(result);
      if (result.stats.failed === null) {
        await settleDateColumns(sql, result, fileIndex);
        if (result.entity === "terms") await kept.settleRejectedTerms(result.name);
        await takeLiveValues(sql, options.districtId, result, fileIndex, fileIssues);
      }
      if (result.digest?.result.delta === true && result.stats.failed === null) {
        await loadRemovedKeys(sql, result);
        // Before the files that point at students are read: unchanged students are live ones.
        if (result.entity === "users") {
          await references.fillUnchangedStudents();
          await orphansOfUnchangedStudents(sql, options.districtId, present, result, issues, references, options.digests!.revisitLimit);
        }
      }
      // The file read to its end, then counted as done (told before, its bytes would count twice).
      progress?.(source.size, result.stats.rows);
      doneBytes += source.size;
      doneRows += result.stats.rows;
      if (result.stats.failed !== null) {
        failedFile = true;
        await parser.close();
      }
    }
  } finally {
    if (parser !== null) await threads.release(parser);
    if (options.parseThreads === undefined) await threads.close();
    await close();
  }
  const delta = new Set<EntityName>();
  const digests: SealedDigest[] = [];
  if (issues.counts.error === 0) {
    for (const file of staged) {
      if (file.digest?.result.delta !== true) continue;
      delta.add(file.entity);
      await duplicatesOfUnchangedLines(sql, options.districtId, file, issues, options.digests!.revisitLimit);
    }
    await buildKeys(sql, options.districtId, staged, issues);
    await kept!.stageKept();
    for (const file of staged) if (file.entity === "enrollments" && delta.has("enrollments")) await orphansOfUnchangedLines(sql, options.districtId, present, delta, file, issues, references!, options.digests!.revisitLimit);
    for (const file of staged) {
      const limit = badRowLimitIssue(file.name, file.stats);
      if (limit !== null) issues.add(limit);
    }
    for (const file of staged) {
      // A kept record's line is not in tonight's digest, yet the record is live: tomorrow its line
      // would read as a new record. The next night reads such a file in full instead.
      if (file.digest === null || file.kept > 0) continue;
      writeExcludedRows(file.digest.dir, file.digest.excluded);
      const { identity, entries, keyBytes, delta: usedPrevious, unchanged, removed } = file.digest.result;
      const dates = Object.fromEntries(file.stats.dateColumns.map((outcome) => [outcome.column, dateColumnMemory(outcome)]));
      const meta: DigestMeta = { identity, entries, keyBytes, dates };
      sealDigest(file.digest.dir, meta);
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
    kept: kept?.counts() ?? new Map(),
    unreadable: kept?.unreadable ?? [],
  };
}

/**
 * Tonight's digest plan for a file: only for the entities digests are kept for, and only when
 * the file is the delivery's only file of its entity (the digest speaks for all its live rows).
 */
function planDigest(
  options: DigestOptions | undefined,
  recognised: ReadonlyArray<{ file: RecognisedFile }>,
  file: RecognisedFile,
  dateFormat: DateFormatSetting,
): DigestPlan | null {
  if (options === undefined || !DIGESTED_ENTITIES.has(file.entity)) return null;
  // A users digest speaks for the live students: kept for the one file that has students.
  const speaksFor = (f: RecognisedFile) => f.entity === file.entity && (f.entity !== "users" || presentParts([f]).userScopes.has("student"));
  if (!speaksFor(file) || recognised.filter((r) => speaksFor(r.file)).length !== 1) return null;
  const previous = options.previous.find((p) => p.meta.identity.entity === file.entity && p.meta.identity.stem === file.stem) ?? null;
  return { outDir: join(options.dir, file.entity), previous, removedLimit: options.revisitLimit, dateFormat };
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

// ---- staging tables ----

async function createStagingTables(sql: EngineSql): Promise<void> {
  for (const table of ROSTER_TABLES) {
    // Key columns NOT NULL: then a unique index proves the order of every column, and the diff's EXCEPT is a merge without sorting.
    const notNull = new Set([...table.key, ...(table.entity === "users" ? ["scope", "district_user_id"] : [])]);
    const columns = allColumns(table).map((c) => `${q(c)} TEXT${notNull.has(c) ? " NOT NULL" : ""}`);
    await sql.exec(`CREATE TABLE ${stagedTable(sql, table.entity)} (${columns.join(", ")}, file_idx INTEGER NOT NULL, row INTEGER NOT NULL${sql.rowidColumn})`);
  }
  await createKeptTables(sql);
}

/** Files arrived, but none is a roster file (all misnamed, or a zip of other things): the delivery fails, saying what came and what was expected. */
function noRosterFiles(files: readonly DeliveryFile[], sources: readonly RosterSource[], issues: IssueSink): void {
  const names = (sources.length > 0 ? sources.map((s) => s.name) : files.map((f) => f.name));
  const shown = names.length > 10 ? `${names.slice(0, 10).join(", ")} and ${names.length - 10} more` : names.join(", ");
  issues.add(makeIssue("NO_ROSTER_FILES", { file: files[0]?.name ?? "(delivery)", count: names.length, value: shown || "no files", expected: exampleFileNames() }));
}

// ---- one file ----

interface RowContext {
  file: string;
  row: number;
  labels: (column: string) => string;
  /** Why the row being staged was left out, once an orphan check failed. */
  missing: string | null;
}

async function stageFile(
  sql: EngineSql,
  parsed: AsyncIterable<ParsedMessage>,
  name: string,
  file: RecognisedFile,
  fileIndex: number,
  issues: IssueSink,
  refs: References,
  kept: KeptRecords,
  progress: ((bytes: number, rows: number) => void) | undefined,
  digestDir: string | null,
): Promise<StagedFile> {
  const stats = emptyFileStats();
  const staged: StagedFile = { name, entity: file.entity, stem: file.stem, stats, orphans: 0, kept: 0, digest: null };
  const excluded: number[] = [];
  const entity = file.entity;
  const inserter: StageWriter = sql.stageWriter(entity, [...allColumns(rosterTable(entity)), "row"], { file_idx: fileIndex });
  let labels: ((column: string) => string) | null = null;
  const derived = { names: 0 };
  const orphan = (ctx: RowContext, target: Target, column: string, value: string, id = value) => {
    const { issue, why } = refs.orphanIssue({ file: ctx.file, row: ctx.row, column: ctx.labels(column) }, target, value, id);
    issues.add(issue);
    ctx.missing ??= why;
  };
  const insertBatch = (records: unknown[], rows: ArrayLike<number>) => {
    const ctx: RowContext = { file: name, row: 0, labels: labels!, missing: null };
    for (let i = 0; i < records.length; i++) {
      ctx.row = rows[i]!;
      ctx.missing = null;
      const values = toStagedRow(entity, records[i], ctx, refs, orphan, derived);
      if (values === null) {
        staged.orphans++;
        excluded.push(ctx.row);
        // Rows pointing at this one are then told why it is missing.
        const target = targetOfRecord(entity, records[i]);
        if (target !== null && ctx.missing !== null) refs.reject(target.target, target.id, { file: name, row: ctx.row, reason: ctx.missing });
        continue;
      }
      inserter.push(values, ctx.row);
    }
  };
  for await (const message of parsed) {
    // Rejected rows first: their issues then say what became of the live record.
    const notes = await kept.consider(entity, message.rejected, { name, index: fileIndex, stem: file.stem });
    // The issues the reader found before this batch, in order, as if it ran here.
    for (const issue of message.issues) {
      const note = issue.row === null ? undefined : notes.get(issue.row);
      if (note !== undefined) {
        notes.delete(issue.row!);
        if (note.startsWith("Kept")) staged.kept++;
        issues.add({ ...issue, message: `${issue.message} ${note}` });
      } else issues.add(issue);
    }
    Object.assign(stats, message.stats);
    if (message.bytes > 0) progress?.(message.bytes, stats.rows);
    if (message.kind === "end") {
      if (message.digest !== null && digestDir !== null) staged.digest = { dir: digestDir, result: message.digest, excluded };
      break;
    }
    labels ??= labelsFor(stats.header, file);
    insertBatch(message.records, message.rows);
    await inserter.endBatch();
  }
  await inserter.end();
  if (derived.names > 0) issues.add(makeIssue("CLASS_NAME_DERIVED", { file: name, count: derived.names }));
  return staged;
}

/** What rows of other files point at a record with (see References). */
function targetOfRecord(entity: EntityName, record: unknown): { target: Target; id: string } | null {
  switch (entity) {
    case "courses":
      return { target: "courses", id: (record as CourseRecord).course_id };
    case "terms": {
      const r = record as TermRecord;
      return { target: "terms", id: `${r.term_id}\u0000${r.school_id ?? ""}` };
    }
    case "users": {
      const r = record as UserRecord;
      return { target: r.scope === "student" ? "students" : "staff", id: r.district_user_id };
    }
    case "classes":
      return { target: "classes", id: (record as ClassRecord).class_id };
    default:
      return null;
  }
}

type Orphan = (ctx: RowContext, target: Target, column: string, value: string, id?: string) => void;

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
        r.gender,
        collationKey(r.last_name),
        collationKey(r.first_name),
      ];
    }
    case "classes": {
      const r = record as ClassRecord;
      let ok = true;
      if (!refs.has("schools", r.school_id)) ok = (orphan(ctx, "schools", "school_id", r.school_id), false);
      if (!refs.has("staff", r.teacher_id)) ok = (orphan(ctx, "staff", "teacher_id", r.teacher_id), false);
      if (!refs.has("courses", r.course_id)) ok = (orphan(ctx, "courses", "course_id", r.course_id), false);
      if (r.term_id !== null && !refs.hasTerm(r.term_id, r.school_id)) ok = (orphan(ctx, "terms", "term_id", r.term_id, `${r.term_id}\u0000${r.school_id}`), false);
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

async function buildKeys(sql: EngineSql, districtId: number, files: StagedFile[], issues: IssueSink): Promise<void> {
  for (const entity of ENTITY_NAMES) {
    // Users are unique per (scope, id) before staff rows merge into people (keyed by user_key).
    if (entity === "users") await uniqueIndex(sql, entity, NATURAL_KEYS[entity], files, issues);
    else await clusterUnique(sql, rosterTable(entity), districtId, files, issues);
  }
  await mergeStaff(sql);
  await clusterByKey(sql, rosterTable("users"), districtId);
  await clusterByKey(sql, rosterTable("staff_ids"), districtId);
}

/**
 * Where the natural key is the live key, the sort into the keyed table is the uniqueness check:
 * only when it fails are the repeats found, reported and removed (`uniqueIndex`), then sorted again.
 */
async function clusterUnique(sql: EngineSql, table: RosterTable, districtId: number, files: StagedFile[], issues: IssueSink): Promise<void> {
  try {
    await clusterByKey(sql, table, districtId);
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    await uniqueIndex(sql, table.entity as EntityName, NATURAL_KEYS[table.entity as EntityName], files, issues);
    await clusterByKey(sql, table, districtId);
  }
}

/**
 * `keyedStage(entity)`: the staged rows in a table keyed like the live table, in key order. Diff
 * and apply then read staged and live rows in the same order, as merges. Throws a unique
 * violation on a repeated key (the table is then recreated on the next call). On PostgreSQL, a
 * district's first rows of a partitioned table are keyed as its partition-to-be (see
 * EngineSql.fillKeyedStage).
 */
async function clusterByKey(sql: EngineSql, table: RosterTable, districtId: number): Promise<void> {
  await sql.fillKeyedStage(keyedStage(sql, table.entity), allColumns(table), table.key, stagedTable(sql, table.entity), { table: table.live, districtId });
}

/**
 * Builds the unique key after loading (far faster than inserting into a keyed table). When it
 * fails, finds the repeated keys, reports every repeat against the first row, deletes the repeats
 * and builds it again: the rare case pays, the common one does not.
 */
async function uniqueIndex(sql: EngineSql, entity: EntityName, key: readonly string[], files: StagedFile[], issues: IssueSink): Promise<void> {
  const table = stagedTable(sql, entity);
  const index = { name: `${entity}_nk`, table: entity, columns: key };
  const cols = key.map(q).join(", ");
  try {
    await sql.createStageIndex({ ...index, unique: true });
    return;
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
  }
  await sql.createStageIndex(index);
  // The repeats go into a table of their own, in the order they are reported, then are read back
  // a page at a time: a file that repeats most of its rows (an export joined to the wrong table)
  // must not have them all in memory at once.
  const repeats = stagedTable(sql, `${entity}_repeats`);
  const on = key.map((c) => `e.${q(c)} = d.${q(c)}`).join(" AND ");
  const rowid = sql.rowid;
  await sql.exec(`DROP TABLE IF EXISTS ${repeats}`);
  await sql.exec(
    `CREATE TABLE ${repeats} AS
     SELECT row_number() OVER (ORDER BY e.file_idx, e.row) AS at, e.${rowid} AS rid, e.file_idx AS file, e.row AS row, ${key.map((c) => `e.${q(c)} AS ${q(c)}`).join(", ")}, f.file_idx AS first_file, f.row AS first_row
     FROM (SELECT ${cols}, min(${rowid}) AS first FROM ${table} GROUP BY ${cols} HAVING count(*) > 1) d
     JOIN ${table} e ON ${on} AND e.${rowid} <> d.first
     JOIN ${table} f ON f.${rowid} = d.first
     ORDER BY e.file_idx, e.row`,
  );
  await sql.createStageIndex({ name: `${entity}_repeats_at`, table: `${entity}_repeats`, columns: ["at"], unique: true });
  const page = `SELECT * FROM ${repeats} WHERE at > ? ORDER BY at LIMIT ${REPEATS_PER_PAGE}`;
  const byFile = new Map<number, (column: string) => string>();
  const remove = `DELETE FROM ${table} WHERE ${rowid} = ?`;
  const report = (rows: ReadonlyArray<Record<string, string | number | null>>) =>
    sql.scratch(async () => {
      for (const r of rows) {
        const fileIndex = Number(r.file);
        const file = files[fileIndex]!;
        let labels = byFile.get(fileIndex);
        if (labels === undefined) {
          labels = labelsFor(file.stats.header, { entity, stem: file.stem, implied: {} });
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
        await sql.run(remove, [r.rid]);
      }
    });
  for (let after = 0; ; ) {
    const rows = await sql.all<Record<string, string | number | null>>(page, [after]);
    if (rows.length === 0) break;
    await report(rows);
    after = Number(rows.at(-1)!.at);
  }
  await sql.exec(`DROP TABLE ${repeats}`);
  await sql.dropStageIndex(index.name);
  await sql.createStageIndex({ ...index, unique: true });
}

/**
 * A teacher at two schools is two Teachers rows (two ids, one TeacherNumber): one person in the
 * roster. Every staff id is kept in `staff_ids` (classes point at either); the person keeps the
 * first row's fields, with every school in `school_ids`.
 */
async function mergeStaff(sql: EngineSql): Promise<void> {
  const users = stagedTable(sql, "users");
  const staffIds = stagedTable(sql, "staff_ids");
  const groups = stagedTable(sql, "staff_groups");
  const rowid = sql.rowid;
  await sql.exec(`INSERT INTO ${staffIds} (district_user_id, user_key, school_id, file_idx, row)
      SELECT district_user_id, user_key, school_id, file_idx, row FROM ${users} WHERE scope = 'staff' ORDER BY district_user_id`);
  await sql.createStageIndex({ name: "staff_ids_key", table: "staff_ids", columns: ["district_user_id"], unique: true });
  await sql.exec(`CREATE TABLE ${groups} AS
      SELECT user_key, min(${rowid}) AS keep FROM ${users} WHERE scope = 'staff' GROUP BY user_key HAVING count(*) > 1`);
  await sql.exec(`UPDATE ${users} SET school_ids = (
        SELECT ${sql.jsonGroupArray("school_id")} FROM (
          SELECT DISTINCT s.school_id FROM ${users} s WHERE s.scope = 'staff' AND s.user_key = users.user_key AND s.school_id IS NOT NULL ORDER BY s.school_id) schools)
      WHERE ${rowid} IN (SELECT keep FROM ${groups})`);
  await sql.exec(`DELETE FROM ${users} WHERE scope = 'staff' AND user_key IN (SELECT user_key FROM ${groups}) AND ${rowid} NOT IN (SELECT keep FROM ${groups})`);
}
