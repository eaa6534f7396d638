import { isUtf8 } from "node:buffer";
import { StringDecoder } from "node:string_decoder";
import iconv from "iconv-lite";
import { makeIssue } from "./issue.ts";
import type { IssueCode, IssueSink } from "./issue.ts";
import type { RosterSource } from "./unpack.ts";

export type TextEncoding = "utf-8" | "utf-16le" | "utf-16be" | "windows-1252";

export interface EncodingDetection {
  encoding: TextEncoding;
  /** Bytes of byte-order mark to skip. */
  bomBytes: number;
}

const SNIFF_BYTES = 1024;

/**
 * Decides a file's encoding in one streaming pass. BOMs decide at once; otherwise every byte
 * is checked to be UTF-8, because a single Windows-1252 `é` deep in the file must not be mangled.
 * When the file is empty, binary or unreadable, reports a file-level error and returns its code.
 */
export async function detectEncoding(source: RosterSource, issues: IssueSink): Promise<EncodingDetection | { failed: IssueCode }> {
  const stream = await source.open();
  const validator = new Utf8Validator();
  let head: Buffer | null = null;
  let bytes = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (head === null) {
        head = chunk.subarray(0, SNIFF_BYTES);
        const decided = sniffHead(head);
        if (decided !== undefined) {
          stream.destroy();
          return report(source, decided, issues);
        }
      }
      validator.push(chunk);
      bytes += chunk.length;
    }
  } catch (error) {
    issues.add(makeIssue("UNREADABLE_FILE", { file: source.name, detail: error instanceof Error ? error.message : String(error) }));
    return { failed: "UNREADABLE_FILE" };
  }
  if (bytes === 0 || head === null || (bytes === 3 && hasUtf8Bom(head))) {
    issues.add(makeIssue("EMPTY_FILE", { file: source.name }));
    return { failed: "EMPTY_FILE" };
  }
  const firstInvalid = validator.end();
  if (firstInvalid === null) return { encoding: "utf-8", bomBytes: hasUtf8Bom(head) ? 3 : 0 };
  issues.add(makeIssue("WINDOWS_1252_DECODED", { file: source.name, count: firstInvalid + 1 }));
  return { encoding: "windows-1252", bomBytes: 0 };
}

type Sniffed = EncodingDetection | { binary: string } | undefined;

function report(source: RosterSource, sniffed: NonNullable<Sniffed>, issues: IssueSink): EncodingDetection | { failed: IssueCode } {
  if ("binary" in sniffed) {
    issues.add(makeIssue("BINARY_FILE", { file: source.name, detail: sniffed.binary }));
    return { failed: "BINARY_FILE" };
  }
  return sniffed;
}

function hasUtf8Bom(head: Buffer): boolean {
  return head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf;
}

const MAGICS: ReadonlyArray<[number[], string]> = [
  [[0x25, 0x50, 0x44, 0x46], "it is a PDF document"],
  [[0x1f, 0x8b], "it is gzip-compressed"],
  [[0xd0, 0xcf, 0x11, 0xe0], "it is an old-style Excel (.xls) or other Office document"],
  [[0x50, 0x4b], "it is a compressed archive"],
];

/** Decides from the first KB alone when it can: a BOM, a binary file, or BOM-less UTF-16. */
function sniffHead(head: Buffer): Sniffed {
  if (hasUtf8Bom(head)) return undefined; // still validated: a BOM does not prove the rest is UTF-8
  if (head[0] === 0xff && head[1] === 0xfe) return { encoding: "utf-16le", bomBytes: 2 };
  if (head[0] === 0xfe && head[1] === 0xff) return { encoding: "utf-16be", bomBytes: 2 };
  const magic = MAGICS.find(([bytes]) => bytes.every((byte, i) => head[i] === byte));
  if (magic !== undefined) return { binary: magic[1] };
  const utf16 = bomlessUtf16(head);
  if (utf16 !== null) return { encoding: utf16, bomBytes: 0 };
  if (head.includes(0)) return { binary: "it contains NUL bytes" };
  if (controlShare(head) > 0.1) return { binary: "it is mostly control characters" };
  return undefined;
}

/** ASCII text saved as UTF-16 without a BOM has a NUL in every other byte. */
function bomlessUtf16(head: Buffer): "utf-16le" | "utf-16be" | null {
  const pairs = Math.floor(head.length / 2);
  if (pairs < 4) return null;
  let evenNul = 0;
  let oddNul = 0;
  for (let i = 0; i < pairs * 2; i += 2) {
    if (head[i] === 0) evenNul++;
    if (head[i + 1] === 0) oddNul++;
  }
  if (oddNul >= pairs * 0.9 && evenNul === 0) return "utf-16le";
  if (evenNul >= pairs * 0.9 && oddNul === 0) return "utf-16be";
  return null;
}

function controlShare(head: Buffer): number {
  let control = 0;
  for (const byte of head) {
    if (byte < 0x09 || (byte > 0x0d && byte < 0x20 && byte !== 0x1a && byte !== 0x1b) || byte === 0x7f) control++;
  }
  return head.length === 0 ? 0 : control / head.length;
}

/** Validates UTF-8 across chunk boundaries: an incomplete trailing sequence waits for the next chunk. */
export class Utf8Validator {
  #carry: Buffer | null = null;
  #offset = 0;
  #firstInvalid: number | null = null;

  push(chunk: Buffer): void {
    if (this.#firstInvalid !== null) return;
    const buffer = this.#carry === null ? chunk : Buffer.concat([this.#carry, chunk]);
    const start = this.#offset - (this.#carry?.length ?? 0);
    const cut = incompleteTailStart(buffer);
    if (!isUtf8(buffer.subarray(0, cut))) {
      this.#firstInvalid = start + firstInvalidUtf8(buffer.subarray(0, cut));
      return;
    }
    this.#carry = cut < buffer.length ? Buffer.from(buffer.subarray(cut)) : null;
    this.#offset += chunk.length;
  }

  /** Byte offset of the first invalid sequence, or null when all was UTF-8. */
  end(): number | null {
    if (this.#firstInvalid === null && this.#carry !== null) this.#firstInvalid = this.#offset - this.#carry.length;
    return this.#firstInvalid;
  }
}

/** Only run on a buffer known to be invalid, to say where. */
function firstInvalidUtf8(buffer: Buffer): number {
  let i = 0;
  while (i < buffer.length) {
    const byte = buffer[i]!;
    const length = byte < 0x80 ? 1 : byte >= 0xc2 && byte < 0xe0 ? 2 : byte >= 0xe0 && byte < 0xf0 ? 3 : byte >= 0xf0 && byte < 0xf5 ? 4 : 0;
    if (length === 0 || !isUtf8(buffer.subarray(i, i + length))) return i;
    i += length;
  }
  return buffer.length;
}

function incompleteTailStart(buffer: Buffer): number {
  const end = buffer.length;
  for (let i = end - 1; i >= Math.max(0, end - 4); i--) {
    const byte = buffer[i]!;
    if ((byte & 0xc0) === 0x80) continue;
    if (byte < 0xc0) return end;
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : 2;
    return end - i < needed ? i : end;
  }
  return end;
}

const ICONV_NAMES: Record<Exclude<TextEncoding, "utf-8">, string> = {
  "utf-16le": "utf-16le",
  "utf-16be": "utf-16be",
  "windows-1252": "windows-1252",
};

/** The file's text in chunks, BOM removed. */
export async function* decodeText(source: RosterSource, detection: EncodingDetection): AsyncGenerator<string> {
  const stream = await source.open();
  const decoder = newDecoder(detection.encoding);
  let skip = detection.bomBytes;
  for await (const raw of stream as AsyncIterable<Buffer>) {
    let chunk = raw;
    if (skip > 0) {
      chunk = raw.subarray(Math.min(skip, raw.length));
      skip -= raw.length - chunk.length;
    }
    const text = decoder.write(chunk);
    if (text.length > 0) yield text;
  }
  const rest = decoder.end();
  if (rest !== undefined && rest.length > 0) yield rest;
}

interface Decoder {
  write(chunk: Buffer): string;
  end(): string | undefined;
}

function newDecoder(encoding: TextEncoding): Decoder {
  if (encoding === "utf-8") return new StringDecoder("utf8");
  return iconv.getDecoder(ICONV_NAMES[encoding], { stripBOM: false });
}
