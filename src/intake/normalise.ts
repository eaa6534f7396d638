import { ROLES } from "../spec/roster-spec.ts";
import type { ColumnType, Role } from "../spec/roster-spec.ts";
import type { IssueCode } from "./issue.ts";

/** Returned by a value parser for a value that does not have the column's type. */
export const INVALID: unique symbol = Symbol("invalid");

export type CanonicalValue = string | number;
export type ValueParser = (raw: string) => CanonicalValue | null | typeof INVALID;

export interface TypeRules {
  parse: ValueParser;
  /** The issue for a value that fails `parse`. */
  code: Extract<IssueCode, "BAD_DATE" | "BAD_ROLE" | "BAD_VALUE">;
  /** "is not …" in messages. */
  expected: string;
}

const MAX_TEXT = 255;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

function text(raw: string): string | typeof INVALID {
  return raw.length > MAX_TEXT || CONTROL.test(raw) ? INVALID : raw;
}

const SLASH_DATE = /^(\d{1,2})\/(\d{1,2})\/(\d{1,4})$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** POSIX strptime's pivot: 00-68 are 20xx, 69-99 are 19xx. */
const TWO_DIGIT_YEAR_PIVOT = 69;

/**
 * `MM/DD/YYYY`, `M/D/YY` or `YYYY-MM-DD` to `YYYY-MM-DD`. PowerSchool writes `0/0/0` and
 * `01/01/1900` for "no date": those are null.
 */
export function parseDate(raw: string): string | null | typeof INVALID {
  const slash = SLASH_DATE.exec(raw);
  if (slash !== null) {
    const [, m, d, y] = slash as unknown as [string, string, string, string];
    if (Number(m) === 0 && Number(d) === 0 && Number(y) === 0) return null;
    if (y.length !== 2 && y.length !== 4) return INVALID;
    const year = y.length === 4 ? Number(y) : Number(y) + (Number(y) < TWO_DIGIT_YEAR_PIVOT ? 2000 : 1900);
    return isoDate(year, Number(m), Number(d));
  }
  const iso = ISO_DATE.exec(raw);
  if (iso !== null) return isoDate(Number(iso[1]), Number(iso[2]), Number(iso[3]));
  return INVALID;
}

function isoDate(year: number, month: number, day: number): string | null | typeof INVALID {
  if (year === 1900 && month === 1 && day === 1) return null;
  if (year < 1900 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return INVALID;
  return `${year}-${String(month).padStart(2, "0")}-${String(day).padStart(2, "0")}`;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return leap ? 29 : DAYS_IN_MONTH[month - 1]!;
}

/**
 * Remembers a parser's recent answers. Roster dates repeat (every CC row of a term has the
 * same DateEnrolled), so this turns millions of regex matches into map lookups.
 */
function memoised(parse: ValueParser, maxEntries = 4096): ValueParser {
  const cache = new Map<string, ReturnType<ValueParser>>();
  return (raw) => {
    let value = cache.get(raw);
    if (value === undefined) {
      if (cache.size >= maxEntries) cache.clear();
      value = parse(raw);
      cache.set(raw, value);
    }
    return value;
  };
}

const ROLE_SET: ReadonlySet<string> = new Set(ROLES);

export function parseRole(raw: string): Role | typeof INVALID {
  const role = raw.toLowerCase();
  return ROLE_SET.has(role) ? (role as Role) : INVALID;
}

const INTEGER = /^[-+]?\d{1,15}$/;
const GRADE = /^(?:[-+]?\d{1,2}|[A-Za-z0-9]{1,8})$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export const TYPE_RULES: Readonly<Record<ColumnType, TypeRules>> = {
  id: { parse: text, code: "BAD_VALUE", expected: "an id (at most 255 characters, no control characters)" },
  string: { parse: text, code: "BAD_VALUE", expected: "text of at most 255 characters without control characters" },
  integer: { parse: (raw) => (INTEGER.test(raw) ? Number(raw) : INVALID), code: "BAD_VALUE", expected: "a whole number" },
  date: { parse: memoised(parseDate), code: "BAD_DATE", expected: "a date" },
  role: { parse: parseRole, code: "BAD_ROLE", expected: "a role" },
  grade: { parse: (raw) => (GRADE.test(raw) ? raw : INVALID), code: "BAD_VALUE", expected: "a grade level (a number such as 5 or a code such as K)" },
  email: { parse: (raw) => (EMAIL.test(raw) && raw.length <= MAX_TEXT ? raw : INVALID), code: "BAD_VALUE", expected: "an email address" },
};

/** Trims a raw cell; empty means absent. */
export function cleanCell(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const trimmed = raw.trim();
  return trimmed.length === 0 ? null : trimmed;
}
