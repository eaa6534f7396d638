import { entitySpec, scopeOfRole } from "../spec/roster-spec.ts";
import type { CanonicalRecord, ColumnSpec, EntityName, Role } from "../spec/roster-spec.ts";
import { DATE_EXPECTED, DateColumn, describeConflict, describeExample } from "./date-format.ts";
import type { DateColumnMemory, DateColumnOutcome, DateFormatSetting } from "./date-format.ts";
import type { DuplicateKeyTracker } from "./duplicate-keys.ts";
import { VALUE_LEFT_EMPTY, keptValueDetail, makeIssue } from "./issue.ts";
import type { IssueSink } from "./issue.ts";
import type { HeaderMatch } from "./match-headers.ts";
import { INVALID, TYPE_RULES, cleanCell } from "./normalise.ts";
import type { TypeRules } from "./normalise.ts";
import type { RecognisedFile } from "./recognise-file.ts";

/** Per-file row counts. `badRows` is what the bad-row limit (default 5%) is applied to. */
export interface RowCounts {
  /** Data rows read: neither the header nor blank. */
  rows: number;
  /** Records produced. */
  records: number;
  /** Rows bad in themselves: wrong field count, missing or invalid values, duplicate keys. */
  badRows: number;
  /** Dropped enrollments (negative class id). */
  dropped: number;
  /** Users skipped for their enroll_status. */
  skipped: number;
  /** Blank lines and rows of empty values, ignored. */
  blank: number;
}

export function emptyRowCounts(): RowCounts {
  return { rows: 0, records: 0, badRows: 0, dropped: 0, skipped: 0, blank: 0 };
}

interface ColumnPlan {
  spec: ColumnSpec;
  index: number;
  /** As in the file, else the spec's name (for implied or absent columns). */
  label: string;
  implied: string | null;
  type: TypeRules;
  /** A date column's reading, kept across the file (null for other types). */
  date: DateColumn | null;
  /** A bad value keeps the live record's (see KEPT_VALUE). */
  keeps: boolean;
}

/**
 * The value of a column whose value was bad, standing for the live record's value: the sync
 * replaces it from the roster before keys are built (sync/kept-values.ts). A string (records
 * cross threads) that no valid value can be: valid values never hold control characters.
 */
export const KEPT_VALUE = "\u0001kept";

/** Optional columns whose value other values are built from (a staff member's key, a class's derived name): a bad one is left empty. */
const NEVER_KEPT: ReadonlySet<string> = new Set(["teacher_number", "class_name", "section_number"]);

/**
 * Whether a bad value of the column keeps yesterday's value. Not for required values (the row
 * is left out), ids (they name other records, which may be gone tonight) or values others are built from.
 */
export function keepsYesterday(column: ColumnSpec): boolean {
  return !column.required && !column.inputOnly && column.type !== "id" && !NEVER_KEPT.has(column.name);
}

interface RulePlan {
  kind: "skip-unless-zero" | "drop-if-negative";
  index: number;
}

export interface RowValidatorOptions {
  /** Shared across a delivery's files; null disables duplicate detection. Never used for enrollments. */
  duplicates: DuplicateKeyTracker | null;
  /** How date columns are read (the district's setting); default `auto`. */
  dateFormat?: DateFormatSetting;
}

const NEGATIVE_INTEGER = /^-\d+$/;
const INTEGER = /^[-+]?\d+$/;

/**
 * Turns one parsed row into a canonical record, or reports why not. Compiled once per file
 * from the header match, so the per-row work is a loop over a fixed plan.
 */
export class RowValidator {
  readonly counts: RowCounts = emptyRowCounts();
  /** Bad values that keep yesterday's (KEPT_VALUE), per column name. */
  readonly kept: Record<string, number> = {};
  readonly #fileName: string;
  readonly #entity: EntityName;
  readonly #width: number;
  readonly #columns: ColumnPlan[];
  readonly #rules: RulePlan[];
  readonly #keyColumns: ColumnPlan[];
  readonly #issues: IssueSink;
  readonly #duplicates: DuplicateKeyTracker | null;
  readonly #dateFormat: DateFormatSetting;
  /** Rows counted as known (skipped against last night's digest). */
  #known = 0;

  constructor(fileName: string, file: RecognisedFile, match: HeaderMatch, width: number, issues: IssueSink, options: RowValidatorOptions) {
    this.#fileName = fileName;
    this.#entity = file.entity;
    this.#width = width;
    this.#issues = issues;
    const spec = entitySpec(file.entity);
    this.#dateFormat = options.dateFormat ?? "auto";
    this.#columns = spec.columns.map((column) => {
      const binding = match.bindings.get(column.name);
      const type = TYPE_RULES[column.type];
      return {
        spec: column,
        index: binding?.index ?? -1,
        label: binding?.label ?? column.name,
        implied: file.implied[column.name] ?? null,
        type: column.type === "date" ? { ...type, expected: DATE_EXPECTED[this.#dateFormat] } : type,
        date: column.type === "date" ? new DateColumn(column.name, column.required, this.#dateFormat) : null,
        keeps: keepsYesterday(column),
      };
    });
    this.#rules = spec.rules.flatMap((rule) => {
      if (rule.kind === "derive-class-name") return [];
      const index = match.bindings.get(rule.column)?.index ?? -1;
      return index === -1 ? [] : [{ kind: rule.kind, index }];
    });
    this.#keyColumns = spec.key.flatMap((name) => this.#columns.filter((c) => c.spec.name === name));
    this.#duplicates = file.entity === "enrollments" ? null : options.duplicates;
  }

  /** Label of the column a rule reads, for summary messages. */
  ruleLabel(kind: RulePlan["kind"]): string | null {
    const rule = this.#rules.find((r) => r.kind === kind);
    return rule === undefined ? null : (this.#columns.find((c) => c.index === rule.index)?.label ?? null);
  }

  /** A row known to read as a good record without reading it (an unchanged line, see LineTracking). */
  countKnown(): void {
    this.counts.rows++;
    this.counts.records++;
    this.#known++;
  }

  /**
   * Lines will be skipped as last night's: their dates were read as last night's memory says,
   * and tonight's reading starts from it. Before any data row.
   */
  readAgainst(previous: Readonly<Record<string, DateColumnMemory>>): void {
    for (const column of this.#columns) {
      if (column.date === null) continue;
      column.date = new DateColumn(column.spec.name, column.spec.required, this.#dateFormat, previous[column.spec.name] ?? null);
    }
  }

  /**
   * How each date column read, once the file is read; reports a column read day first (info) or
   * one that cannot be read one way (its values are then not taken: see DateColumnOutcome).
   */
  finishDates(): DateColumnOutcome[] {
    const outcomes: DateColumnOutcome[] = [];
    for (const column of this.#columns) {
      if (column.date === null || column.index === -1) continue;
      const outcome = column.date.finish(this.counts.rows, this.#known);
      outcomes.push(outcome);
      // An unsettled reading is read again in full: its issues would be that read's.
      if (!outcome.settled || this.#dateFormat !== "auto") continue;
      const context = { file: this.#fileName, column: column.label };
      if (outcome.reading === "dmy") this.#issues.add(makeIssue("DATE_FORMAT_DAY_FIRST", { ...context, detail: describeExample(outcome.examples.dayFirst) }));
      if (outcome.reading === "ambiguous") {
        const required = column.spec.required ? { count: this.counts.records } : {};
        this.#issues.add(makeIssue("AMBIGUOUS_DATE_FORMAT", { ...context, detail: describeConflict(outcome.examples), ...required }));
      }
    }
    return outcomes;
  }

  validate(fields: string[], row: number): CanonicalRecord | null {
    if (isBlank(fields)) {
      this.counts.blank++;
      return null;
    }
    this.counts.rows++;
    if (!this.#hasRightWidth(fields, row) || this.#ruleExcludes(fields)) return null;
    const record: Record<string, unknown> = {};
    let bad = false;
    let rejected = false;
    // Every column is checked, so that one export fixes every problem of the row.
    for (const column of this.#columns) {
      const outcome = this.#value(column, fields, row);
      if (outcome === REJECT) rejected = true;
      else if (outcome === LEFT_EMPTY || outcome === KEPT_VALUE) bad = true;
      if (!column.spec.inputOnly) record[column.spec.name] = outcome === LEFT_EMPTY ? null : outcome;
    }
    if (rejected) {
      this.counts.badRows++;
      return null;
    }
    if (this.#entity === "users") record.scope = scopeOfRole(record.role as Role);
    if (this.#isDuplicate(record, row)) {
      this.counts.badRows++;
      return null;
    }
    if (bad) {
      this.counts.badRows++;
      for (const column of this.#columns) if (record[column.spec.name] === KEPT_VALUE) this.kept[column.spec.name] = (this.kept[column.spec.name] ?? 0) + 1;
    }
    this.counts.records++;
    return record as unknown as CanonicalRecord;
  }

  #hasRightWidth(fields: string[], row: number): boolean {
    const width = this.#width;
    if (fields.length === width) return true;
    if (fields.length > width && fields.slice(width).every((f) => f.trim() === "")) return true;
    this.#issues.add(makeIssue("WRONG_FIELD_COUNT", { file: this.#fileName, row, count: fields.length, limit: width }));
    this.counts.badRows++;
    return false;
  }

  #ruleExcludes(fields: string[]): boolean {
    for (const rule of this.#rules) {
      const raw = cleanCell(fields[rule.index]);
      if (raw === null) continue;
      if (rule.kind === "drop-if-negative" && NEGATIVE_INTEGER.test(raw)) {
        this.counts.dropped++;
        return true;
      }
      if (rule.kind === "skip-unless-zero" && INTEGER.test(raw) && Number(raw) !== 0) {
        this.counts.skipped++;
        return true;
      }
    }
    return false;
  }

  #value(column: ColumnPlan, fields: string[], row: number): unknown {
    const raw = column.index === -1 ? null : cleanCell(fields[column.index]);
    const value = raw ?? column.implied;
    if (value === null) {
      if (!column.spec.required) return null;
      this.#report("MISSING_VALUE", column, row, fields[column.index] ?? "");
      return REJECT;
    }
    const parsed = column.date === null ? column.type.parse(value) : column.date.read(value, row);
    if (parsed !== INVALID) return parsed;
    if (column.spec.required) {
      this.#report(column.type.code, column, row, raw);
      return REJECT;
    }
    if (column.keeps) {
      this.#report(column.type.code, column, row, raw, keptValueDetail(undefined));
      return KEPT_VALUE;
    }
    this.#report(column.type.code, column, row, raw, VALUE_LEFT_EMPTY);
    return LEFT_EMPTY;
  }

  #report(code: "MISSING_VALUE" | TypeRules["code"], column: ColumnPlan, row: number, value: string | null, detail?: string): void {
    const context = { file: this.#fileName, row, column: column.label, value, expected: column.type.expected };
    this.#issues.add(makeIssue(code, detail === undefined ? context : { ...context, detail }));
  }

  #isDuplicate(record: Record<string, unknown>, row: number): boolean {
    if (this.#duplicates === null) return false;
    const scope = typeof record.scope === "string" ? record.scope : "";
    const key = this.#keyColumns.map((c) => String(record[c.spec.name] ?? "")).join("\u0000");
    const first = this.#duplicates.check(this.#entity, scope, key, this.#fileName, row);
    if (first === null) return false;
    const keyColumn = this.#keyColumns[0]!;
    this.#issues.add(
      makeIssue("DUPLICATE_KEY", {
        file: this.#fileName,
        row,
        column: keyColumn.label,
        value: this.#keyColumns.flatMap((c) => (record[c.spec.name] == null ? [] : [String(record[c.spec.name])])).join(" + "),
        expected: scope === "" ? this.#keyColumns.map((c) => c.spec.name).join(" + ") : `${scope} id`,
        detail: first.file === this.#fileName ? `in row ${first.row}` : `in ${first.file}, row ${first.row}`,
      }),
    );
    return true;
  }
}

const REJECT = Symbol("reject");
const LEFT_EMPTY = Symbol("left-empty");

function isBlank(fields: string[]): boolean {
  for (const field of fields) if (field.trim() !== "") return false;
  return true;
}
