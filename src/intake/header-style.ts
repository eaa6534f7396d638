import { entitySpec, type EntityName } from "../spec/roster-spec.ts";

/**
 * How a file's header names its columns, as districts' exports do:
 * - `autosend`: AutoSend's `[NN]Field` labels for fields of related tables (`[05]TeacherNumber`);
 * - `table-field`: Data Export Manager's `Table.Field` labels (`Students.First_Name`);
 * - `rosterdock`: Rosterdock's own column names (`first_name`), as in docs/file-format.md;
 * - `powerschool`: PowerSchool's field names (`First_Name`, `SchoolID`) or other accepted labels;
 * - `none`: no header was read (the file failed before it, or was empty).
 */
export type HeaderStyle = "autosend" | "table-field" | "rosterdock" | "powerschool" | "none";

export function headerStyle(header: readonly string[], entity: EntityName): HeaderStyle {
  const labels = header.map((l) => l.replace(/^\uFEFF/, "").trim()).filter(Boolean);
  if (labels.length === 0) return "none";
  if (labels.some((l) => /^\[\d+\]/.test(l))) return "autosend";
  if (labels.some((l) => /^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_]/.test(l))) return "table-field";
  const names = new Set(entitySpec(entity).columns.map((c) => c.name));
  return labels.every((l) => names.has(l)) ? "rosterdock" : "powerschool";
}
