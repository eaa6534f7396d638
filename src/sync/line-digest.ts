import { createHash } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { DATE_EVIDENCE } from "../intake/date-format.ts";
import type { DateColumnMemory, DateFormatSetting } from "../intake/date-format.ts";
import { LineHasher } from "../intake/line-hash.ts";
import type { LineTracking } from "../intake/read-roster-file.ts";
import { entitySpec } from "../spec/roster-spec.ts";
import type { EntityName, Scope } from "../spec/roster-spec.ts";
import { rosterTable, userKey } from "./roster-tables.ts";

/**
 * A line digest remembers, for one roster file of an applied sync, every line that became a
 * live row: the line's 64-bit hash, its row, and the row's key. The next night, a line whose
 * hash is in the digest is the same line, so it yields the same row, which is already live:
 * it is counted and not read any further (no parse, validation, staging or diff). Only the
 * lines that changed are read; the digest's lines that did not come back name the live rows
 * to look at again (`removed`). With 1% of an 8M-row enrollments file changed, only that 1%
 * is parsed, validated, staged and diffed; the rest is hashed and counted. See
 * docs/architecture.md, "Second nights".
 *
 * Files in a digest's folder, written by the parse thread, except `excluded` and `meta`:
 *   entries.bin   16 bytes per entry: hash hi, hash lo, row, key length (uint32 LE)
 *   keys.bin      the entries' keys, one after another (UTF-8, columns joined by NUL)
 *   removed.bin   previous digest's keys whose lines did not come back (uint32 length + key)
 *   excluded.bin  rows (int32) whose entries did not become live rows after all (duplicates, orphans)
 *   meta.json     what the digest is valid for; written last: a digest without it is never used
 * A line that had any issue is recorded with hash (0, 0): never recognised, always read again.
 */

/**
 * Bumped whenever reading a line can give a different row than before (format, normalising).
 * 2: date columns read one way per file. 3: users' Gender is read, and names carry sort keys.
 */
export const DIGEST_FORMAT = 3;

/**
 * Which files digests are kept for: the big ones. Only rows that depend on nothing but their
 * line are recorded (`digestedRecord`): students, not staff (a teacher at two schools is two
 * lines merged into one person), so staff rows are read every night.
 */
export const DIGESTED_ENTITIES: ReadonlySet<EntityName> = new Set(["users", "enrollments"]);

/** Whether a record read from a digested file goes into its digest. */
function digestedRecord(entity: EntityName, record: Record<string, unknown>): boolean {
  return entity !== "users" || record.scope === "student";
}

/** A line is recognised only in a file read exactly as the night before. */
export interface DigestIdentity {
  format: number;
  /** Hash of the entity's spec: a changed spec reads lines differently. */
  spec: string;
  entity: EntityName;
  stem: string;
  header: string;
  delimiter: string;
  encoding: string;
  /** The district's date format setting: another reads dates differently. */
  dateFormat: DateFormatSetting;
}

export interface DigestMeta {
  identity: DigestIdentity;
  entries: number;
  /** Size of keys.bin: with `entries`, what a damaged digest is recognised by. */
  keyBytes: number;
  /** How the file's date columns were read, by column name: lines are only skipped while they read the same way. */
  dates: Record<string, DateColumnMemory>;
}

/**
 * A digest's files are not what its meta says (a disk filled up, someone edited them). The sync
 * is then read again in full; the digest is only ever a shortcut.
 */
export class DamagedDigestError extends Error {
  override readonly name = "DamagedDigestError";
  constructor(detail: string) {
    super(`A line digest is damaged: ${detail}`);
  }
}

/**
 * Tonight's delivery leaves more lines to look at again than a second night allows: last night's
 * lines that did not come back (each a live row to diff), or unchanged lines held in memory that
 * became duplicates or lost their school, class or student (say a truncated classes file). The
 * sync is read again in full, which streams them.
 */
export class DigestRevisitLimitError extends Error {
  override readonly name = "DigestRevisitLimitError";
  constructor(what: string, limit: number) {
    super(`More than ${limit} ${what}`);
  }
}

/**
 * Most of tonight's lines are not in last night's digest (say a column renumbered every night):
 * reading against it would stage nearly every line and look again at nearly every live row.
 */
export class DigestMismatchError extends Error {
  override readonly name = "DigestMismatchError";
  constructor(seen: number, unchanged: number) {
    super(`Only ${unchanged} of the first ${seen} lines were in the previous night's digest`);
  }
}

/**
 * Tonight's changed lines read a date column differently from last night (say its first
 * day-first date arrived), or no longer show that the lines skipped read it as last night:
 * those lines' live values may be read the other way. The sync is read again in full.
 */
export class DigestDateReadingError extends Error {
  override readonly name = "DigestDateReadingError";
  constructor(file: string, column: string) {
    super(`The dates of ${file}, column ${column}, may not read as they did last night`);
  }
}

/** Errors after which a sync is read again in full, without digests. */
export const DIGEST_BYPASS_ERRORS: ReadonlySet<string> = new Set(["DamagedDigestError", "DigestRevisitLimitError", "DigestMismatchError", "DigestDateReadingError"]);

/** Lines read against a digest before the share found in it is judged (see DigestTracker.known). */
const MISMATCH_CHECK_AFTER = 100_000;

export const DEFAULT_DIGEST_REVISIT_LIMIT = 200_000;

export interface DigestRef {
  dir: string;
  meta: DigestMeta;
}

const ENTRY_BYTES = 16;
const BUFFER_BYTES = 1 << 20;

export function digestIdentity(
  entity: EntityName,
  stem: string,
  header: readonly string[],
  delimiter: string,
  encoding: string,
  dateFormat: DateFormatSetting,
): DigestIdentity {
  const spec = createHash("sha256").update(JSON.stringify(entitySpec(entity))).digest("hex").slice(0, 16);
  return { format: DIGEST_FORMAT, spec, entity, stem, header: header.join("\u0000"), delimiter, encoding, dateFormat };
}

function sameIdentity(a: DigestIdentity, b: DigestIdentity): boolean {
  return (
    a.format === b.format &&
    a.spec === b.spec &&
    a.entity === b.entity &&
    a.stem === b.stem &&
    a.header === b.header &&
    a.delimiter === b.delimiter &&
    a.encoding === b.encoding &&
    a.dateFormat === b.dateFormat
  );
}

function isDateColumnMemory(value: unknown): boolean {
  const memory = value as Partial<DateColumnMemory> | null;
  const isBounds = (b: unknown) => Array.isArray(b) && b.length === 2 && b.every((n) => Number.isInteger(n) && n >= 0);
  return (
    typeof memory === "object" &&
    memory !== null &&
    typeof memory.reading === "string" &&
    Number.isInteger(memory.rows) &&
    typeof memory.examples === "object" &&
    DATE_EVIDENCE.every((kind) => isBounds(memory.lines?.[kind]))
  );
}

/** The key of a record as stored in a digest: the live table's key columns, joined by NUL. */
function recordKey(entity: EntityName, record: Record<string, unknown>): string {
  if (entity === "users") return userKey(record.scope as Scope, String(record.district_user_id), (record.teacher_number as string | null) ?? null);
  const key = rosterTable(entity).key;
  return key.length === 1 ? String(record[key[0]!]) : key.map((c) => String(record[c] ?? "")).join("\u0000");
}

// ---- writing ----

/** Appends to a file through a 1 MiB buffer; fsyncs on close. */
class AppendFile {
  readonly #fd: number;
  readonly #buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  #used = 0;

  constructor(path: string) {
    this.#fd = openSync(path, "w");
  }

  reserve(bytes: number): Buffer {
    if (this.#used + bytes > BUFFER_BYTES) this.flush();
    return this.#buffer;
  }

  get offset(): number {
    return this.#used;
  }

  advance(bytes: number): void {
    this.#used += bytes;
  }

  /** Writes a string as UTF-8 and returns its length in bytes. */
  writeString(text: string): number {
    if (text.length * 3 > BUFFER_BYTES) {
      const bytes = Buffer.from(text, "utf8");
      this.flush();
      writeSync(this.#fd, bytes);
      return bytes.length;
    }
    const buffer = this.reserve(text.length * 3);
    const written = buffer.write(text, this.#used, "utf8");
    this.#used += written;
    return written;
  }

  writeBytes(bytes: Buffer, start: number, end: number): void {
    const length = end - start;
    if (length > BUFFER_BYTES) {
      this.flush();
      writeSync(this.#fd, bytes, start, length);
      return;
    }
    const buffer = this.reserve(length);
    bytes.copy(buffer, this.#used, start, end);
    this.#used += length;
  }

  flush(): void {
    let at = 0;
    while (at < this.#used) at += writeSync(this.#fd, this.#buffer, at, this.#used - at);
    this.#used = 0;
  }

  close(): void {
    this.flush();
    fsyncSync(this.#fd);
    closeSync(this.#fd);
  }

  /** Closes without writing what is buffered (the file is abandoned). */
  abandon(): void {
    closeSync(this.#fd);
  }
}

export class DigestWriter {
  readonly #entries: AppendFile;
  readonly #keys: AppendFile;
  count = 0;
  keyBytes = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.#entries = new AppendFile(join(dir, "entries.bin"));
    this.#keys = new AppendFile(join(dir, "keys.bin"));
  }

  add(hi: number, lo: number, row: number, key: string): void {
    const length = this.#keys.writeString(key);
    this.keyBytes += length;
    this.#entry(hi, lo, row, length);
  }

  addRaw(hi: number, lo: number, row: number, key: Buffer, start: number, end: number): void {
    this.#keys.writeBytes(key, start, end);
    this.keyBytes += end - start;
    this.#entry(hi, lo, row, end - start);
  }

  #entry(hi: number, lo: number, row: number, keyLength: number): void {
    const buffer = this.#entries.reserve(ENTRY_BYTES);
    const at = this.#entries.offset;
    buffer.writeUInt32LE(hi, at);
    buffer.writeUInt32LE(lo, at + 4);
    buffer.writeUInt32LE(row, at + 8);
    buffer.writeUInt32LE(keyLength, at + 12);
    this.#entries.advance(ENTRY_BYTES);
    this.count++;
  }

  close(): void {
    this.#entries.close();
    this.#keys.close();
  }

  abandon(): void {
    this.#entries.abandon();
    this.#keys.abandon();
  }
}

/** Rows of the file whose entries did not become live rows (found after the parse thread wrote them). */
export function writeExcludedRows(dir: string, rows: readonly number[]): void {
  const data = Buffer.allocUnsafe(rows.length * 4);
  rows.forEach((row, i) => data.writeInt32LE(row, i * 4));
  writeFileSync(join(dir, "excluded.bin"), data, { flush: true });
}

/** Makes the digest usable: written last, atomically. */
export function sealDigest(dir: string, meta: DigestMeta): void {
  const temp = join(dir, "meta.json.tmp");
  writeFileSync(temp, JSON.stringify(meta), { flush: true });
  renameSync(temp, join(dir, "meta.json"));
}

export function readDigestMeta(dir: string): DigestMeta | null {
  try {
    return JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as DigestMeta;
  } catch {
    return null;
  }
}

// ---- reading ----

/** Reads a file front to back in 1 MiB pieces. */
class SequentialFile {
  readonly #fd: number;
  buffer = Buffer.allocUnsafe(BUFFER_BYTES);
  /** Valid bytes in `buffer`, and the read position in it. */
  end = 0;
  pos = 0;
  #eof = false;

  constructor(path: string) {
    this.#fd = openSync(path, "r");
  }

  /** Makes at least `bytes` bytes available at `pos`; false at the end of the file. */
  ensure(bytes: number): boolean {
    if (this.end - this.pos >= bytes) return true;
    if (bytes > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(bytes * 2);
      this.buffer.copy(bigger, 0, this.pos, this.end);
      this.end -= this.pos;
      this.pos = 0;
      this.buffer = bigger;
    } else if (this.pos > 0) {
      this.buffer.copy(this.buffer, 0, this.pos, this.end);
      this.end -= this.pos;
      this.pos = 0;
    }
    while (this.end - this.pos < bytes && !this.#eof) {
      const read = readSync(this.#fd, this.buffer, this.end, this.buffer.length - this.end, null);
      if (read === 0) this.#eof = true;
      this.end += read;
    }
    return this.end - this.pos >= bytes;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Walks a digest's entries in order, with their keys. */
export class DigestScanner {
  readonly #entries: SequentialFile;
  readonly #keys: SequentialFile;
  hi = 0;
  lo = 0;
  row = 0;
  /** The key's bytes: `keys.buffer[keyStart, keyEnd)`, valid until the next `next()`. */
  keyStart = 0;
  keyEnd = 0;

  constructor(dir: string) {
    this.#entries = new SequentialFile(join(dir, "entries.bin"));
    this.#keys = new SequentialFile(join(dir, "keys.bin"));
  }

  get keyBuffer(): Buffer {
    return this.#keys.buffer;
  }

  key(): string {
    return this.#keys.buffer.toString("utf8", this.keyStart, this.keyEnd);
  }

  next(): boolean {
    const entries = this.#entries;
    if (!entries.ensure(ENTRY_BYTES)) return false;
    const b = entries.buffer;
    const at = entries.pos;
    this.hi = b.readUInt32LE(at);
    this.lo = b.readUInt32LE(at + 4);
    this.row = b.readUInt32LE(at + 8);
    const length = b.readUInt32LE(at + 12);
    entries.pos += ENTRY_BYTES;
    if (!this.#keys.ensure(length)) throw new DamagedDigestError("its keys end early");
    this.keyStart = this.#keys.pos;
    this.keyEnd = this.#keys.pos + length;
    this.#keys.pos += length;
    return true;
  }

  close(): void {
    this.#entries.close();
    this.#keys.close();
  }
}

function readExcludedRows(dir: string): Set<number> {
  let data: Buffer;
  try {
    data = readFileSync(join(dir, "excluded.bin"));
  } catch {
    return new Set();
  }
  const rows = new Set<number>();
  for (let at = 0; at + 4 <= data.length; at += 4) rows.add(data.readInt32LE(at));
  return rows;
}

/**
 * Matches tonight's lines against the previous night's digest as the file is read, in one pass
 * over both: exports list their rows in the same order night after night, so a line is looked
 * for among the entries from this.#window before to this.#window after the last one matched.
 * Entries leave the window in file order: a matched one goes into tonight's digest with tonight's
 * row, the others (lines changed, gone or never recognisable) into `removed.bin`: their live
 * rows are looked at again. Lines further out of order are simply read in full: slower, never
 * wrong. Memory: a ring of the window's hashes and a small hash table, a few MB.
 */
export class DigestMatcher {
  /** Reads entries as they enter the window (entries.bin only). */
  readonly #head: SequentialFile;
  /** Reads entries and their keys as they leave the window. */
  readonly #tail: DigestScanner;
  readonly #removed: AppendFile;
  readonly #excluded: ReadonlySet<number>;
  readonly #window: number;
  readonly #ringMask: number;
  readonly #tableMask: number;
  /** Ring of the window's entries, by position: hash and state (see STATE_*) or tonight's row. */
  readonly #hi: Uint32Array;
  readonly #lo: Uint32Array;
  readonly #state: Int32Array;
  /** Open addressing: position + 1 of a waiting entry, 0 empty; slots of entries gone are skipped. */
  #table: Int32Array;
  #tableUsed = 0;
  /** Positions in the window: [#tailPos, #headPos). */
  #headPos = 0;
  #tailPos = 0;
  #lastMatched = -1;
  #exhausted = false;
  #closed = false;
  removedCount = 0;

  constructor(
    ref: DigestRef,
    private readonly writer: DigestWriter,
    outDir: string,
    sizes: MatchSizes = MATCH_SIZES,
    private readonly removedLimit = Number.POSITIVE_INFINITY,
  ) {
    this.#window = sizes.window;
    const ring = 2 ** sizes.ringBits;
    this.#ringMask = ring - 1;
    this.#tableMask = 2 ** sizes.tableBits - 1;
    this.#hi = new Uint32Array(ring);
    this.#lo = new Uint32Array(ring);
    this.#state = new Int32Array(ring);
    this.#table = new Int32Array(this.#tableMask + 1);
    const size = (name: string) => statSync(join(ref.dir, name), { throwIfNoEntry: false })?.size;
    if (size("entries.bin") !== ref.meta.entries * ENTRY_BYTES || size("keys.bin") !== ref.meta.keyBytes) {
      throw new DamagedDigestError("its files are not the size its meta.json says");
    }
    this.#excluded = readExcludedRows(ref.dir);
    this.#head = new SequentialFile(join(ref.dir, "entries.bin"));
    this.#tail = new DigestScanner(ref.dir);
    this.#removed = new AppendFile(join(outDir, "removed.bin"));
  }

  /** True (and the entry marked matched at `row`) when a waiting entry in the window has this hash. */
  take(hi: number, lo: number, row: number): boolean {
    this.#enter(this.#lastMatched + this.#window);
    const table = this.#table;
    let slot = lo & this.#tableMask;
    for (;;) {
      const value = table[slot]!;
      if (value === 0) return false;
      const position = value - 1;
      if (position >= this.#tailPos) {
        const r = position & this.#ringMask;
        if (this.#lo[r] === lo && this.#hi[r] === hi && this.#state[r] === STATE_WAITING) {
          this.#state[r] = row;
          if (position > this.#lastMatched) {
            this.#lastMatched = position;
            this.#leave(position - this.#window);
          }
          return true;
        }
      }
      slot = (slot + 1) & this.#tableMask;
    }
  }

  /** After the file: every entry not matched is removed. Returns how many. */
  finish(): number {
    try {
      this.#enter(Number.MAX_SAFE_INTEGER);
      this.#leave(Number.MAX_SAFE_INTEGER);
    } finally {
      this.close();
    }
    return this.removedCount;
  }

  /** Closes its files (once; a matcher that failed may be closed again as its file is abandoned). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#head.close();
    this.#tail.close();
    this.#removed.close();
  }

  /** Entries up to file position `position` enter the window. */
  #enter(position: number): void {
    const head = this.#head;
    while (!this.#exhausted && this.#headPos <= position) {
      if (!head.ensure(ENTRY_BYTES)) {
        this.#exhausted = true;
        break;
      }
      const b = head.buffer;
      const hi = b.readUInt32LE(head.pos);
      const lo = b.readUInt32LE(head.pos + 4);
      const oldRow = b.readUInt32LE(head.pos + 8);
      head.pos += ENTRY_BYTES;
      if (this.#headPos - this.#tailPos > this.#ringMask) this.#leave(this.#tailPos + 1);
      const p = this.#headPos++;
      const r = p & this.#ringMask;
      this.#hi[r] = hi;
      this.#lo[r] = lo;
      if (this.#excluded.size > 0 && this.#excluded.has(oldRow)) this.#state[r] = STATE_EXCLUDED;
      else if (hi === 0 && lo === 0) this.#state[r] = STATE_UNRECOGNISABLE;
      else {
        this.#state[r] = STATE_WAITING;
        this.#insert(lo, p);
      }
    }
  }

  #insert(lo: number, position: number): void {
    if (this.#tableUsed * 2 > this.#tableMask) this.#rebuild();
    const table = this.#table;
    let slot = lo & this.#tableMask;
    for (;;) {
      const value = table[slot]!;
      if (value === 0) {
        this.#tableUsed++;
        break;
      }
      // A slot of an entry that left the window (or was matched) is taken over.
      const old = value - 1;
      if (old < this.#tailPos || this.#state[old & this.#ringMask] !== STATE_WAITING) break;
      slot = (slot + 1) & this.#tableMask;
    }
    table[slot] = position + 1;
  }

  /** Clears the table of entries gone and matched (they only lengthen probes). */
  #rebuild(): void {
    this.#table = new Int32Array(this.#tableMask + 1);
    this.#tableUsed = 0;
    for (let p = this.#tailPos; p < this.#headPos; p++) {
      const r = p & this.#ringMask;
      if (this.#state[r] !== STATE_WAITING) continue;
      let slot = this.#lo[r]! & this.#tableMask;
      while (this.#table[slot] !== 0) slot = (slot + 1) & this.#tableMask;
      this.#table[slot] = p + 1;
      this.#tableUsed++;
    }
  }

  /** Entries before file position `position` leave the window, in file order. */
  #leave(position: number): void {
    const tail = this.#tail;
    while (this.#tailPos < position && this.#tailPos < this.#headPos) {
      if (!tail.next()) throw new DamagedDigestError("it changed while it was read");
      const state = this.#state[this.#tailPos & this.#ringMask]!;
      this.#tailPos++;
      if (state === STATE_EXCLUDED) continue;
      if (state > 0) {
        this.writer.addRaw(tail.hi, tail.lo, state, tail.keyBuffer, tail.keyStart, tail.keyEnd);
        continue;
      }
      const removed = this.#removed;
      const length = tail.keyEnd - tail.keyStart;
      const buffer = removed.reserve(4);
      buffer.writeUInt32LE(length, removed.offset);
      removed.advance(4);
      removed.writeBytes(tail.keyBuffer, tail.keyStart, tail.keyEnd);
      if (++this.removedCount > this.removedLimit) throw new DigestRevisitLimitError("lines of the previous night's file did not come back", this.removedLimit);
    }
  }
}

export interface MatchSizes {
  /** How far out of order (in entries) a line may come back and still be recognised. */
  window: number;
  /** The ring holds more than twice the window; the table has twice the ring's slots or more. */
  ringBits: number;
  tableBits: number;
}

const MATCH_SIZES: MatchSizes = { window: 100_000, ringBits: 18, tableBits: 20 };
const STATE_WAITING = 0;
const STATE_UNRECOGNISABLE = -1;
const STATE_EXCLUDED = -2;

/** The keys in a digest's `removed.bin`, in batches. */
export function* removedKeys(dir: string, batchSize = 10_000): Generator<string[]> {
  const file = new SequentialFile(join(dir, "removed.bin"));
  try {
    let batch: string[] = [];
    while (file.ensure(4)) {
      const length = file.buffer.readUInt32LE(file.pos);
      file.pos += 4;
      if (!file.ensure(length)) throw new DamagedDigestError("removed.bin ends early");
      batch.push(file.buffer.toString("utf8", file.pos, file.pos + length));
      file.pos += length;
      if (batch.length === batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    file.close();
  }
}

/** Tonight's rows of the given keys, from a digest written tonight: one pass over its files. */
export function rowsOfKeys(dir: string, keys: ReadonlySet<string>): Map<string, number[]> {
  const rows = new Map<string, number[]>();
  if (keys.size === 0) return rows;
  const scanner = new DigestScanner(dir);
  try {
    while (scanner.next()) {
      const key = scanner.key();
      if (!keys.has(key)) continue;
      const list = rows.get(key);
      if (list === undefined) rows.set(key, [scanner.row]);
      else list.push(scanner.row);
    }
  } finally {
    scanner.close();
  }
  return rows;
}

// ---- the reader's side: recognising lines while a file is read (on the parse thread) ----

export interface DigestPlan {
  /** Where tonight's digest of the file goes. */
  outDir: string;
  /** The previous night's digest of the same file, if one is valid for the live roster. */
  previous: DigestRef | null;
  /**
   * Most of the previous night's lines that may fail to come back: each names a live row to look at
   * again. Past it (a column that changes every night, a reordered or truncated file) the digest
   * costs more than it saves: DigestRevisitLimitError, and the sync is read in full.
   */
  removedLimit: number;
  /** The district's date format setting (part of the identity). */
  dateFormat: DateFormatSetting;
}

export interface DigestResult {
  identity: DigestIdentity;
  entries: number;
  keyBytes: number;
  /** True when the previous night's digest was used: unchanged lines were skipped. */
  delta: boolean;
  /** Lines skipped as unchanged, and previous entries whose lines did not come back. */
  unchanged: number;
  removed: number;
}

/**
 * The `LineTracking` of a digested file: hashes every data line; when the file is read exactly
 * as last night (same identity), skips the lines last night's digest knows; writes tonight's.
 */
export class DigestTracker implements LineTracking {
  readonly #hasher = new LineHasher();
  #identity: DigestIdentity | null = null;
  #matcher: DigestMatcher | null = null;
  #writer: DigestWriter | null = null;
  #unchanged = 0;
  #seen = 0;
  #delta = false;
  #damaged: DamagedDigestError | null = null;

  constructor(
    private readonly entity: EntityName,
    private readonly stem: string,
    private readonly plan: DigestPlan,
  ) {}

  begin(header: readonly string[], delimiter: string, encoding: string): void {
    this.#identity = digestIdentity(this.entity, this.stem, header, delimiter, encoding, this.plan.dateFormat);
    const previous = this.plan.previous;
    this.#writer = new DigestWriter(this.plan.outDir);
    if (previous !== null && sameIdentity(previous.meta.identity, this.#identity)) {
      try {
        this.#matcher = new DigestMatcher(previous, this.#writer, this.plan.outDir, undefined, this.plan.removedLimit);
        this.#delta = true;
      } catch (error) {
        // Nothing is skipped yet: the file is simply read in full.
        if (!(error instanceof DamagedDigestError)) throw error;
      }
    }
  }

  known(text: string, start: number, end: number, row: number): boolean {
    const hasher = this.#hasher;
    hasher.hash(text, start, end);
    if (this.#matcher === null) return false;
    try {
      this.#seen++;
      if (!this.#matcher.take(hasher.hi, hasher.lo, row)) {
        // Fewer than half found: the digest would cost more than it saves; found early, the sync is read again in full.
        if (this.#seen >= MISMATCH_CHECK_AFTER && this.#unchanged * 2 < this.#seen) throw new DigestMismatchError(this.#seen, this.#unchanged);
        return false;
      }
    } catch (error) {
      // Lines were skipped already: the file cannot be completed; `finish` fails the attempt (read again in full).
      if (!(error instanceof DamagedDigestError)) throw error;
      this.#damaged = error;
      this.#matcher.close();
      this.#matcher = null;
      return false;
    }
    this.#unchanged++;
    return true;
  }

  previousDates(): Readonly<Record<string, DateColumnMemory>> | null {
    if (!this.#delta) return null;
    const dates = this.plan.previous!.meta.dates as Record<string, DateColumnMemory> | undefined;
    // Nothing is skipped yet: the sync is read again in full.
    if (typeof dates !== "object" || dates === null || !Object.values(dates).every(isDateColumnMemory)) {
      throw new DamagedDigestError("its meta.json does not say how its dates were read");
    }
    return dates;
  }

  accepted(record: unknown, row: number, clean: boolean): void {
    if (!digestedRecord(this.entity, record as Record<string, unknown>)) return;
    const key = recordKey(this.entity, record as Record<string, unknown>);
    if (clean) this.#writer!.add(this.#hasher.hi, this.#hasher.lo, row, key);
    else this.#writer!.add(0, 0, row, key);
  }

  /** Lets go of a digest that will not be finished (the file failed): its folder is removed with the sync's. */
  abandon(): void {
    this.#writer?.abandon();
    this.#writer = null;
    this.#matcher?.close();
    this.#matcher = null;
  }

  /** Completes tonight's digest (not sealed: the sync's thread adds exclusions and seals it). Null when the file had no header. */
  finish(): DigestResult | null {
    const writer = this.#writer;
    if (this.#damaged !== null) throw this.#damaged;
    if (writer === null || this.#identity === null) return null;
    const removed = this.#matcher?.finish() ?? 0;
    this.#matcher = null;
    writer.close();
    this.#writer = null;
    return { identity: this.#identity, entries: writer.count, keyBytes: writer.keyBytes, delta: this.#delta, unchanged: this.#unchanged, removed };
  }
}
