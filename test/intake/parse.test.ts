import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DelimitedTextParser, ParseError, sniffDelimiter } from "../../src/intake/parse.ts";

/** Parses `text` fed in pieces of `size` characters, to exercise every chunk boundary. */
function parse(text: string, size = text.length, maxRecordChars?: number): Array<[number, string[]]> {
  const parser = new DelimitedTextParser(maxRecordChars === undefined ? {} : { maxRecordChars });
  const rows: Array<[number, string[]]> = [];
  const onRow = (fields: string[], row: number) => rows.push([row, fields]);
  for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size), onRow);
  parser.end(onRow);
  return rows;
}

function everyChunking(text: string, expected: Array<[number, string[]]>): void {
  for (let size = 1; size <= text.length; size++) assert.deepEqual(parse(text, size), expected, `chunk size ${size}`);
}

describe("DelimitedTextParser", () => {
  it("reads comma, tab, pipe and semicolon files", () => {
    for (const d of [",", "\t", "|", ";"]) {
      everyChunking(`a${d}b${d}c\n1${d}2${d}3\n`, [
        [1, ["a", "b", "c"]],
        [2, ["1", "2", "3"]],
      ]);
    }
  });

  it("reads LF, CRLF and CR line endings, and mixed ones", () => {
    const expected: Array<[number, string[]]> = [
      [1, ["a", "b"]],
      [2, ["1", "2"]],
      [3, ["3", "4"]],
    ];
    for (const eol of ["\n", "\r\n", "\r"]) everyChunking(`a,b${eol}1,2${eol}3,4${eol}`, expected);
    everyChunking("a,b\r\n1,2\r3,4\n", expected);
  });

  it("reads a last line without a line break", () => {
    everyChunking("a,b\r\n1,2", [
      [1, ["a", "b"]],
      [2, ["1", "2"]],
    ]);
  });

  it("handles RFC 4180 quotes: delimiters, doubled quotes and line breaks inside values", () => {
    everyChunking('id,name\r\n1,"Peña, ""Jr"""\r\n2,"two\r\nlines"\r\n3,"",x\r\n', [
      [1, ["id", "name"]],
      [2, ["1", 'Peña, "Jr"']],
      [3, ["2", "two\r\nlines"]],
      [4, ["3", "", "x"]],
    ]);
  });

  it("keeps a quote inside an unquoted value", () => {
    everyChunking('id,name\n1,O"Brien\n2,Mary "Mae"\n', [
      [1, ["id", "name"]],
      [2, ["1", 'O"Brien']],
      [3, ["2", 'Mary "Mae"']],
    ]);
  });

  it("skips blank lines but counts them in row numbers, as a spreadsheet does", () => {
    everyChunking("\r\na,b\r\n\r\n1,2\r\n\r\n\r\n3,4\r\n\r\n", [
      [2, ["a", "b"]],
      [4, ["1", "2"]],
      [7, ["3", "4"]],
    ]);
  });

  it("keeps a quoted multi-line value in one row number", () => {
    const rows = parse('a,b\n1,"x\ny\nz"\n2,w\n');
    assert.deepEqual(rows.map(([row]) => row), [1, 2, 3]);
  });

  it("reports an unclosed quote with the row it opens in", () => {
    assert.throws(
      () => parse('a,b\n1,2\n3,"open\n4,5\n'),
      (error: unknown) => error instanceof ParseError && error.row === 3,
    );
  });

  it("bounds memory: a quote left open fails once the row exceeds the limit", () => {
    const text = `a,b\n1,"${"x".repeat(5000)}`;
    assert.throws(
      () => parse(text, 100, 1000),
      (error: unknown) => error instanceof ParseError && error.row === 2 && error.code === "UNCLOSED_QUOTE" && /1,000 characters/.test(error.detail),
    );
  });

  it("calls a long line without an open quote too long, not a quote problem", () => {
    for (const text of [`a,b\n1,${"x".repeat(5000)}`, `a,b\n1,"closed ""twice""",${"x".repeat(5000)}`]) {
      assert.throws(
        () => parse(text, 100, 1000),
        (error: unknown) => error instanceof ParseError && error.row === 2 && error.code === "LINE_TOO_LONG" && /no line break in 1,000 characters/.test(error.detail),
      );
    }
  });

  it("reads a one-column file", () => {
    everyChunking("id\n1\n2\n", [
      [1, ["id"]],
      [2, ["1"]],
      [3, ["2"]],
    ]);
  });
});

describe("a line filter (line digests)", () => {
  it("sees each non-blank line's exact text with its row; a consumed line is counted, not emitted", () => {
    const text = 'h1,h2\r\na,1\r\n\r\n"b\nb",2\r\nc,3\r\nd,4';
    for (let size = 1; size <= text.length; size++) {
      const parser = new DelimitedTextParser();
      const seen: Array<[number, string]> = [];
      const rows: Array<[number, string[]]> = [];
      const onRow = (fields: string[], row: number) => {
        rows.push([row, fields]);
        if (row === 1)
          parser.lineFilter = (t, start, end, line) => {
            seen.push([line, t.slice(start, end)]);
            return line === 2 || line === 5;
          };
      };
      for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size), onRow);
      parser.end(onRow);
      assert.deepEqual(seen, [[2, "a,1"], [4, '"b\nb",2'], [5, "c,3"], [6, "d,4"]], `chunk size ${size}`);
      assert.deepEqual(rows, [[1, ["h1", "h2"]], [4, ["b\nb", "2"]], [6, ["d", "4"]]], `chunk size ${size}`);
      assert.equal(parser.rowCount, 6);
    }
  });
});

describe("sniffDelimiter", () => {
  it("picks the delimiter occurring most often in the header, ignoring quoted ones", () => {
    assert.equal(sniffDelimiter("a\tb\tc,d\n", true), "\t");
    assert.equal(sniffDelimiter('"a,b";c;d\n', true), ";");
    assert.equal(sniffDelimiter("a|b|c\n", true), "|");
    assert.equal(sniffDelimiter("\n\nid\n", true), ",");
    assert.equal(sniffDelimiter("a,b", false), null);
  });
});
