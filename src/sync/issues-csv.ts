import type { SyncIssueView } from "./sync-service.ts";

const COLUMNS = ["severity", "code", "file", "row", "column", "value", "message"] as const;

/**
 * Issues as a CSV a district admin opens in Excel: UTF-8 with a BOM (else Excel guesses the
 * encoding and mangles José), CRLF, RFC 4180 quoting. A text cell a spreadsheet could take for a
 * formula (starting with =, +, -, @, tab or CR: OWASP's list, `-1+1+cmd|…` included) gets a
 * leading apostrophe; numbers we wrote ourselves (rows) stay numbers.
 */
export function issuesCsv(issues: readonly SyncIssueView[]): string {
  const lines = [COLUMNS.join(",")];
  for (const issue of issues) lines.push(COLUMNS.map((c) => csvCell(issue[c])).join(","));
  return `\uFEFF${lines.join("\r\n")}\r\n`;
}

export function csvCell(value: string | number | null): string {
  if (value === null) return "";
  let text = String(value);
  if (typeof value === "string" && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replaceAll('"', '""')}"` : text;
}
