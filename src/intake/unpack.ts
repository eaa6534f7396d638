import { createReadStream } from "node:fs";
import { open as openFile, stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import yauzl from "yauzl";
import type { Entry, ZipFile } from "yauzl";
import { makeIssue } from "./issue.ts";
import type { IssueSink } from "./issue.ts";
import { baseName } from "./recognise-file.ts";

/** A file of a delivery, as stored on disk. */
export interface DeliveryFile {
  /** The name the district gave it. */
  name: string;
  path: string;
}

/** A file to read rows from: a plain delivery file or a zip entry. */
export interface RosterSource {
  /** For messages and recognition: `students.csv`, or `roster.zip/students.csv` for a zip entry. */
  name: string;
  /** Bytes, uncompressed. */
  size: number;
  /** A fresh stream of the file's bytes each call (encoding detection reads it, then parsing does). */
  open(): Promise<Readable>;
}

export interface UnpackLimits {
  maxEntries: number;
  maxEntryBytes: number;
  maxTotalBytes: number;
  /** Uncompressed/compressed; roster CSVs compress 5-20 times, zip bombs thousands. */
  maxCompressionRatio: number;
  /** Entries smaller than this are not ratio-checked: tiny files can compress absurdly and harm no one. */
  ratioCheckMinBytes: number;
}

export const DEFAULT_UNPACK_LIMITS: Readonly<UnpackLimits> = Object.freeze({
  maxEntries: 64,
  maxEntryBytes: 2 * 1024 ** 3,
  maxTotalBytes: 4 * 1024 ** 3,
  maxCompressionRatio: 200,
  ratioCheckMinBytes: 1024 ** 2,
});

export interface UnpackResult {
  sources: RosterSource[];
  /** Releases open zip archives; call once every source has been read. */
  close(): Promise<void>;
}

/**
 * A plain file is read in 64 KiB chunks; each becomes one batch of records downstream (a zip
 * entry's come as 16 KiB). Measured on a first night of 8.85M rows from plain CSV files: 46-50 s
 * and ~300 MB peak RSS with 64 KiB, 62 s and 450 MB with 1 MiB (records of big batches outlive
 * V8's young generation on both threads).
 */
const READ_CHUNK_BYTES = 64 * 1024;

/**
 * Turns a delivery's files into roster sources: zips (recognised by their bytes, not their name)
 * are checked against the limits and expanded; other files pass through. A zip that breaks
 * a rule is rejected whole with a file-level error, never partly used.
 */
export async function unpackDelivery(
  files: readonly DeliveryFile[],
  issues: IssueSink,
  limits: Partial<UnpackLimits> = {},
): Promise<UnpackResult> {
  const effective: UnpackLimits = { ...DEFAULT_UNPACK_LIMITS, ...limits };
  const sources: RosterSource[] = [];
  const zips: ZipFile[] = [];
  for (const file of files) {
    if (await isZip(file.path)) {
      const unpacked = await unpackZip(file, effective, issues);
      if (unpacked !== null) {
        zips.push(unpacked.zip);
        sources.push(...unpacked.sources);
      }
    } else {
      sources.push(plainSource(file, (await stat(file.path)).size));
    }
  }
  return {
    sources,
    close: async () => {
      for (const zip of zips) zip.close();
    },
  };
}

function plainSource(file: DeliveryFile, size: number): RosterSource {
  return {
    name: file.name,
    size,
    open: async () => createReadStream(file.path, { highWaterMark: READ_CHUNK_BYTES }),
  };
}

const ZIP_MAGICS = [
  [0x50, 0x4b, 0x03, 0x04],
  [0x50, 0x4b, 0x05, 0x06], // empty archive
  [0x50, 0x4b, 0x07, 0x08], // spanned archive marker
];

export async function isZip(path: string): Promise<boolean> {
  const handle = await openFile(path, "r");
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && ZIP_MAGICS.some((magic) => magic.every((byte, i) => head[i] === byte));
  } finally {
    await handle.close();
  }
}

interface UnpackedZip {
  zip: ZipFile;
  sources: RosterSource[];
}

async function unpackZip(file: DeliveryFile, limits: UnpackLimits, issues: IssueSink): Promise<UnpackedZip | null> {
  let zip: ZipFile;
  try {
    zip = await yauzl.openPromise(file.path, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (error) {
    issues.add(makeIssue("BAD_ZIP", { file: file.name, detail: errorText(error) }));
    return null;
  }
  if (zip.entryCount > limits.maxEntries) {
    issues.add(makeIssue("TOO_MANY_ZIP_ENTRIES", { file: file.name, limit: limits.maxEntries }));
    zip.close();
    return null;
  }
  const accepted: Array<{ entry: Entry; name: string }> = [];
  let ok = true;
  let totalBytes = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      const name = entryName(entry);
      const problem = checkEntry(file.name, entry, name, limits, totalBytes);
      if (problem !== null) {
        issues.add(problem.issue);
        ok &&= !problem.isError;
        continue;
      }
      if (isDirectoryOrJunk(name)) continue;
      if (name.toLowerCase().endsWith(".zip")) {
        issues.add(makeIssue("NESTED_ARCHIVE", { file: `${file.name}/${name}` }));
        continue;
      }
      totalBytes += entry.uncompressedSize;
      accepted.push({ entry, name });
    }
  } catch (error) {
    issues.add(makeIssue("BAD_ZIP", { file: file.name, detail: errorText(error) }));
    ok = false;
  }
  if (!ok) {
    zip.close();
    return null;
  }
  return {
    zip,
    sources: accepted.map(({ entry, name }) => ({
      name: `${file.name}/${name}`,
      size: entry.uncompressedSize,
      open: () => zip.openReadStreamPromise(entry),
    })),
  };
}

function entryName(entry: Entry): string {
  // decodeStrings is off so that yauzl reports unsafe names to us instead of failing the whole archive.
  const raw = entry.fileName as unknown as Buffer;
  return yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, false);
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

function checkEntry(
  zipName: string,
  entry: Entry,
  name: string,
  limits: UnpackLimits,
  totalSoFar: number,
): { issue: ReturnType<typeof makeIssue>; isError: boolean } | null {
  const unsafe = unsafeNameReason(name) ?? (((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK ? "is a symbolic link" : null);
  if (unsafe !== null) return fail(makeIssue("UNSAFE_ZIP_ENTRY", { file: zipName, value: name, detail: unsafe }));
  if (baseName(name) === "[Content_Types].xml") return fail(makeIssue("SPREADSHEET_FILE", { file: zipName }));
  if (name.endsWith("/")) return null;
  if (entry.isEncrypted()) return fail(makeIssue("BAD_ZIP", { file: zipName, detail: `entry ${name} is password-protected` }));
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    return fail(makeIssue("BAD_ZIP", { file: zipName, detail: `entry ${name} uses compression method ${entry.compressionMethod}; only "deflate" and "store" are supported` }));
  }
  const size = entry.uncompressedSize;
  if (size > limits.maxEntryBytes) {
    return fail(makeIssue("ZIP_TOO_LARGE", { file: zipName, value: name, detail: `entry ${name}`, count: size, limit: limits.maxEntryBytes }));
  }
  if (totalSoFar + size > limits.maxTotalBytes) {
    return fail(makeIssue("ZIP_TOO_LARGE", { file: zipName, detail: "the archive's content", count: totalSoFar + size, limit: limits.maxTotalBytes }));
  }
  const ratio = size / Math.max(1, entry.compressedSize);
  if (size >= limits.ratioCheckMinBytes && ratio > limits.maxCompressionRatio) {
    return fail(makeIssue("ZIP_BOMB", { file: zipName, value: name, count: ratio, limit: limits.maxCompressionRatio }));
  }
  return null;
}

function fail(issue: ReturnType<typeof makeIssue>) {
  return { issue, isError: issue.severity === "error" };
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function unsafeNameReason(name: string): string | null {
  if (name.includes("\\")) return "contains a backslash";
  if (/^[a-zA-Z]:/.test(name)) return "starts with a drive letter (an absolute Windows path)";
  if (name.startsWith("/")) return "is an absolute path";
  if (name.split("/").includes("..")) return 'contains ".." and points outside the archive';
  if (CONTROL_CHARS.test(name)) return "contains control characters";
  return yauzl.validateFileName(name) === null ? null : "is not a plain relative file name";
}

function isDirectoryOrJunk(name: string): boolean {
  const base = baseName(name);
  return name.endsWith("/") || name.startsWith("__MACOSX/") || base === ".DS_Store" || base.startsWith("._") || base === "Thumbs.db";
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
