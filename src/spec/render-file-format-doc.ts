import { ISSUE_CODES, formatBytes, makeIssue } from "../intake/issue.ts";
import type { IssueCode } from "../intake/issue.ts";
import { DEFAULT_BAD_ROW_LIMIT } from "../intake/read-roster-file.ts";
import { DEFAULT_UNPACK_LIMITS } from "../intake/unpack.ts";
import { COLUMN_TYPES, DELIMITERS, ENTITY_NAMES, FILE_EXTENSIONS, columnLabels, entitySpec, powerSchoolFiles } from "./roster-spec.ts";
import type { ColumnType, EntityName } from "./roster-spec.ts";

/** docs/file-format.md, generated from the spec and the issue catalogue (`npm run docs`). */
export function renderFileFormatDoc(): string {
  return [header(), filesSection(), powerSchoolSection(), readingSection(), ...ENTITY_NAMES.map(entitySection), typesSection(), issuesSection()].join("\n\n") + "\n";
}

function header(): string {
  return `# Roster file format

<!-- Generated from src/spec/roster-spec.ts and src/intake/issue.ts by \`npm run docs\`. Do not edit by hand. -->

Rosterdock reads what PowerSchool's Data Export Manager and AutoSend send, without any mapping, as well as its own canonical format. A delivery is one night's files (or one zip of them). This page lists every file, column, rule and issue code.`;
}

function code(text: string): string {
  return `\`${text.replaceAll("|", "\\|")}\``;
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function filesSection(): string {
  const rows = ENTITY_NAMES.map((entity) => {
    const spec = entitySpec(entity);
    const names = spec.fileStems
      .map((stem) => {
        const implied = Object.entries(stem.implied ?? {}).map(([k, v]) => `${k} ${v}`);
        return code(stem.stem) + (implied.length > 0 ? ` (${implied.join(", ")} implied)` : "");
      })
      .join(", ");
    return `| ${entity} | ${names} | ${spec.optionalFile ? "optional" : "expected"} | ${spec.key.map(code).join(" + ")} |`;
  });
  return `## Files

| table | file name stems | file | unique key |
|---|---|---|---|
${rows.join("\n")}

- A file is recognised by its name's stem, in any case, with extension ${FILE_EXTENSIONS.map(code).join(", ")}; anything after \`_\` or \`-\` is ignored: \`students_20261128.csv\`, \`CC-export.txt\`. Other files are ignored with a warning.
- Two files with the same stem in one delivery fail it (which one is right cannot be told).
- A file missing from a delivery changes nothing: that table stays as it is. An optional table may never be sent.`;
}

function powerSchoolSection(): string {
  const files = powerSchoolFiles().map((file) => {
    const ps = file.export;
    const autoSend = ps.autoSendData === null ? "none: send it with Data Export Manager" : `"${ps.autoSendData}", ${code(ps.fileNames.autoSend ?? "")}`;
    const rows = ps.fields.map((field) =>
      "none" in field
        ? `| ${code(field.column)} | — | — | ${cell(field.none)} |`
        : `| ${code(field.column)} | ${code(field.dem)} | ${field.autoSend === null ? "—" : code(field.autoSend)} | ${field.confidence === "sure" ? "" : "not yet confirmed in districts' exports: leave it out if PowerSchool does not list it"} |`,
    );
    return `### ${code(file.stem)} (${file.entity})

PowerSchool table ${ps.table} (${ps.tableNumber}). Data Export Manager: ${code(ps.fileNames.dem)}. AutoSend: ${autoSend}. ${cell(ps.note)}

| column | Data Export Manager field | AutoSend field | note |
|---|---|---|---|
${rows.join("\n")}`;
  });
  return `## PowerSchool exports

Each file a district sends comes from one Data Export Manager template or one AutoSend record (AutoSend has no Schools or Terms data). The fields below, in this order, are what each district's setup guide (\`rosterdock guide SLUG\`) prescribes; Data Export Manager's default labels (\`Students.First_Name\`) and AutoSend's (\`First_Name\`) are read as they are.

${files.join("\n\n")}`;
}

function readingSection(): string {
  const limits = DEFAULT_UNPACK_LIMITS;
  return `## Reading a file

- **Encoding**: UTF-8 with or without byte-order mark, UTF-16 with a byte-order mark. A file that is not valid UTF-8 is read as Windows-1252 and reported (info). A file that is not text (NUL bytes, a spreadsheet, a PDF) fails.
- **Delimiter**: the one of ${DELIMITERS.map((d) => (d === "\t" ? "tab" : `\`${d}\``)).join(", ")} found most often in the header line. **Line endings**: CR LF, LF or CR.
- **Quotes**: RFC 4180: values in double quotes may hold delimiters, line breaks and doubled quotes (\`""\`). A quote inside an unquoted value is kept as is.
- A delimiter at the end of every line (as AutoSend writes) is ignored. Blank lines are skipped.
- **Rows** in messages are numbered as a spreadsheet shows them: the header is row 1, blank lines count.
- **Header row**: required. Labels match a column's name or alias ignoring case, spaces, \`_\`, a byte-order mark, a table prefix (\`Students.First_Name\`) and AutoSend's \`[NN]\` prefix (\`[05]TeacherNumber\`). Unused columns are reported once (info). A missing required column fails the file.
- **Values** are trimmed; an empty value is absent. A row missing a required value, or with an invalid required value, is left out (warning). An invalid optional value keeps yesterday's value (the live record's, none for a new record) and the row is kept (warning); an invalid optional id, teacher number, class name or section number is left empty instead, as the record would otherwise name or be named after something of yesterday's.
- **Bad rows**: when more than ${DEFAULT_BAD_ROW_LIMIT.maxShare * 100}% of a file's rows (and more than ${DEFAULT_BAD_ROW_LIMIT.minRows}) are bad in themselves (wrong number of values, missing or invalid values, duplicate keys), the file fails and nothing of the delivery is applied. Rows that only point at something absent are dropped with a warning and do not count.
- **Zips**: entries are read like files (folders inside are fine). A zip is rejected whole if an entry's name is absolute, contains \`..\` or a drive letter, or is a link; if it has more than ${limits.maxEntries} entries; if an entry exceeds ${formatBytes(limits.maxEntryBytes)} or all entries ${formatBytes(limits.maxTotalBytes)} uncompressed; or if an entry over ${formatBytes(limits.ratioCheckMinBytes)} expands more than ${limits.maxCompressionRatio} times. Zips inside zips are ignored.`;
}

function entitySection(entity: EntityName): string {
  const spec = entitySpec(entity);
  const columns = spec.columns.map((column) => {
    const labels = columnLabels(column).slice(1).map(code).join(", ");
    return `| ${code(column.name)} | ${column.type} | ${column.required ? "yes" : "no"} | ${labels || "—"} | ${cell(column.description)} |`;
  });
  const references = spec.references.map((ref) => {
    const scope = ref.targetScope ? ` (${ref.targetScope} scope)` : "";
    const note = ref.note ? `; ${ref.note}` : "";
    return `- ${ref.columns.map(code).join(" + ")} → ${ref.entity}.${ref.targetColumns.map(code).join(" + ")}${scope}${note}.`;
  });
  const rules = spec.rules.map((rule) => `- ${rule.description}`);
  return [
    `## ${entity}`,
    spec.description,
    `| column | type | required | also accepted | description |\n|---|---|---|---|---|\n${columns.join("\n")}`,
    references.length > 0 ? `References:\n\n${references.join("\n")}` : "",
    rules.length > 0 ? `Rules:\n\n${rules.join("\n")}` : "",
  ]
    .filter((part) => part !== "")
    .join("\n\n");
}

function typesSection(): string {
  const rows = (Object.entries(COLUMN_TYPES) as Array<[ColumnType, string]>).map(([type, text]) => `| ${type} | ${cell(text)} |`);
  return `## Column types\n\n| type | accepted values |\n|---|---|\n${rows.join("\n")}`;
}

function issuesSection(): string {
  const rows = (Object.keys(ISSUE_CODES) as IssueCode[]).map((issueCode) => {
    const spec = ISSUE_CODES[issueCode];
    const example = makeIssue(issueCode, spec.example).message;
    return `| ${code(issueCode)} | ${spec.severity} | ${spec.scope} | ${cell(spec.summary)} | ${cell(example)} |`;
  });
  return `## Issues

Every problem is reported as an issue: file, row, column, value, a stable code, a severity and a message saying what to fix. An **error** fails the delivery (nothing is applied); a **warning** leaves a row or value out; an **info** needs no action. "file" issues concern a whole file, "row" issues one row, "summary" issues are reported once per file.

| code | severity | scope | meaning | example message |
|---|---|---|---|---|
${rows.join("\n")}`;
}
