import { ENTITY_NAMES, columnLabels, entitySpec } from "../spec/roster-spec.ts";
import type { ColumnSpec, EntityName } from "../spec/roster-spec.ts";
import type { RecognisedFile } from "./recognise-file.ts";

/**
 * Reduces a column label to what identifies it: no BOM, surrounding spaces, AutoSend `[NN]`
 * prefix or `Table.` prefix, case, `_`, `-` or inner spaces. `[05]TeacherNumber`,
 * `Teachers.TeacherNumber` and `teacher_number` all become `teachernumber`.
 */
export function normaliseLabel(label: string): string {
  return label
    .replace(/^\uFEFF/, "")
    .trim()
    .replace(/^\[\d+\]\s*/, "")
    .replace(/^[A-Za-z_][A-Za-z0-9_]*\./, "")
    .toLowerCase()
    .replace(/[\s_-]+/g, "");
}

export interface ColumnBinding {
  column: ColumnSpec;
  /** Index of the column in the file's rows. */
  index: number;
  /** The label as written in the file, for messages. */
  label: string;
}

export interface HeaderMatch {
  /** Spec column name → where it is in the file. */
  bindings: Map<string, ColumnBinding>;
  /** Labels the spec does not use, as written. */
  unused: string[];
  /** Labels naming a column already bound: [label, label it repeats]. */
  duplicates: Array<[string, string]>;
  /** Required columns neither present nor implied by the file name. */
  missing: ColumnSpec[];
}

interface EntityLabels {
  byName: Map<string, ColumnSpec>;
  byAlias: Map<string, ColumnSpec[]>;
}

const LABELS: ReadonlyMap<EntityName, EntityLabels> = new Map(ENTITY_NAMES.map((entity) => [entity, buildLabels(entity)]));

function buildLabels(entity: EntityName): EntityLabels {
  const byName = new Map<string, ColumnSpec>();
  const byAlias = new Map<string, ColumnSpec[]>();
  for (const column of entitySpec(entity).columns) {
    byName.set(normaliseLabel(column.name), column);
    for (const alias of columnLabels(column).slice(1)) {
      const key = normaliseLabel(alias);
      byAlias.set(key, [...(byAlias.get(key) ?? []), column]);
    }
  }
  return { byName, byAlias };
}

/**
 * Binds a file's labels to spec columns. Canonical names win; then aliases fill required
 * columns (and may take a label from an optional column: PowerSchool's `School_Number` is the
 * schools file's `school_id` unless the file also has `school_id`); then optional ones.
 */
export function matchHeaders(labels: readonly string[], file: RecognisedFile): HeaderMatch {
  const { byName, byAlias } = LABELS.get(file.entity)!;
  const keys = labels.map(normaliseLabel);
  const owner: Array<ColumnSpec | null> = keys.map(() => null);
  const bindings = new Map<string, ColumnBinding>();
  const duplicates: Array<[string, string]> = [];
  const bind = (column: ColumnSpec, index: number) => {
    const previous = owner[index];
    if (previous) bindings.delete(previous.name);
    owner[index] = column;
    bindings.set(column.name, { column, index, label: labels[index]! });
  };

  keys.forEach((key, index) => {
    const column = byName.get(key);
    if (column === undefined) return;
    const bound = bindings.get(column.name);
    if (bound !== undefined) duplicates.push([labels[index]!, bound.label]);
    else bind(column, index);
  });
  for (const required of [true, false]) {
    keys.forEach((key, index) => {
      const previous = owner[index];
      if (previous && (!required || previous.required)) return;
      const column = byAlias.get(key)?.find((c) => c.required === required && !bindings.has(c.name));
      if (column !== undefined) bind(column, index);
    });
  }
  const duplicateLabels = new Set(duplicates.map(([label]) => label));
  const unused = labels.filter((label, index) => owner[index] === null && !duplicateLabels.has(label));
  const missing = entitySpec(file.entity).columns.filter((c) => c.required && !bindings.has(c.name) && !(c.name in file.implied));
  return { bindings, unused, duplicates, missing };
}

const DATA_LIKE = /^(?:[-+]?\d+(?:\.\d+)?|\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|[^@\s]+@[^@\s]+\.[^@\s]+)$/;

/**
 * Why the first row is not a header, or null when it is one. A label is never a number,
 * a date or an email address, and a header names at least one known column.
 */
export function notAHeaderReason(labels: readonly string[], match: HeaderMatch): string | null {
  const dataLike = labels.find((label) => DATA_LIKE.test(label.trim()));
  if (dataLike !== undefined) return `looks like data (it contains ${JSON.stringify(dataLike.trim())})`;
  if (match.bindings.size === 0) return "matches no known column name";
  return null;
}

/** Labels a file may use for a column, for "add one of …" messages. */
export function acceptedLabels(column: ColumnSpec): string[] {
  return columnLabels(column).slice();
}

/** The label a column has in a file with this header (the column's own name if absent), for issues. */
export function labelsFor(header: readonly string[], file: RecognisedFile): (column: string) => string {
  const match = matchHeaders([...header], file);
  return (column) => match.bindings.get(column)?.label ?? column;
}
