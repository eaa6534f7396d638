import { ROLES } from "../spec/roster-spec.ts";
import type { ColumnType, Role, Sex } from "../spec/roster-spec.ts";
import { dateForms } from "./date-format.ts";
import { INVALID } from "./invalid.ts";
import type { IssueCode } from "./issue.ts";

export { INVALID };

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

/**
 * `MM/DD/YYYY`, `M/D/YY` or `YYYY-MM-DD` to `YYYY-MM-DD`. PowerSchool writes `0/0/0` and
 * `01/01/1900` for "no date": those are null. A file's date columns are read by `DateColumn`
 * (date-format.ts), which also reads DD/MM/YYYY.
 */
export function parseDate(raw: string): string | null | typeof INVALID {
  return dateForms(raw).mdy;
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

/** What districts put in PowerSchool's Gender field, lower-cased → OneRoster's sex vocabulary. */
const SEX_WORDS: ReadonlyMap<string, Sex> = new Map<string, Sex>([
  ...["m", "male"].map((w) => [w, "male"] as const),
  ...["f", "female"].map((w) => [w, "female"] as const),
  ...["x", "n", "o", "nb", "other", "non-binary", "nonbinary"].map((w) => [w, "other"] as const),
  ...["u", "unknown", "unspecified", "not specified"].map((w) => [w, "unspecified"] as const),
]);

export function parseSex(raw: string): Sex | typeof INVALID {
  return SEX_WORDS.get(raw.toLowerCase()) ?? INVALID;
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
  sex: { parse: parseSex, code: "BAD_VALUE", expected: "a sex (M, F, X or U)" },
};

/** Trims a raw cell; empty means absent. */
export function cleanCell(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const trimmed = raw.trim();
  return trimmed.length === 0 ? null : trimmed;
}
