import { INVALID } from "./invalid.ts";

/**
 * How a district writes dates: `mdy` (MM/DD/YYYY, PowerSchool's US default), `dmy`
 * (DD/MM/YYYY), or `auto`: each date column of a file is read one way, found from its values.
 */
export const DATE_FORMAT_SETTINGS = ["auto", "mdy", "dmy"] as const;
export type DateFormatSetting = (typeof DATE_FORMAT_SETTINGS)[number];

/** How a file's date column was read: month first, day first, or not at all (both kinds of value). */
export type DateReading = "mdy" | "dmy" | "ambiguous";

/**
 * Values that decide a column's reading: a slash date whose first part is over 12 (day first),
 * one whose second part is over 12 (month first), and an ISO date whose day is 12 or less (it
 * would be mistaken for a value read month first if the column turns out day first, see swap).
 */
export const DATE_EVIDENCE = ["dayFirst", "monthFirst", "isoLowDay"] as const;
export type DateEvidence = (typeof DATE_EVIDENCE)[number];

export interface DateExample {
  row: number;
  value: string;
}

/** How many lines held a kind of value: at least `[0]`, at most `[1]` (the same after a full read). */
export type LineBounds = [number, number];

/**
 * What a file's date column held, kept with its line digest: the next night reads changed lines
 * the same way, and knows whether the lines it skips still decide the same reading.
 */
export interface DateColumnMemory {
  reading: DateReading;
  /** Data lines of the file. */
  rows: number;
  lines: Record<DateEvidence, LineBounds>;
  examples: Partial<Record<DateEvidence, DateExample>>;
}

/** A date column at the end of a file. */
export interface DateColumnOutcome extends DateColumnMemory {
  /** The spec's column name. */
  column: string;
  required: boolean;
  /**
   * Values were read month first while the reading was unknown and the column is day first:
   * the file's staged values whose day is 12 or less (exactly those) get month and day swapped.
   */
  swap: boolean;
  /**
   * False when a read against last night's digest cannot be sure it reads the column as a full
   * read would (the lines skipped may no longer decide last night's reading): read again in full.
   */
  settled: boolean;
}

type Parsed = string | null | typeof INVALID;

/** A raw value's readings: `mdy` and `dmy` differ only for a slash date. */
interface DateForms {
  mdy: Parsed;
  dmy: Parsed;
  /** Slash dates: whether the first or second part is over 12. */
  firstOver12: boolean;
  secondOver12: boolean;
  /** An ISO date whose day is 12 or less. */
  isoLowDay: boolean;
}

const SLASH_DATE = /^(\d{1,2})\/(\d{1,2})\/(\d{1,4})$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** POSIX strptime's pivot: 00-68 are 20xx, 69-99 are 19xx. */
const TWO_DIGIT_YEAR_PIVOT = 69;
const NOT_A_DATE: DateForms = { mdy: INVALID, dmy: INVALID, firstOver12: false, secondOver12: false, isoLowDay: false };
const NO_DATE: DateForms = { mdy: null, dmy: null, firstOver12: false, secondOver12: false, isoLowDay: false };

/**
 * `MM/DD/YYYY`, `DD/MM/YYYY`, `M/D/YY` or `YYYY-MM-DD` to `YYYY-MM-DD`, both ways a slash date
 * can be read. PowerSchool writes `0/0/0` and `01/01/1900` for "no date": those are null.
 */
export function dateForms(raw: string): DateForms {
  const slash = SLASH_DATE.exec(raw);
  if (slash !== null) {
    const [, a, b, y] = slash as unknown as [string, string, string, string];
    const first = Number(a);
    const second = Number(b);
    if (first === 0 && second === 0 && Number(y) === 0) return NO_DATE;
    if (y.length !== 2 && y.length !== 4) return NOT_A_DATE;
    const year = y.length === 4 ? Number(y) : Number(y) + (Number(y) < TWO_DIGIT_YEAR_PIVOT ? 2000 : 1900);
    return { mdy: isoDate(year, first, second), dmy: isoDate(year, second, first), firstOver12: first > 12, secondOver12: second > 12, isoLowDay: false };
  }
  const iso = ISO_DATE.exec(raw);
  if (iso === null) return NOT_A_DATE;
  const value = isoDate(Number(iso[1]), Number(iso[2]), Number(iso[3]));
  return { mdy: value, dmy: value, firstOver12: false, secondOver12: false, isoLowDay: typeof value === "string" && Number(iso[3]) <= 12 };
}

function isoDate(year: number, month: number, day: number): Parsed {
  if (year === 1900 && month === 1 && day === 1) return null;
  if (year < 1900 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return INVALID;
  return `${year}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return leap ? 29 : DAYS_IN_MONTH[month - 1]!;
}

/** What a BAD_DATE message asks for, per setting. */
export const DATE_EXPECTED: Record<DateFormatSetting, string> = {
  auto: "MM/DD/YYYY (for example 08/24/2026), or DD/MM/YYYY throughout the column, or YYYY-MM-DD",
  mdy: "MM/DD/YYYY (for example 08/24/2026), the date format set for this district, or YYYY-MM-DD",
  dmy: "DD/MM/YYYY (for example 24/08/2026), the date format set for this district, or YYYY-MM-DD",
};

/** Roster dates repeat (every CC row of a term has the same DateEnrolled): a value's forms are remembered. */
const CACHE_ENTRIES = 4096;

/**
 * One date column of a file being read, read one way for the whole file. With `auto`, a value
 * that can be read both ways is read month first (PowerSchool's US default) until the file ends;
 * the column's values decide its reading then (see `finish`), and the staged values are fixed
 * with one UPDATE (`swap`). Nothing is held per row: counts and three examples.
 */
export class DateColumn {
  readonly #cache = new Map<string, DateForms>();
  readonly #seen: Record<DateEvidence, number> = { dayFirst: 0, monthFirst: 0, isoLowDay: 0 };
  readonly #examples: Partial<Record<DateEvidence, DateExample>> = {};

  /**
   * @param previous last night's memory of the column when lines are skipped against its digest
   *   (their values are last night's): tonight's reading starts from it.
   */
  constructor(
    readonly column: string,
    readonly required: boolean,
    private readonly setting: DateFormatSetting,
    private readonly previous: DateColumnMemory | null = null,
  ) {}

  /** The value as `YYYY-MM-DD`, null for no date, INVALID when it is not a date in this column's format. */
  read(raw: string, row: number): Parsed {
    let forms = this.#cache.get(raw);
    if (forms === undefined) {
      if (this.#cache.size >= CACHE_ENTRIES) this.#cache.clear();
      forms = dateForms(raw);
      this.#cache.set(raw, forms);
    }
    if (this.setting === "mdy") return forms.mdy;
    if (this.setting === "dmy") return forms.dmy;
    if (forms.firstOver12) {
      if (typeof forms.dmy === "string") this.#see("dayFirst", row, raw);
      return forms.dmy;
    }
    if (forms.secondOver12) {
      if (typeof forms.mdy === "string") this.#see("monthFirst", row, raw);
      return forms.mdy;
    }
    if (forms.isoLowDay) this.#see("isoLowDay", row, raw);
    return forms.mdy;
  }

  #see(kind: DateEvidence, row: number, raw: string): void {
    if (this.#seen[kind]++ === 0) this.#examples[kind] = { row, value: detach(raw) };
  }

  /**
   * The column's reading, once every line is read: `rows` data lines, of which `known` were
   * skipped as last night's (their values are not seen: last night's bounds stand for them).
   */
  finish(rows: number, known: number): DateColumnOutcome {
    const previous = this.previous;
    const lines = {} as Record<DateEvidence, LineBounds>;
    const examples: Partial<Record<DateEvidence, DateExample>> = {};
    for (const kind of DATE_EVIDENCE) {
      const seen = this.#seen[kind];
      const example = this.#examples[kind] ?? previous?.examples[kind];
      if (example !== undefined) examples[kind] = example;
      if (previous === null) {
        lines[kind] = [seen, seen];
        continue;
      }
      // The skipped lines are `known` distinct lines of last night's `rows`: at least
      // (last night's count + known - rows) of them held this kind of value, at most min(count, known).
      const [low, high] = previous.lines[kind];
      lines[kind] = [seen + Math.max(0, low + known - previous.rows), seen + Math.min(high, known)];
    }
    if (this.setting !== "auto") {
      return { column: this.column, required: this.required, reading: this.setting, rows, lines, examples, swap: false, settled: true };
    }
    // Unknown kinds (seen on some of last night's lines, maybe not on those skipped): settled if the reading is the same either way.
    const readings = new Set<DateReading>();
    const maybe = (kind: DateEvidence) => (lines[kind][0] > 0 ? [true] : lines[kind][1] === 0 ? [false] : [false, true]);
    for (const dayFirst of maybe("dayFirst")) {
      for (const monthFirst of maybe("monthFirst")) for (const isoLowDay of maybe("isoLowDay")) readings.add(readingOf(dayFirst, monthFirst, isoLowDay));
    }
    const reading = readingOf(lines.dayFirst[0] > 0, lines.monthFirst[0] > 0, lines.isoLowDay[0] > 0);
    const settled = readings.size === 1 && (previous === null || previous.reading === reading);
    return { column: this.column, required: this.required, reading, rows, lines, examples, swap: reading === "dmy", settled };
  }
}

/**
 * Day-first values make the column day first, unless it also holds month-first values, or ISO
 * dates that the swap of values read month first could not tell from them.
 */
function readingOf(dayFirst: boolean, monthFirst: boolean, isoLowDay: boolean): DateReading {
  if (!dayFirst) return "mdy";
  return monthFirst || isoLowDay ? "ambiguous" : "dmy";
}

/** The memory a digest keeps of an outcome. */
export function dateColumnMemory(outcome: DateColumnOutcome): DateColumnMemory {
  return { reading: outcome.reading, rows: outcome.rows, lines: outcome.lines, examples: outcome.examples };
}

/** "25/03/2010 in row 7". */
export function describeExample(example: DateExample | undefined): string {
  return example === undefined ? "" : `${example.value} in row ${example.row}`;
}

/** The two examples of an ambiguous column: one of each kind. */
export function describeConflict(examples: DateColumnMemory["examples"]): string {
  const parts = [`${describeExample(examples.dayFirst)} can only be day first (DD/MM/YYYY)`];
  if (examples.monthFirst !== undefined) parts.push(`${describeExample(examples.monthFirst)} only month first (MM/DD/YYYY)`);
  else if (examples.isoLowDay !== undefined) parts.push(`${describeExample(examples.isoLowDay)} is written year first (YYYY-MM-DD) in the same column`);
  return parts.join(", ");
}

/** V8 keeps substrings as views of their source: a kept example would pin a whole chunk of text. */
function detach(value: string): string {
  return Buffer.from(value, "utf8").toString("utf8");
}

/** A district's date format from its `settings` JSON (`dateFormat`); `auto` when unset or unknown. */
export function districtDateFormat(settingsJson: string): DateFormatSetting {
  try {
    const value = (JSON.parse(settingsJson) as { dateFormat?: unknown } | null)?.dateFormat;
    return (DATE_FORMAT_SETTINGS as readonly unknown[]).includes(value) ? (value as DateFormatSetting) : "auto";
  } catch {
    return "auto";
  }
}
