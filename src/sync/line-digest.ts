import { createHash } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { endianness } from "node:os";
import { join } from "node:path";
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
 * to look at again (`removed`). With 1% of an 8M-row enrollments file changed, 99% of the
 * work of a night is skipped. See docs/architecture.md, "Second nights".
 *
 * Files in a digest's folder, written by the parse thread, except `excluded` and `meta`:
 *   entries.bin   16 bytes per entry: hash hi, hash lo, row, key length (uint32 LE)
 *   keys.bin      the entries' keys, one after another (UTF-8, columns joined by NUL)
 *   removed.bin   previous digest's keys whose lines did not come back (uint32 length + key)
 *   excluded.bin  rows (int32) whose entries did not become live rows after all (duplicates, orphans)
 *   meta.json     what the digest is valid for; written last: a digest without it is never used
 * A line that had any issue is recorded with hash (0, 0): never recognised, always read again.
 */

/** Bumped whenever reading a line can give a different row than before (format, normalising). */
export const DIGEST_FORMAT = 1;

/**
 * Which files digests are kept for: the big ones. Only rows that depend on nothing but their
 * line are recorded (`digestedRecord`): students, not staff (a teacher at two schools is two
 * lines merged into one person), so staff rows are read every night.
 */
export const DIGESTED_ENTITIES: ReadonlySet<EntityName> = new Set(["users", "enrollments"]);

/** Whether a record read from a digested file goes into its digest. */
export function digestedRecord(entity: EntityName, record: Record<string, unknown>): boolean {
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
}

export interface DigestMeta {
  identity: DigestIdentity;
  entries: number;
}

export interface DigestRef {
  dir: string;
  meta: DigestMeta;
}

const ENTRY_BYTES = 16;
const LOAD_CHUNK_ENTRIES = 1 << 16;
const BUFFER_BYTES = 1 << 20;

export function digestIdentity(entity: EntityName, stem: string, header: readonly string[], delimiter: string, encoding: string): DigestIdentity {
  const spec = createHash("sha256").update(JSON.stringify(entitySpec(entity))).digest("hex").slice(0, 16);
  return { format: DIGEST_FORMAT, spec, entity, stem, header: header.join("\u0000"), delimiter, encoding };
}

function sameIdentity(a: DigestIdentity, b: DigestIdentity): boolean {
  return (
    a.format === b.format && a.spec === b.spec && a.entity === b.entity && a.stem === b.stem && a.header === b.header && a.delimiter === b.delimiter && a.encoding === b.encoding
  );
}

/** The key of a record as stored in a digest: the live table's key columns, joined by NUL. */
export function recordKey(entity: EntityName, record: Record<string, unknown>): string {
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

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.#entries = new AppendFile(join(dir, "entries.bin"));
    this.#keys = new AppendFile(join(dir, "keys.bin"));
  }

  add(hi: number, lo: number, row: number, key: string): void {
    const length = this.#keys.writeString(key);
    this.#entry(hi, lo, row, length);
  }

  addRaw(hi: number, lo: number, row: number, key: Buffer, start: number, end: number): void {
    this.#keys.writeBytes(key, start, end);
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
  index = -1;
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
    if (!this.#keys.ensure(length)) throw new Error("A line digest is damaged: its keys end early");
    this.keyStart = this.#keys.pos;
    this.keyEnd = this.#keys.pos + length;
    this.#keys.pos += length;
    this.index++;
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
 * The previous night's digest, in memory for lookups: an open-addressing table of slots of three
 * uint32 (hash hi, hash lo, tonight's row), so that a lookup touches one or two cache lines.
 * 12 bytes per slot at most 77% full: about 16 bytes per line (120 MB for 8M lines).
 * A slot's row: 0 not seen tonight, >= 2 the row its line came back at, 1 carried over.
 */
export class PreviousDigest {
  readonly #slots: Uint32Array;
  readonly #capacity: number;

  private constructor(
    readonly ref: DigestRef,
    count: number,
    /** Rows (of the digest's night) whose entries did not become live rows: ignored. */
    private readonly excluded: ReadonlySet<number>,
  ) {
    this.#capacity = Math.max(16, Math.ceil(count * 1.3));
    this.#slots = new Uint32Array(this.#capacity * 3);
  }

  static load(ref: DigestRef): PreviousDigest {
    if (endianness() !== "LE") throw new Error("Line digests are read on little-endian machines only");
    const excluded = readExcludedRows(ref.dir);
    const digest = new PreviousDigest(ref, ref.meta.entries, excluded);
    let loaded = 0;
    forEachEntryChunk(ref, (chunk, entries) => {
      for (let e = 0; e < entries; e++) {
        const hi = chunk[e * 4]!;
        const lo = chunk[e * 4 + 1]!;
        if ((hi !== 0 || lo !== 0) && (excluded.size === 0 || !excluded.has(chunk[e * 4 + 2]!))) digest.#insert(hi, lo);
      }
      loaded += entries;
    });
    if (loaded !== ref.meta.entries) throw new Error("A line digest is damaged: it has fewer entries than its meta says");
    return digest;
  }

  /** The first slot to probe for a hash: `lo` scaled to the capacity (no power of two needed). */
  #home(lo: number): number {
    return Math.floor((lo / 4294967296) * this.#capacity);
  }

  #insert(hi: number, lo: number): void {
    const slots = this.#slots;
    let slot = this.#home(lo);
    while (slots[slot * 3] !== 0 || slots[slot * 3 + 1] !== 0) if (++slot === this.#capacity) slot = 0;
    slots[slot * 3] = hi;
    slots[slot * 3 + 1] = lo;
  }

  /** True (and the entry marked seen at `row`) when an entry not yet seen has this hash. */
  take(hi: number, lo: number, row: number): boolean {
    const slots = this.#slots;
    let slot = this.#home(lo);
    for (;;) {
      const at = slot * 3;
      const slotLo = slots[at + 1]!;
      const slotHi = slots[at]!;
      if (slotLo === 0 && slotHi === 0) return false;
      if (slotLo === lo && slotHi === hi && slots[at + 2] === 0) {
        slots[at + 2] = row;
        return true;
      }
      if (++slot === this.#capacity) slot = 0;
    }
  }

  /** Tonight's row of an entry (0: its line did not come back), marking it carried over. */
  #settle(hi: number, lo: number): number {
    const slots = this.#slots;
    let slot = this.#home(lo);
    for (;;) {
      const at = slot * 3;
      if (slots[at] === 0 && slots[at + 1] === 0) throw new Error("A line digest changed while it was read");
      if (slots[at + 1] === lo && slots[at] === hi && slots[at + 2] !== 1) {
        const row = slots[at + 2]!;
        slots[at + 2] = 1;
        return row;
      }
      if (++slot === this.#capacity) slot = 0;
    }
  }

  /**
   * After the file: the entries whose lines came back go into tonight's digest with tonight's
   * rows; the keys of the others (lines changed or gone, or read every night) go to
   * `removed.bin` in `outDir`.
   */
  carryOver(writer: DigestWriter, outDir: string): number {
    const removed = new AppendFile(join(outDir, "removed.bin"));
    const scanner = new DigestScanner(this.ref.dir);
    let count = 0;
    try {
      while (scanner.next()) {
        if (this.excluded.has(scanner.row)) continue;
        const row = scanner.hi === 0 && scanner.lo === 0 ? 0 : this.#settle(scanner.hi, scanner.lo);
        if (row > 1) writer.addRaw(scanner.hi, scanner.lo, row, scanner.keyBuffer, scanner.keyStart, scanner.keyEnd);
        else {
          const length = scanner.keyEnd - scanner.keyStart;
          const buffer = removed.reserve(4);
          buffer.writeUInt32LE(length, removed.offset);
          removed.advance(4);
          removed.writeBytes(scanner.keyBuffer, scanner.keyStart, scanner.keyEnd);
          count++;
        }
      }
    } finally {
      scanner.close();
      removed.close();
    }
    return count;
  }
}

/** The keys in a digest's `removed.bin`, in batches. */
export function* removedKeys(dir: string, batchSize = 10_000): Generator<string[]> {
  const file = new SequentialFile(join(dir, "removed.bin"));
  try {
    let batch: string[] = [];
    while (file.ensure(4)) {
      const length = file.buffer.readUInt32LE(file.pos);
      file.pos += 4;
      if (!file.ensure(length)) throw new Error("A line digest is damaged: removed.bin ends early");
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
}

export interface DigestResult {
  identity: DigestIdentity;
  entries: number;
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
  #previous: PreviousDigest | null = null;
  #writer: DigestWriter | null = null;
  #unchanged = 0;
  #delta = false;

  constructor(
    private readonly entity: EntityName,
    private readonly stem: string,
    private readonly plan: DigestPlan,
  ) {}

  begin(header: readonly string[], delimiter: string, encoding: string): void {
    this.#identity = digestIdentity(this.entity, this.stem, header, delimiter, encoding);
    const previous = this.plan.previous;
    if (previous !== null && sameIdentity(previous.meta.identity, this.#identity)) {
      this.#previous = PreviousDigest.load(previous);
      this.#delta = true;
    }
    this.#writer = new DigestWriter(this.plan.outDir);
  }

  known(text: string, start: number, end: number, row: number): boolean {
    const hasher = this.#hasher;
    hasher.hash(text, start, end);
    if (this.#previous !== null && this.#previous.take(hasher.hi, hasher.lo, row)) {
      this.#unchanged++;
      return true;
    }
    return false;
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
    this.#previous = null;
  }

  /** Completes tonight's digest (not sealed: the sync's thread adds exclusions and seals it). Null when the file had no header. */
  finish(): DigestResult | null {
    const writer = this.#writer;
    if (writer === null || this.#identity === null) return null;
    const removed = this.#previous?.carryOver(writer, this.plan.outDir) ?? 0;
    writer.close();
    this.#writer = null;
    this.#previous = null;
    return { identity: this.#identity, entries: writer.count, delta: this.#delta, unchanged: this.#unchanged, removed };
  }
}

/** Reads `entries.bin` in chunks, as Uint32Arrays of 4 words per entry. */
function forEachEntryChunk(ref: DigestRef, visit: (chunk: Uint32Array, entries: number) => void): void {
  const fd = openSync(join(ref.dir, "entries.bin"), "r");
  try {
    const chunk = new Uint32Array(LOAD_CHUNK_ENTRIES * 4);
    let loaded = 0;
    for (;;) {
      const bytes = readSync(fd, chunk, 0, chunk.byteLength, null);
      if (bytes === 0) break;
      if (bytes % ENTRY_BYTES !== 0) throw new Error("A line digest is damaged: entries.bin ends inside an entry");
      const entries = bytes / ENTRY_BYTES;
      loaded += entries;
      if (loaded > ref.meta.entries) throw new Error("A line digest is damaged: it has more entries than its meta says");
      visit(chunk, entries);
    }
  } finally {
    closeSync(fd);
  }
}
