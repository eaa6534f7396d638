import { ENTITY_NAMES, FILE_EXTENSIONS, entitySpec } from "../spec/roster-spec.ts";
import type { EntityName } from "../spec/roster-spec.ts";
import { makeIssue } from "./issue.ts";
import type { IssueSink } from "./issue.ts";

export interface RecognisedFile {
  entity: EntityName;
  /** The spec's stem the name matched, e.g. `students` for `Students_20261128.CSV`. */
  stem: string;
  /** Values implied by the stem, e.g. `{ role: "student" }`. */
  implied: Readonly<Record<string, string>>;
}

const STEMS: ReadonlyMap<string, RecognisedFile> = new Map(
  ENTITY_NAMES.flatMap((entity) =>
    entitySpec(entity).fileStems.map((s) => [s.stem, { entity, stem: s.stem, implied: s.implied ?? {} }] as const),
  ),
);

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Recognises a roster file by its name's stem: any case, anything after `_` or `-` ignored. */
export function recogniseFile(fileName: string): RecognisedFile | null {
  const name = baseName(fileName).toLowerCase();
  const extension = FILE_EXTENSIONS.find((ext) => name.endsWith(ext));
  if (extension === undefined) return null;
  const stem = name.slice(0, -extension.length).split(/[_-]/, 1)[0]!.trim();
  return STEMS.get(stem) ?? null;
}

/** Example names for messages, derived from the spec. */
export function exampleFileNames(): string {
  return [...STEMS.keys()].map((stem) => `${stem}.csv`).join(", ");
}

export interface RecognisedSource<S extends { name: string }> {
  source: S;
  file: RecognisedFile;
}

/**
 * Sorts a delivery's files into roster tables. Unrecognised files are reported and ignored;
 * two files with the same stem fail the delivery, since neither can be trusted over the other.
 */
export function recogniseDelivery<S extends { name: string }>(sources: readonly S[], issues: IssueSink): RecognisedSource<S>[] {
  const byStem = new Map<string, RecognisedSource<S>>();
  const recognised: RecognisedSource<S>[] = [];
  for (const source of sources) {
    const file = recogniseFile(source.name);
    if (file === null) {
      issues.add(makeIssue("UNRECOGNISED_FILE", { file: source.name, expected: exampleFileNames() }));
      continue;
    }
    const earlier = byStem.get(file.stem);
    if (earlier !== undefined) {
      issues.add(makeIssue("DUPLICATE_FILE", { file: source.name, value: earlier.source.name, expected: file.stem }));
      continue;
    }
    const entry = { source, file };
    byStem.set(file.stem, entry);
    recognised.push(entry);
  }
  return recognised;
}
