import { DELIMITERS } from "../spec/roster-spec.ts";

/**
 * A streaming RFC 4180 reader for delimited text.
 *
 * Why not udsv: it assumes well-formed input. It skips blank lines without telling (row
 * numbers drift), merges a short row with the next line and glues a long row's extra values
 * onto its last column without notice, and needs one row delimiter per file. Rosterdock must
 * point a district admin at the exact row. Measured on 2M CC rows, this reader is as fast
 * (~240 MB/s for both, quoted or not).
 *
 * Rows are numbered as a spreadsheet shows them: the header is row 1, blank lines count,
 * and a quoted value spanning lines stays in its row.
 */

export type Delimiter = (typeof DELIMITERS)[number];

export type RowHandler = (fields: string[], row: number) => void;

/** Sees a non-blank line before it is split; true consumes it (its row is counted, not emitted). */
export type LineFilter = (text: string, start: number, end: number, row: number) => boolean;

export interface ParserOptions {
  /** null: sniff from the first non-blank line. */
  delimiter?: Delimiter | null;
  /** A record longer than this (an unclosed quote swallowing the file) fails instead of filling memory. */
  maxRecordChars?: number;
}

export const DEFAULT_MAX_RECORD_CHARS = 1024 * 1024;

/** The file cannot be read past `row`: a quote never closes, or a line is longer than any roster row. */
export class ParseError extends Error {
  constructor(
    readonly row: number,
    readonly detail: string,
    readonly code: "UNCLOSED_QUOTE" | "LINE_TOO_LONG" = "UNCLOSED_QUOTE",
  ) {
    super(`${code === "UNCLOSED_QUOTE" ? "unclosed quote" : "line too long"} in row ${row}: ${detail}`);
  }
}

const QUOTE = '"';

function countQuotes(text: string): number {
  let count = 0;
  for (let at = text.indexOf(QUOTE); at !== -1; at = text.indexOf(QUOTE, at + 1)) count++;
  return count;
}
const LF = 10;
const CR = 13;

export class DelimitedTextParser {
  #delimiter: Delimiter | null;
  readonly #maxRecordChars: number;
  #pending = "";
  #row = 0;
  /** The previous chunk ended in CR: a LF starting the next one belongs to it. */
  #skipLeadingLf = false;
  /** May be set between rows (e.g. by the row handler once the header is read). */
  lineFilter: LineFilter | null = null;

  constructor(options: ParserOptions = {}) {
    this.#delimiter = options.delimiter ?? null;
    this.#maxRecordChars = options.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS;
  }

  get delimiter(): Delimiter | null {
    return this.#delimiter;
  }

  /** Rows numbered so far, blank lines included. */
  get rowCount(): number {
    return this.#row;
  }

  push(text: string, onRow: RowHandler): void {
    this.#consume(this.#pending.length === 0 ? text : this.#pending + text, false, onRow);
  }

  end(onRow: RowHandler): void {
    this.#consume(this.#pending, true, onRow);
    this.#pending = "";
  }

  #consume(input: string, final: boolean, onRow: RowHandler): void {
    let text = input;
    if (this.#skipLeadingLf && text.length > 0) {
      if (text.charCodeAt(0) === LF) text = text.slice(1);
      this.#skipLeadingLf = false;
    }
    if (this.#delimiter === null) {
      const delimiter = sniffDelimiter(text, final);
      if (delimiter === null) {
        this.#pending = text;
        this.#checkPending();
        return;
      }
      this.#delimiter = delimiter;
    }
    const consumed = this.#records(text, final, onRow);
    this.#pending = consumed < text.length ? text.slice(consumed) : "";
    this.#checkPending();
  }

  #checkPending(): void {
    if (this.#pending.length <= this.#maxRecordChars) return;
    const limit = this.#maxRecordChars.toLocaleString("en-US");
    // Every closed quoted value holds an even number of quotes (doubled inside): an odd count is a quote left open.
    if (countQuotes(this.#pending) % 2 === 1) throw new ParseError(this.#row + 1, `the row is still open after ${limit} characters`);
    throw new ParseError(this.#row + 1, `no line break in ${limit} characters`, "LINE_TOO_LONG");
  }

  /** Emits every complete record of `text`; returns how many characters were consumed. */
  #records(text: string, final: boolean, onRow: RowHandler): number {
    const delimiter = this.#delimiter!;
    const length = text.length;
    let pos = 0;
    let nextLf = -2;
    let nextCr = -2;
    let nextQuote = -2;
    const split = lineSplitter(text, delimiter);
    while (pos < length) {
      if (nextLf < pos && nextLf !== length) nextLf = indexOrEnd(text, "\n", pos);
      if (nextCr < pos && nextCr !== length) nextCr = indexOrEnd(text, "\r", pos);
      if (nextQuote < pos && nextQuote !== length) nextQuote = indexOrEnd(text, QUOTE, pos);
      const eol = nextLf < nextCr ? nextLf : nextCr;
      if (nextQuote < eol) {
        const record = readQuotedRecord(text, pos, delimiter, final);
        if (record === null) {
          if (final) throw new ParseError(this.#row + 1, "the file ends inside a quoted value");
          return pos;
        }
        const row = ++this.#row;
        if (this.lineFilter === null || !this.lineFilter(text, pos, record.end, row)) onRow(record.fields, row);
        pos = this.#afterEol(text, record.end, final);
        continue;
      }
      if (eol === length && !final) return pos;
      if (eol === pos) this.#row++;
      else {
        const row = ++this.#row;
        if (this.lineFilter === null || !this.lineFilter(text, pos, eol, row)) onRow(split(pos, eol), row);
      }
      pos = this.#afterEol(text, eol, final);
    }
    return pos;
  }

  #afterEol(text: string, eol: number, final: boolean): number {
    if (eol >= text.length) return eol;
    if (text.charCodeAt(eol) === CR) {
      if (eol + 1 < text.length) return text.charCodeAt(eol + 1) === LF ? eol + 2 : eol + 1;
      if (!final) this.#skipLeadingLf = true;
    }
    return eol + 1;
  }
}

/**
 * Splits quote-free lines of `text`; 1.5x faster than slice().split() (no line string).
 * Remembers where delimiters run out, or a one-column file would rescan to the end per line.
 */
function lineSplitter(text: string, delimiter: string): (start: number, end: number) => string[] {
  let noneFrom = text.length;
  return (start, end) => {
    const fields: string[] = [];
    let pos = start;
    for (;;) {
      const next = pos >= noneFrom ? -1 : text.indexOf(delimiter, pos);
      if (next === -1 || next >= end) {
        if (next === -1 && pos < noneFrom) noneFrom = pos;
        fields.push(text.slice(pos, end));
        return fields;
      }
      fields.push(text.slice(pos, next));
      pos = next + 1;
    }
  };
}

function indexOrEnd(text: string, search: string, from: number): number {
  const i = text.indexOf(search, from);
  return i === -1 ? text.length : i;
}

interface QuotedRecord {
  fields: string[];
  /** Index of the record's line break, or text.length at the end of the text. */
  end: number;
}

/**
 * Reads one record containing quotes. Lenient where RFC 4180 is silent: a quote inside an
 * unquoted value is literal (`O"Brien`), text after a closing quote is kept (`"a"b` → `ab`).
 * Returns null when the record may continue in the next chunk.
 */
function readQuotedRecord(text: string, start: number, delimiter: string, final: boolean): QuotedRecord | null {
  const delimiterCode = delimiter.charCodeAt(0);
  const fields: string[] = [];
  const length = text.length;
  let pos = start;
  for (;;) {
    let value = "";
    if (text.charCodeAt(pos) === 34) {
      let from = pos + 1;
      for (;;) {
        const quote = text.indexOf(QUOTE, from);
        if (quote === -1) return null;
        if (quote + 1 >= length && !final) return null;
        if (text.charCodeAt(quote + 1) === 34) {
          value += text.slice(from, quote + 1);
          from = quote + 2;
          continue;
        }
        value += text.slice(from, quote);
        pos = quote + 1;
        break;
      }
    }
    const stop = fieldEnd(text, pos, delimiterCode);
    if (stop === length && !final) return null;
    value += text.slice(pos, stop);
    fields.push(value);
    if (stop < length && text.charCodeAt(stop) === delimiterCode) {
      pos = stop + 1;
      continue;
    }
    return { fields, end: stop };
  }
}

function fieldEnd(text: string, from: number, delimiter: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === delimiter || c === LF || c === CR) return i;
  }
  return text.length;
}

/**
 * Picks the delimiter occurring most often, outside quotes, in the first non-blank line.
 * Returns null when that line is not complete yet.
 */
export function sniffDelimiter(text: string, final: boolean): Delimiter | null {
  const lineStart = text.search(/[^\r\n]/);
  if (lineStart === -1) return final ? "," : null;
  let inQuotes = false;
  const counts = new Map<string, number>();
  for (let i = lineStart; i < text.length; i++) {
    const c = text[i]!;
    if (c === QUOTE) inQuotes = !inQuotes;
    else if (!inQuotes && (c === "\n" || c === "\r")) return pickDelimiter(counts);
    else if (!inQuotes) counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  return final ? pickDelimiter(counts) : null;
}

const SNIFF_ORDER: readonly Delimiter[] = ["\t", ",", "|", ";"];

function pickDelimiter(counts: ReadonlyMap<string, number>): Delimiter {
  let best: Delimiter = ",";
  let bestCount = 0;
  for (const delimiter of SNIFF_ORDER) {
    const count = counts.get(delimiter) ?? 0;
    if (count > bestCount) {
      best = delimiter;
      bestCount = count;
    }
  }
  return best;
}
