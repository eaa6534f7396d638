import type { CanonicalRecords, EntityName } from "../spec/roster-spec.ts";
import type { DateColumnMemory, DateColumnOutcome, DateFormatSetting } from "./date-format.ts";
import { decodeText, detectEncoding } from "./decode.ts";
import type { EncodingDetection } from "./decode.ts";
import { DuplicateKeyTracker } from "./duplicate-keys.ts";
import { makeIssue } from "./issue.ts";
import type { Issue, IssueCode, IssueSink } from "./issue.ts";
import { acceptedLabels, matchHeaders, notAHeaderReason } from "./match-headers.ts";
import { DelimitedTextParser, ParseError } from "./parse.ts";
import type { Delimiter } from "./parse.ts";
import type { RecognisedFile } from "./recognise-file.ts";
import type { RosterSource } from "./unpack.ts";
import { RowValidator, emptyRowCounts } from "./validate-row.ts";
import type { RejectedRow, RowCounts, RowValidatorOptions } from "./validate-row.ts";

/** Records in file order; `rows[i]` is the spreadsheet row of `records[i]`. */
export interface RecordBatch<R> {
  rows: number[];
  records: R[];
}

export interface FileStats extends RowCounts {
  /** The file-level error that failed the file, if any: records already yielded must then be discarded. */
  failed: IssueCode | null;
  encoding: EncodingDetection["encoding"] | null;
  delimiter: Delimiter | null;
  /** The header's labels as written (trailing empty label removed). */
  header: string[];
  /** Bad values that keep yesterday's (KEPT_VALUE in their records), per column name. */
  keptValues: Record<string, number>;
  /** How each date column was read: known at the end of the file (see DateColumn). */
  dateColumns: DateColumnOutcome[];
}

export function emptyFileStats(): FileStats {
  return { ...emptyRowCounts(), failed: null, encoding: null, delimiter: null, header: [], keptValues: {}, dateColumns: [] };
}

export interface ReadRosterFileOptions {
  /** Filled in while reading; complete when the generator finishes. */
  stats?: FileStats;
  /** Share a tracker across a delivery to catch keys repeated across files; null leaves duplicates to the database. */
  duplicates?: DuplicateKeyTracker | null;
  maxRecordChars?: number;
  /** The source's encoding detection, already started (it reports to the same `issues`): otherwise detected here first. */
  detection?: Promise<EncodingDetection | { failed: IssueCode }>;
  /** Sees every data line and record (line digests, see sync/line-digest.ts). */
  lines?: LineTracking;
  /** Told of each rejected row and what can be read of its key (see RejectedRow). */
  onRejected?: (rejected: RejectedRow) => void;
  /** How date columns are read (the district's setting); default `auto`. */
  dateFormat?: DateFormatSetting;
}

/**
 * Follows a file's data lines as they are read: `known` sees each non-blank line after the
 * header before it is split, and a line it knows is counted as a good record and read no further;
 * `accepted` then sees each record read from the line `known` last saw.
 */
export interface LineTracking {
  /** Called once the header is read and checked. */
  begin(header: readonly string[], delimiter: Delimiter, encoding: string): void;
  known(text: string, start: number, end: number, row: number): boolean;
  /** `clean`: the row had no issue at all. */
  accepted(record: unknown, row: number, clean: boolean): void;
  /** After `begin`: when lines will be skipped, how last night read the date columns of their values (by column name). */
  previousDates?(): Readonly<Record<string, DateColumnMemory>> | null;
}

class StopFile extends Error {}

/**
 * Reads one roster file: decode → parse → match headers → normalise and validate, streaming.
 * Yields batches of canonical records, one per decoded chunk (64 KB of a plain file, 16 KB of a
 * zip entry). Problems go to `issues`; a file-level error ends the file early and sets `stats.failed`.
 */
export async function* readRosterFile<E extends EntityName>(
  source: RosterSource,
  file: RecognisedFile & { entity: E },
  issues: IssueSink,
  options: ReadRosterFileOptions = {},
): AsyncGenerator<RecordBatch<CanonicalRecords[E]>, FileStats> {
  const stats = options.stats ?? emptyFileStats();
  const fail = (issue: Issue): never => {
    issues.add(issue);
    stats.failed = issue.code;
    throw new StopFile();
  };
  const detection = await (options.detection ?? detectEncoding(source, issues));
  if ("failed" in detection) {
    stats.failed = detection.failed;
    return stats;
  }
  stats.encoding = detection.encoding;
  const parser = new DelimitedTextParser(options.maxRecordChars === undefined ? {} : { maxRecordChars: options.maxRecordChars });
  const duplicates = options.duplicates === undefined ? new DuplicateKeyTracker() : options.duplicates;
  const rowReader = new RowReader(
    source.name,
    file,
    issues,
    stats,
    { duplicates, dateFormat: options.dateFormat ?? "auto", ...(options.onRejected === undefined ? {} : { onRejected: options.onRejected }) },
    fail,
  );
  let batch = newBatch<CanonicalRecords[E]>();
  const lines = options.lines === undefined ? undefined : new GuardedTracking(options.lines);
  const onRow = (fields: string[], row: number) => {
    const header = !rowReader.ready;
    const issuesBefore = lines === undefined ? 0 : issueTotal(issues);
    const record = rowReader.read(fields, row);
    if (record !== null) {
      batch.rows.push(row);
      batch.records.push(record as CanonicalRecords[E]);
      lines?.accepted(record, row, issueTotal(issues) === issuesBefore);
    } else if (header && rowReader.ready && lines !== undefined) {
      lines.begin(stats.header, parser.delimiter!, detection.encoding);
      const previous = lines.previousDates();
      if (previous !== null) rowReader.readAgainst(previous);
      parser.lineFilter = (text, start, end, line) => {
        if (!lines.known(text, start, end, line)) return false;
        rowReader.countKnown();
        return true;
      };
    }
  };
  try {
    for await (const text of decodeText(source, detection)) {
      parser.push(text, onRow);
      if (batch.records.length > 0) {
        yield batch;
        batch = newBatch();
      }
    }
    parser.end(onRow);
    if (batch.records.length > 0) yield batch;
    stats.delimiter = parser.delimiter;
    rowReader.finish();
  } catch (error) {
    // The caller's line tracking failed: not the file's fault, and not an issue of the district's.
    if (error instanceof TrackingFailure) throw error.error;
    rowReader.copyCounts();
    if (error instanceof ParseError) {
      issues.add(makeIssue(error.code, { file: source.name, row: error.row, detail: error.detail }));
      stats.failed = error.code;
    } else if (!(error instanceof StopFile)) {
      issues.add(makeIssue("UNREADABLE_FILE", { file: source.name, detail: error instanceof Error ? error.message : String(error) }));
      stats.failed = "UNREADABLE_FILE";
    }
  }
  stats.delimiter ??= parser.delimiter;
  return stats;
}

/** Carries an error of the caller's LineTracking past the read's own error handling. */
class TrackingFailure extends Error {
  constructor(readonly error: unknown) {
    super("line tracking failed");
  }
}

/** The caller's LineTracking, its errors wrapped in TrackingFailure. */
class GuardedTracking implements LineTracking {
  constructor(private readonly inner: LineTracking) {}

  begin(header: readonly string[], delimiter: Delimiter, encoding: string): void {
    try {
      this.inner.begin(header, delimiter, encoding);
    } catch (error) {
      throw new TrackingFailure(error);
    }
  }

  known(text: string, start: number, end: number, row: number): boolean {
    try {
      return this.inner.known(text, start, end, row);
    } catch (error) {
      throw new TrackingFailure(error);
    }
  }

  accepted(record: unknown, row: number, clean: boolean): void {
    try {
      this.inner.accepted(record, row, clean);
    } catch (error) {
      throw new TrackingFailure(error);
    }
  }

  previousDates(): Readonly<Record<string, DateColumnMemory>> | null {
    try {
      return this.inner.previousDates?.() ?? null;
    } catch (error) {
      throw new TrackingFailure(error);
    }
  }
}

function issueTotal(issues: IssueSink): number {
  return issues.counts.error + issues.counts.warning + issues.counts.info;
}

function newBatch<R>(): RecordBatch<R> {
  return { rows: [], records: [] };
}

/** The header row first, then data rows through the validator it compiles. */
class RowReader {
  #validator: RowValidator | null = null;

  constructor(
    private readonly fileName: string,
    private readonly file: RecognisedFile,
    private readonly issues: IssueSink,
    private readonly stats: FileStats,
    private readonly options: RowValidatorOptions,
    private readonly fail: (issue: Issue) => never,
  ) {}

  /** True once the header is read. */
  get ready(): boolean {
    return this.#validator !== null;
  }

  /** A data line known to be a good record (see LineTracking). */
  countKnown(): void {
    this.#validator!.countKnown();
  }

  /** Lines will be skipped as last night's (see RowValidator.readAgainst). */
  readAgainst(previous: Readonly<Record<string, DateColumnMemory>>): void {
    this.#validator!.readAgainst(previous);
  }

  read(fields: string[], row: number) {
    if (this.#validator !== null) return this.#validator.validate(fields, row);
    if (fields.every((f) => f.trim() === "")) return null;
    this.#validator = this.#readHeader(fields, row);
    return null;
  }

  #readHeader(fields: string[], row: number): RowValidator {
    const labels = withoutTrailingEmpty(fields.map((label) => label.replace(/^\uFEFF/, "")));
    this.stats.header = labels;
    const match = matchHeaders(labels, this.file);
    const notHeader = notAHeaderReason(labels, match);
    if (notHeader !== null) {
      this.fail(makeIssue("NO_HEADER_ROW", { file: this.fileName, row, value: fields.join(" | "), detail: notHeader }));
    }
    if (match.missing.length > 0) {
      for (const column of match.missing.slice(1)) this.issues.add(missingColumn(this.fileName, column));
      this.fail(missingColumn(this.fileName, match.missing[0]!));
    }
    for (const [label, earlier] of match.duplicates) {
      this.issues.add(makeIssue("DUPLICATE_COLUMN", { file: this.fileName, column: label, expected: earlier }));
    }
    const unused = match.unused.map((label) => (label.trim() === "" ? "(a column with no name)" : label));
    if (unused.length > 0) {
      this.issues.add(makeIssue("UNUSED_COLUMN", { file: this.fileName, count: unused.length, value: unused.join(", ") }));
    }
    return new RowValidator(this.fileName, this.file, match, labels.length, this.issues, this.options);
  }

  finish(): void {
    const validator = this.#validator;
    if (validator === null) {
      this.fail(makeIssue("EMPTY_FILE", { file: this.fileName }));
      return;
    }
    this.copyCounts();
    this.stats.dateColumns = validator.finishDates();
    const { counts } = validator;
    if (counts.rows === 0) this.issues.add(makeIssue("NO_DATA_ROWS", { file: this.fileName }));
    if (counts.dropped > 0) {
      this.issues.add(makeIssue("DROPPED_ENROLLMENTS", { file: this.fileName, count: counts.dropped, column: validator.ruleLabel("drop-if-negative") }));
    }
    if (counts.skipped > 0) {
      this.issues.add(makeIssue("INACTIVE_STUDENTS_SKIPPED", { file: this.fileName, count: counts.skipped, column: validator.ruleLabel("skip-unless-zero") }));
    }
  }

  copyCounts(): void {
    if (this.#validator === null) return;
    Object.assign(this.stats, this.#validator.counts);
    this.stats.keptValues = { ...this.#validator.kept };
  }
}

function missingColumn(fileName: string, column: { name: string } & Parameters<typeof acceptedLabels>[0]): Issue {
  const labels = acceptedLabels(column);
  const expected = labels.length === 1 ? `a column named ${labels[0]}` : `one of the fields ${labels.join(", ")}`;
  return makeIssue("MISSING_REQUIRED_COLUMN", { file: fileName, column: column.name, expected });
}

/** A delimiter closing every line leaves an empty last label: AutoSend does this. */
function withoutTrailingEmpty(labels: string[]): string[] {
  let end = labels.length;
  while (end > 1 && labels[end - 1]!.trim() === "") end--;
  return end === labels.length ? labels : labels.slice(0, end);
}

export interface BadRowLimit {
  /** Share of data rows that may be bad before the file fails… */
  maxShare: number;
  /** …and this many bad rows never fail a file: one malformed row of a small school's teachers file is not a wrong template (and a rejected row keeps its live record). */
  minRows: number;
}

export const DEFAULT_BAD_ROW_LIMIT: Readonly<BadRowLimit> = Object.freeze({ maxShare: 0.05, minRows: 5 });

/**
 * The TOO_MANY_BAD_ROWS error when a file's bad rows exceed the limit, else null. The caller
 * applies it once it knows every bad row: add duplicate keys the database found to `badRows`.
 */
export function badRowLimitIssue(fileName: string, counts: Pick<RowCounts, "rows" | "badRows">, limit: BadRowLimit = DEFAULT_BAD_ROW_LIMIT): Issue | null {
  if (counts.badRows <= limit.minRows || counts.badRows <= counts.rows * limit.maxShare) return null;
  const share = (100 * counts.badRows) / Math.max(1, counts.rows);
  return makeIssue("TOO_MANY_BAD_ROWS", {
    file: fileName,
    count: counts.badRows,
    limit: counts.rows,
    detail: `${share.toFixed(1)}%, the limit is ${+(limit.maxShare * 100).toFixed(2)}%`,
  });
}
