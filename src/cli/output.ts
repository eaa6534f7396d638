/** How a command answers: JSON alone on stdout for scripts, or readable text. */
export interface OutputOptions {
  json?: boolean;
}

/**
 * Text output never passes a control character through: file names, header labels, values and
 * client identification strings come from districts and clients, and an ESC, CR or bidi override
 * in one could forge lines or colours in the operator's terminal. Line breaks the text itself
 * makes are kept; those inside a value must be escaped where the value is placed (`plain`).
 */
export function emit(options: OutputOptions, value: unknown, text: () => string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value, null, 2)}\n` : `${escapeControls(text(), false)}\n`);
}

// C0 controls (tab and line feed handled by `lineBreaks`), DEL, C1 controls, and the Unicode
// bidirectional overrides and isolates that reorder what a terminal shows.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS_AND_BREAKS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

function escapeControls(text: string, lineBreaks: boolean): string {
  return text.replace(lineBreaks ? CONTROLS_AND_BREAKS : CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** A value someone else supplied, shown on one line: every control character escaped, line breaks too. */
export function plain(value: string): string {
  return escapeControls(value, true);
}

/** Columns aligned; every cell is shown as `plain` text. */
export function table(rawRows: string[][]): string {
  if (rawRows.length === 0) return "";
  const rows = rawRows.map((r) => r.map(plain));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n");
}
