import { ROLES, SCOPES, entitySpec, scopeOfRole } from "../spec/roster-spec.ts";
import type { CanonicalRecord, ColumnSpec, EntityName, Role, Scope } from "../spec/roster-spec.ts";
import { DATE_EXPECTED, DateColumn, describeConflict, describeExample } from "./date-format.ts";
import type { DateColumnMemory, DateColumnOutcome, DateFormatSetting } from "./date-format.ts";
import type { DuplicateKeyTracker } from "./duplicate-keys.ts";
import { VALUE_LEFT_EMPTY, keptValueDetail, makeIssue, showValue } from "./issue.ts";
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
  /** Told of every rejected row, with what can still be read of its key (see RejectedRow). */
  onRejected?: (rejected: RejectedRow) => void;
}

/**
 * A row rejected as a whole (wrong field count, a required value missing or invalid), with the
 * keys it may have: the sync keeps the live record of a key it can still read, so a malformed
 * row never deletes what it stands for. Keys are in the spec's key order (users: scope, id).
 */
export interface RejectedRow {
  row: number;
  /** Why, in a few words: "the row has 7 values but the header has 6 columns". */
  reason: string;
  /** Candidate keys. Empty: the key cannot be read at all. */
  keys: string[][];
  /** True when one of `keys` is surely the row's key (it is read where it belongs, or a row off by one value has one reading either side). */
  certain: boolean;
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
  readonly #onRejected: ((rejected: RejectedRow) => void) | null;
  /** The first problem of the row being validated, for RejectedRow.reason. */
  #reason: string | null = null;
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
    this.#onRejected = options.onRejected ?? null;
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
    this.#reason = null;
    if (!this.#hasRightWidth(fields, row)) {
      this.#rejectMisaligned(fields, row);
      return null;
    }
    if (this.#ruleExcludes(fields)) return null;
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
      this.#rejectAligned(record, row);
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
    this.#reason = `the row has ${fields.length} values but the header has ${width} columns`;
    this.counts.badRows++;
    return false;
  }

  /** A row of the right width: its key is read where it belongs, or not at all if a key value was rejected. */
  #rejectAligned(record: Record<string, unknown>, row: number): void {
    if (this.#onRejected === null) return;
    const scopes = this.#scopesOf(record.role);
    // An optional key column (a district-wide term's school_id) is "" when empty, as in the roster.
    const values = this.#keyColumns.map((c) => (record[c.spec.name] === null && !c.spec.required ? "" : record[c.spec.name]));
    const readable = values.every((v, i) => typeof v === "string" && (v !== "" || !this.#keyColumns[i]!.spec.required));
    const keys = readable ? this.#withScopes(scopes, [values as string[]]) : [];
    this.#onRejected({ row, reason: this.#reason ?? "the row was rejected", keys, certain: readable && scopes.length === 1 });
  }

  /**
   * A row with a value too many or too few: the delimiter was in a value, or a value was lost.
   * Columns before that point read right from the start, columns after it from the end; which
   * side the key is on is unknown, so both readings are candidates. Off by one value, one of
   * them is surely the key.
   */
  #rejectMisaligned(fields: string[], row: number): void {
    if (this.#onRejected === null) return;
    const shift = fields.length - this.#width;
    let tuples: string[][] = [[]];
    for (const column of this.#keyColumns) {
      const readings = new Set<string>();
      for (const index of [column.index, column.index + shift]) {
        if (column.index !== -1 && (index < 0 || index >= fields.length)) continue;
        const raw = (column.index === -1 ? null : cleanCell(fields[index])) ?? column.implied;
        const value = raw === null ? (column.spec.required ? INVALID : "") : column.type.parse(raw);
        if (typeof value === "string" && (value !== "" || !column.spec.required)) readings.add(value);
      }
      tuples = tuples.flatMap((t) => [...readings].map((r) => [...t, r]));
    }
    const roleColumn = this.#columns.find((c) => c.spec.name === "role");
    // The role of a students, teachers or staff file is implied by its name, wherever its column is.
    const roles =
      roleColumn === undefined
        ? []
        : roleColumn.index === -1
          ? [roleColumn.implied]
          : [roleColumn.index, roleColumn.index + shift].map((i) => (i < 0 || i >= fields.length ? null : (cleanCell(fields[i]) ?? roleColumn.implied)));
    const scopes = this.#entity === "users" ? [...new Set(roles.flatMap((r) => this.#scopesOf(r === null ? null : roleColumn!.type.parse(r))))] : [];
    const keys = this.#withScopes(this.#entity === "users" && scopes.length === 0 ? [...SCOPES] : scopes, tuples);
    this.#onRejected({ row, reason: this.#reason ?? "the row was rejected", keys, certain: Math.abs(shift) === 1 && keys.length > 0 });
  }

  /** Users' keys lead with the scope, known from the role when it was read. */
  #scopesOf(role: unknown): Scope[] {
    if (this.#entity !== "users") return [];
    return typeof role === "string" && (ROLES as readonly string[]).includes(role) ? [scopeOfRole(role as Role)] : [...SCOPES];
  }

  #withScopes(scopes: readonly Scope[], tuples: string[][]): string[][] {
    if (this.#entity !== "users") return tuples;
    return scopes.flatMap((scope) => tuples.map((t) => [scope, ...t]));
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
    if (detail === undefined) this.#reason ??= code === "MISSING_VALUE" ? `${column.label} is empty` : `${column.label} ${showValue(value)} is not ${column.type.expected}`;
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
