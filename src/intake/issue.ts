/**
 * Issues are data, not exceptions: what is wrong with a delivery, where, and what a district's
 * PowerSchool administrator should do about it. Codes are stable (docs, CSV exports and
 * vendors' tooling depend on them); add new ones, never rename.
 */

export type Severity = "error" | "warning" | "info";

export interface Issue {
  /** The file as the district named it; a zip entry is `archive.zip/entry.csv`. */
  file: string;
  /** Row as a spreadsheet shows it (header = 1, blank lines counted); null for file-level issues. */
  row: number | null;
  /** The column label as it appears in the file, or the spec's name when the column is missing. */
  column: string | null;
  value: string | null;
  code: IssueCode;
  severity: Severity;
  message: string;
}

/** What a message builder may use. `count`/`limit`/`expected`/`detail` depend on the code. */
export interface IssueContext {
  file: string;
  row?: number | null;
  column?: string | null;
  value?: string | null;
  count?: number;
  limit?: number;
  expected?: string;
  detail?: string;
}

/** "file": the file (or delivery) fails; "row": the row is skipped or a value dropped; "summary": counted once per file. */
export type IssueScope = "file" | "row" | "summary";

interface IssueCodeSpec {
  readonly severity: Severity;
  readonly scope: IssueScope;
  readonly summary: string;
  readonly message: (c: IssueContext) => string;
  readonly example: IssueContext;
}

const MAX_SHOWN_VALUE = 80;

export function showValue(value: string | null | undefined): string {
  if (value == null) return "(empty)";
  const shown = value.length > MAX_SHOWN_VALUE ? `${value.slice(0, MAX_SHOWN_VALUE)}…` : value;
  return JSON.stringify(shown);
}

function at(c: IssueContext): string {
  const parts = [c.file];
  if (c.row != null) parts.push(`row ${c.row}`);
  if (c.column != null) parts.push(`column ${c.column}`);
  return parts.join(", ");
}

function plural(count: number | undefined, one: string, many = `${one}s`): string {
  const n = count ?? 0;
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

const ROW_SKIPPED = "The row was left out of tonight's sync.";

/** A bad optional value that names another record (an id) cannot keep yesterday's value. */
export const VALUE_LEFT_EMPTY = "The value was left empty; the row was kept.";

/**
 * What happened to a bad optional value: the column keeps the live record's value. The reader
 * does not know it (it runs apart from the roster): it says `undefined`, and the sync, which
 * does, finishes the message with `finishKeptValueMessage`.
 */
export function keptValueDetail(value: string | null | undefined): string {
  if (value === undefined) return KEPT_VALUE_PENDING;
  return value === null ? "There was no value yesterday, so it was left empty; the row was kept." : `Kept yesterday's value ${value}; the row was kept.`;
}

const KEPT_VALUE_PENDING = "Yesterday's value was kept; the row was kept.";

/** Whether an issue's message ends with a kept value still to be named. */
export function awaitsKeptValue(issue: Issue): boolean {
  return issue.message.endsWith(KEPT_VALUE_PENDING);
}

/** The message naming the value kept, for an issue that `awaitsKeptValue`. */
export function finishKeptValueMessage(issue: Issue, value: string | null): string {
  return issue.message.slice(0, issue.message.length - KEPT_VALUE_PENDING.length) + keptValueDetail(value);
}

const CHANGE_DATE_FORMAT =
  "set the export's date format in PowerSchool so that every date is written the same way, or have your Rosterdock operator set the district's date format (rosterdock district settings <district> --date-format mdy, or dmy)";

export const ISSUE_CODES = {
  // ---- delivery and file level: the delivery fails ----
  UNREADABLE_FILE: {
    severity: "error",
    scope: "file",
    summary: "The file could not be read.",
    message: (c) => `${c.file} could not be read (${c.detail ?? "unknown error"}). Upload it again; if this repeats, contact Rosterdock support with this message.`,
    example: { file: "students.csv", detail: "EIO: i/o error" },
  },
  EMPTY_FILE: {
    severity: "error",
    scope: "file",
    summary: "The file is empty (0 bytes, or only blank lines).",
    message: (c) => `${c.file} is empty. The export produced no data: check the export's template in PowerSchool and run it again. Nothing was changed.`,
    example: { file: "students_20261128.csv" },
  },
  BINARY_FILE: {
    severity: "error",
    scope: "file",
    summary: "The file is not text (for example a spreadsheet, PDF or archive saved under a .csv name).",
    message: (c) =>
      `${c.file} is not a text file${c.detail ? ` (${c.detail})` : ""}. Export the data as delimited text (CSV or tab-separated) from PowerSchool's Data Export Manager or AutoSend, not as a spreadsheet or PDF, and send that file.`,
    example: { file: "students.csv", detail: "it contains NUL bytes" },
  },
  SPREADSHEET_FILE: {
    severity: "error",
    scope: "file",
    summary: "The file is an Excel workbook.",
    message: (c) => `${c.file} is an Excel workbook, not a CSV file. In Excel use File > Save As > "CSV UTF-8", or export directly from PowerSchool as CSV.`,
    example: { file: "students.csv" },
  },
  NO_ROSTER_FILES: {
    severity: "error",
    scope: "file",
    summary: "No file of the delivery is a roster file: nothing can be read, so the delivery fails.",
    message: (c) =>
      `None of the ${plural(c.count, "file")} received (${c.value ?? "none"}) is a roster file, so nothing was read and nothing changed. Name each export after its table, for example ${c.expected}; anything after _ or - is ignored (students_20261128.csv), and the extension must be .csv, .txt or .tsv (or put them in one .zip).`,
    example: { file: "export1.csv", count: 2, value: "export1.csv, export2.csv", expected: "students.csv, teachers.csv, sections.csv, cc.csv" },
  },
  NO_HEADER_ROW: {
    severity: "error",
    scope: "file",
    summary: "The first row is not a row of column names.",
    message: (c) =>
      `${c.file} has no header row: its first row ${c.detail ?? "matches no known column name"} (${showValue(c.value)}). In PowerSchool, edit the export: in Data Export Manager tick "Include Column Headers"; in AutoSend set "Include Field Headers" (Column Titles) to on. Then run the export again.`,
    example: { file: "students.txt", row: 1, value: "1001\t200001\tJosé", detail: "looks like data" },
  },
  MISSING_REQUIRED_COLUMN: {
    severity: "error",
    scope: "file",
    summary: "A required column is missing.",
    message: (c) =>
      `${c.file} has no ${c.column} column. Add ${c.expected ?? "it"} to the export's fields and run it again. Nothing was changed.`,
    example: { file: "sections.csv", column: "teacher_id", expected: "one of the fields Teacher, teacher_id" },
  },
  DUPLICATE_COLUMN: {
    severity: "warning",
    scope: "file",
    summary: "Two columns mean the same thing; the first is used.",
    message: (c) =>
      `${c.file}: column ${c.column} means the same as an earlier column (${c.expected}); the earlier one is used. Remove one of them from the export to silence this warning.`,
    example: { file: "students.csv", column: "Students.SchoolID", expected: "SchoolID" },
  },
  UNCLOSED_QUOTE: {
    severity: "error",
    scope: "file",
    summary: "A quoted value never ends, so the rest of the file cannot be read.",
    message: (c) =>
      `${c.file}, row ${c.row}: a value opens a quote (") that is never closed${c.detail ? ` (${c.detail})` : ""}, so the rows after it cannot be read. The file may have been cut off during upload, or a value contains a stray quote: in Data Export Manager turn on "Surround field values in quotes" so quotes inside values are doubled, and run the export again.`,
    example: { file: "students.csv", row: 412, detail: "still open after 1,048,576 characters" },
  },
  LINE_TOO_LONG: {
    severity: "error",
    scope: "file",
    summary: "A line is longer than any roster row can be, so the rest of the file cannot be read.",
    message: (c) =>
      `${c.file}, row ${c.row}: ${c.detail ?? "the line is too long"}. A roster row is at most a few thousand characters: the file is probably not a roster export (or its line breaks were lost). Export it again as delimited text from PowerSchool.`,
    example: { file: "students.csv", row: 2, detail: "no line break in 1,048,576 characters" },
  },
  UNSAFE_ZIP_ENTRY: {
    severity: "error",
    scope: "file",
    summary: "A zip entry's name points outside the archive (absolute path, `..`, drive letter) or is a link.",
    message: (c) =>
      `${c.file} contains an entry named ${showValue(c.value)} that ${c.detail ?? "is not a plain relative file name"}. For safety the whole zip was rejected. Build the zip from the export files only, with plain file names (for example students.csv).`,
    example: { file: "roster.zip", value: "../../etc/passwd", detail: "points outside the archive" },
  },
  TOO_MANY_ZIP_ENTRIES: {
    severity: "error",
    scope: "file",
    summary: "The zip holds more entries than allowed.",
    message: (c) => `${c.file} holds more than ${plural(c.limit, "entry", "entries")}. Send only the roster files (one per table) in the zip.`,
    example: { file: "roster.zip", limit: 64 },
  },
  ZIP_TOO_LARGE: {
    severity: "error",
    scope: "file",
    summary: "A zip entry, or the zip's total content, is larger uncompressed than allowed.",
    message: (c) =>
      `${c.file}: ${c.detail ?? "its content"} would be ${formatBytes(c.count)} uncompressed, over the limit of ${formatBytes(c.limit)}. The zip was rejected. Check the export holds only roster data; if your district really is this large, ask your Rosterdock operator to raise the limit.`,
    example: { file: "roster.zip", detail: "entry students.csv", count: 3_000_000_000, limit: 2_147_483_648 },
  },
  ZIP_BOMB: {
    severity: "error",
    scope: "file",
    summary: "A zip entry compresses far more than real roster data can (a zip bomb).",
    message: (c) =>
      `${c.file}: entry ${showValue(c.value)} expands ${Math.round(c.count ?? 0)} times its compressed size (the limit is ${c.limit}), which real roster files never do. The zip was rejected as unsafe. Rebuild it from the export files.`,
    example: { file: "roster.zip", value: "students.csv", count: 1030, limit: 200 },
  },
  BAD_ZIP: {
    severity: "error",
    scope: "file",
    summary: "The zip archive is damaged, password-protected or uses an unsupported compression method.",
    message: (c) =>
      `${c.file} could not be opened as a zip archive (${c.detail ?? "damaged"}). Send an unencrypted zip built with a standard tool, or send the CSV files without zipping them.`,
    example: { file: "roster.zip", detail: "entry students.csv is password-protected" },
  },
  DUPLICATE_FILE: {
    severity: "error",
    scope: "file",
    summary: "Two files of the delivery hold the same table.",
    message: (c) =>
      `${c.file} and ${c.value} both hold ${c.expected}. Rosterdock cannot tell which one is right, so the delivery was not applied. Send one file per table (remove the older export from the upload folder).`,
    example: { file: "students_20261128.csv", value: "students_20261127.csv", expected: "students" },
  },
  TOO_MANY_BAD_ROWS: {
    severity: "error",
    scope: "file",
    summary: "More rows are bad than the limit allows (default 5% of a file), so the file fails.",
    message: (c) =>
      `${c.file}: ${plural(c.count, "row")} of ${(c.limit ?? 0).toLocaleString("en-US")} are bad (${c.detail ?? "over the limit"}). That many problems usually means the export's template is wrong, so nothing from this delivery was applied. Fix the problems listed for this file and run the export again.`,
    example: { file: "cc.csv", count: 5210, limit: 80_000, detail: "6.5%, the limit is 5%" },
  },
  // ---- rows and values: the row is skipped (or the value left empty) ----
  WRONG_FIELD_COUNT: {
    severity: "warning",
    scope: "row",
    summary: "A row has a different number of values than the header has columns.",
    message: (c) =>
      `${at(c)}: the row has ${c.count} values but the header has ${c.limit} columns. ${ROW_SKIPPED} A value probably contains the delimiter without quotes: turn on "Surround field values in quotes" in the export.`,
    example: { file: "students.csv", row: 88, count: 13, limit: 12 },
  },
  MISSING_VALUE: {
    severity: "warning",
    scope: "row",
    summary: "A required value is empty.",
    message: (c) => `${at(c)} is empty, but every row needs it. Fill it in in PowerSchool. ${ROW_SKIPPED}`,
    example: { file: "students.csv", row: 17, column: "Last_Name", value: "" },
  },
  BAD_DATE: {
    severity: "warning",
    scope: "row",
    summary: "A value is not a date in an accepted format.",
    message: (c) =>
      `${at(c)}: ${showValue(c.value)} is not a valid date. Use ${c.expected ?? "MM/DD/YYYY (for example 08/24/2026) or YYYY-MM-DD"}. ${c.detail ?? ROW_SKIPPED}`,
    example: { file: "cc.csv", row: 5, column: "DateEnrolled", value: "02/30/2026", detail: "Kept yesterday's value 2026-08-24; the row was kept." },
  },
  BAD_ROLE: {
    severity: "warning",
    scope: "row",
    summary: "A role is not student, teacher, administrator or aide.",
    message: (c) => `${at(c)}: ${showValue(c.value)} is not a role. Use student, teacher, administrator or aide. ${ROW_SKIPPED}`,
    example: { file: "users.csv", row: 9, column: "role", value: "principal" },
  },
  BAD_VALUE: {
    severity: "warning",
    scope: "row",
    summary: "A value does not have the column's type (number, grade, email, length).",
    message: (c) => `${at(c)}: ${showValue(c.value)} is not ${c.expected}. ${c.detail ?? ROW_SKIPPED}`,
    example: { file: "teachers.csv", row: 3, column: "Email_Addr", value: "jsmith@", expected: "an email address", detail: "Kept yesterday's value jsmith@example.org; the row was kept." },
  },
  DUPLICATE_KEY: {
    severity: "warning",
    scope: "row",
    summary: "A row repeats the key of an earlier row; the earlier row is kept.",
    message: (c) =>
      `${at(c)}: ${c.expected ?? "the key"} ${showValue(c.value)} already appears ${c.detail ?? "in an earlier row"}. The earlier row was kept and this one skipped. Each ${c.expected ?? "key"} must appear once: check the export does not list the same record twice.`,
    example: { file: "students.csv", row: 120, column: "ID", value: "1001", expected: "student id", detail: "in row 7" },
  },
  UNKNOWN_REFERENCE: {
    severity: "warning",
    scope: "row",
    summary: "A row points at something absent from tonight's files (a school, user, class, course or term).",
    message: (c) =>
      `${at(c)}: ${showValue(c.value)} is not ${c.expected}. The row was dropped, together with the rows that depend on it. Check that the export of ${c.detail ?? "the other table"} includes it (for example it is not filtered to a single school or to active records only).`,
    example: { file: "cc.csv", row: 44, column: "StudentID", value: "99812", expected: "a student in students.csv", detail: "students" },
  },
  REJECTED_REFERENCE: {
    severity: "warning",
    scope: "row",
    summary: "A row points at a record whose own row was rejected or left out tonight; it is left out with it.",
    message: (c) =>
      `${at(c)}: ${showValue(c.value)} is ${c.expected} whose row was left out of tonight's sync (${c.detail}). This row was left out too; it comes back once that row is fixed in PowerSchool and exported again.`,
    example: { file: "sections.csv", row: 12, column: "Teacher", value: "702", expected: "a staff member", detail: "teachers.csv row 4: the row has 7 values but the header has 6 columns" },
  },
  DEPENDENTS_DELETED: {
    severity: "warning",
    scope: "summary",
    summary: "Records that pointed at a record deleted tonight were deleted with it, so that nothing points at nothing.",
    message: (c) =>
      `${c.detail}: ${(c.count ?? 0).toLocaleString("en-US")} ${c.value} pointed (${c.column}) at ${c.expected} that ${c.count === 1 ? "is" : "are"} not in the roster after tonight, and ${c.count === 1 ? "goes" : "go"} with ${c.count === 1 ? "it" : "them"}. If those ${c.expected} should not have gone, check that tonight's export is complete (not filtered or cut short); a sync deleting too many is held for review.`,
    example: { file: "teachers.csv", detail: "teachers.csv", count: 69, value: "enrollments", column: "class_id", expected: "classes" },
  },
  // ---- once per file ----
  UNRECOGNISED_FILE: {
    severity: "warning",
    scope: "summary",
    summary: "The file name matches no roster table; the file is ignored.",
    message: (c) =>
      `${c.file} was ignored: its name does not say which table it holds. Name it after the table, for example ${c.expected}; anything after _ or - is ignored (students_20261128.csv), and the extension must be .csv, .txt or .tsv.`,
    example: { file: "export1.csv", expected: "students.csv, teachers.csv, sections.csv, cc.csv" },
  },
  NESTED_ARCHIVE: {
    severity: "warning",
    scope: "summary",
    summary: "A zip inside a zip is not opened.",
    message: (c) => `${c.file} is an archive inside an archive and was ignored. Put the CSV files directly in one zip.`,
    example: { file: "roster.zip/old.zip" },
  },
  NO_DATA_ROWS: {
    severity: "warning",
    scope: "summary",
    summary: "The file has a header but no rows; the sync is held for review instead of deleting everything.",
    message: (c) =>
      `${c.file} has column names but no rows. If the export's filter or selection changed, fix it and run the export again; an empty file is never taken to mean "delete everything" without a person approving it.`,
    example: { file: "students_20261128.csv" },
  },
  UNUSED_COLUMN: {
    severity: "info",
    scope: "summary",
    summary: "Columns Rosterdock does not use were ignored.",
    message: (c) => `${c.file}: ${plural(c.count, "column")} not used by Rosterdock ${c.count === 1 ? "was" : "were"} ignored: ${c.value}. Nothing to do; you may remove ${c.count === 1 ? "it" : "them"} from the export.`,
    example: { file: "cc.csv", count: 3, value: "CC.ID, CC.SchoolID, CC.TermID" },
  },
  WINDOWS_1252_DECODED: {
    severity: "info",
    scope: "summary",
    summary: "The file is not UTF-8 and was read as Windows-1252.",
    message: (c) =>
      `${c.file} is not UTF-8, so it was read as Windows-1252 (the first byte that is not UTF-8 is byte ${(c.count ?? 0).toLocaleString("en-US")}). Names such as José are right if this is correct; to be sure, set the export's Character Set to UTF-8.`,
    example: { file: "students.txt", count: 5123 },
  },
  DROPPED_ENROLLMENTS: {
    severity: "info",
    scope: "summary",
    summary: "Rows with a negative class id (PowerSchool's dropped enrollments) were left out.",
    message: (c) => `${c.file}: ${plural(c.count, "dropped enrollment")} (negative ${c.column ?? "SectionID"}) ${c.count === 1 ? "was" : "were"} left out of the roster, as PowerSchool intends. Nothing to do.`,
    example: { file: "cc.csv", column: "SectionID", count: 1532 },
  },
  INACTIVE_STUDENTS_SKIPPED: {
    severity: "info",
    scope: "summary",
    summary: "Users whose Enroll_Status is not 0 were skipped.",
    message: (c) =>
      `${c.file}: ${plural(c.count, "user")} with ${c.column ?? "Enroll_Status"} other than 0 (pre-registered, inactive, transferred out, graduated) ${c.count === 1 ? "was" : "were"} skipped. Nothing to do; to keep them out of the file, filter the export on Enroll_Status=0.`,
    example: { file: "students.csv", column: "Enroll_Status", count: 214 },
  },
  AMBIGUOUS_DATE_FORMAT: {
    severity: "warning",
    scope: "summary",
    summary: "A date column holds dates written day first and dates written month first, so none of them is taken.",
    message: (c) =>
      `${c.file}: column ${c.column} holds dates that cannot all be read one way: ${c.detail}. None of its dates can be read with confidence, so ${
        c.count === undefined
          ? "none was taken tonight: each row kept yesterday's value."
          : `${plural(c.count, "row was", "rows were")} left out of tonight's sync; those records stay as they were.`
      } To fix it, ${CHANGE_DATE_FORMAT}.`,
    example: { file: "cc.csv", column: "DateEnrolled", detail: "25/08/2026 in row 2 can only be day first (DD/MM/YYYY), 08/26/2026 in row 40 only month first (MM/DD/YYYY)" },
  },
  DATE_FORMAT_DAY_FIRST: {
    severity: "info",
    scope: "summary",
    summary: "A date column was read day first (DD/MM/YYYY), as some of its dates can only be read so.",
    message: (c) =>
      `${c.file}: column ${c.column} was read as DD/MM/YYYY (day first) throughout, because some of its dates can only be read so (for example ${c.detail}). Nothing to do if that is right. If the district's dates are month first, set the export's date format in PowerSchool to MM/DD/YYYY, or have your Rosterdock operator set the district's date format (rosterdock district settings <district> --date-format mdy).`,
    example: { file: "students.csv", column: "DOB", detail: "25/03/2010 in row 7" },
  },
  CLASS_NAME_DERIVED: {
    severity: "info",
    scope: "summary",
    summary: "Classes without a name were named after their course and section.",
    message: (c) => `${c.file}: ${plural(c.count, "class", "classes")} had no name and ${c.count === 1 ? "was" : "were"} named "<course name> - <section number>". Nothing to do.`,
    example: { file: "sections.csv", count: 2400 },
  },
} as const satisfies Record<string, IssueCodeSpec>;

export type IssueCode = keyof typeof ISSUE_CODES;

export function formatBytes(bytes: number | undefined): string {
  const n = bytes ?? 0;
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** Longest value and message an issue keeps: a 100k-column header must not become a 1 MB issue row. */
export const MAX_ISSUE_VALUE = 1000;
export const MAX_ISSUE_MESSAGE = 2000;

/** The text cut at `max` characters, saying so and how long it was. */
export function truncated(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [cut: ${text.length.toLocaleString("en-US")} characters in all]`;
}

export function makeIssue(code: IssueCode, context: IssueContext, severity?: Severity): Issue {
  const spec: IssueCodeSpec = ISSUE_CODES[code];
  return {
    file: truncated(context.file, MAX_ISSUE_VALUE),
    row: context.row ?? null,
    column: context.column == null ? null : truncated(context.column, MAX_ISSUE_VALUE),
    value: context.value == null ? null : truncated(context.value, MAX_ISSUE_VALUE),
    code,
    severity: severity ?? spec.severity,
    message: truncated(spec.message(context), MAX_ISSUE_MESSAGE),
  };
}

export function issueCodeSpec(code: IssueCode): IssueCodeSpec {
  return ISSUE_CODES[code];
}

// ---- sink ----

export interface SeverityCounts {
  error: number;
  warning: number;
  info: number;
}

/**
 * Where stages report issues. Bounded: a file with millions of bad rows must not hold
 * millions of issues; the sink keeps the first few per file and code and counts the rest.
 */
export interface IssueSink {
  add(issue: Issue): void;
  /** Every issue added, kept or not. */
  readonly counts: Readonly<SeverityCounts>;
  countOf(code: IssueCode, file?: string): number;
}

export interface MemoryIssueSinkOptions {
  /** Detailed issues kept per (file, code); the rest are only counted. */
  maxPerFileAndCode?: number;
  /** Called with every kept issue, e.g. to persist it. */
  onKept?: (issue: Issue) => void;
}

export const DEFAULT_MAX_ISSUES_PER_FILE_AND_CODE = 100;

export class MemoryIssueSink implements IssueSink {
  readonly counts: SeverityCounts = { error: 0, warning: 0, info: 0 };
  readonly kept: Issue[] = [];
  readonly #perKey = new Map<string, number>();
  readonly #max: number;
  readonly #onKept: ((issue: Issue) => void) | undefined;

  constructor(options: MemoryIssueSinkOptions = {}) {
    this.#max = options.maxPerFileAndCode ?? DEFAULT_MAX_ISSUES_PER_FILE_AND_CODE;
    this.#onKept = options.onKept;
  }

  add(issue: Issue): void {
    this.counts[issue.severity] += 1;
    const key = `${issue.code}\u0000${issue.file}`;
    const seen = (this.#perKey.get(key) ?? 0) + 1;
    this.#perKey.set(key, seen);
    this.#perKey.set(issue.code, (this.#perKey.get(issue.code) ?? 0) + 1);
    if (seen > this.#max) return;
    this.kept.push(issue);
    this.#onKept?.(issue);
  }

  countOf(code: IssueCode, file?: string): number {
    return this.#perKey.get(file === undefined ? code : `${code}\u0000${file}`) ?? 0;
  }

  /** How many issues of (file, code) were counted but not kept. */
  omitted(code: IssueCode, file: string): number {
    return Math.max(0, this.countOf(code, file) - this.#max);
  }
}
