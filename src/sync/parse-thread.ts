import { Worker as Thread } from "node:worker_threads";
import type { DateFormatSetting } from "../intake/date-format.ts";
import type { FileStats } from "../intake/read-roster-file.ts";
import type { Issue } from "../intake/issue.ts";
import type { RejectedRow } from "../intake/validate-row.ts";
import type { RecognisedFile } from "../intake/recognise-file.ts";
import type { DeliveryFile, UnpackLimits } from "../intake/unpack.ts";
import { recordColumns } from "../spec/roster-spec.ts";
import type { EntityName } from "../spec/roster-spec.ts";
import type { DigestPlan, DigestResult } from "./line-digest.ts";

/**
 * Main → parse thread: the delivery to read next (the thread unpacks the same files itself:
 * unpacking is deterministic); the sources that will be read, in order (their encodings are
 * detected ahead, one after another, while earlier files are parsed); read one source; one more
 * batch may be sent.
 */
export type ParseRequest =
  | { kind: "delivery"; files: DeliveryFile[]; unpackLimits: Partial<UnpackLimits> }
  | { kind: "prepare"; sources: number[] }
  | { kind: "file"; source: number; file: RecognisedFile; progress: boolean; digest: DigestPlan | null; dateFormat: DateFormatSetting }
  | { kind: "credit" };

/**
 * Parse thread → main. Every message carries the issues found since the previous one (in the
 * order found), the file's stats so far and the bytes read so far. A batch's records travel as their
 * values in `recordColumns(entity)` order (see PackedValues), its rows as a transferred Int32Array.
 */
export type ParseReply =
  | { kind: "batch"; issues: Issue[]; rejected: RejectedRow[]; stats: FileStats; bytes: number; rows: Int32Array; values: PackedValues }
  | { kind: "end"; issues: Issue[]; rejected: RejectedRow[]; stats: FileStats; bytes: number; digest: DigestResult | null }
  | { kind: "failed"; name: string; message: string; code?: string };

/**
 * Batches parsed ahead of the inserts, at most: bounds memory. A batch is one decoded chunk: 64 KB
 * of a plain file, 16 KB of a zip entry (its inflate output), a few hundred to a few thousand
 * records. Bigger batches were measured slower on first nights (1 MB: 62-71 s against 44-50 s,
 * 450-580 MB peak RSS): their records outlive V8's young generation.
 */
export const BATCHES_IN_FLIGHT = 3;

/** `rejected`: the rows rejected since the previous message (see RejectedRow). */
export type ParsedMessage =
  | { kind: "batch"; issues: Issue[]; rejected: RejectedRow[]; stats: FileStats; bytes: number; rows: Int32Array; records: unknown[] }
  | { kind: "end"; issues: Issue[]; rejected: RejectedRow[]; stats: FileStats; bytes: number; digest: DigestResult | null };

/** How long a parse thread waits, idle, for the next delivery before it ends. */
export const PARSE_THREAD_IDLE_MS = 60_000;

/**
 * The parse threads of one sync engine: one kept between deliveries, since starting a thread
 * costs about half a second of CPU (its TypeScript loader and the intake's modules), as much
 * as a small district's whole sync. A thread comes back only when it read every file it was
 * asked for to its end; one stopped midway (a failed file, an error) is ended.
 */
export class ParseThreads {
  #idle: ParseThread | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  /** A thread reading `files`: the idle one if there is one, or a new one. */
  acquire(files: readonly DeliveryFile[], unpackLimits: Partial<UnpackLimits>): ParseThread {
    const thread = this.#idle ?? new ParseThread();
    this.#idle = null;
    this.#stopTimer();
    thread.open(files, unpackLimits);
    return thread;
  }

  /** Keeps `thread` for the next delivery if it is clean and none is kept yet; otherwise ends it. */
  async release(thread: ParseThread): Promise<void> {
    if (this.#closed || this.#idle !== null || !thread.clean) return thread.close();
    thread.idle();
    this.#idle = thread;
    this.#timer = setTimeout(() => void this.close(false), PARSE_THREAD_IDLE_MS).unref();
  }

  /** Ends the idle thread; `forGood` (the default) also ends every thread released later. */
  async close(forGood = true): Promise<void> {
    if (forGood) this.#closed = true;
    this.#stopTimer();
    const idle = this.#idle;
    this.#idle = null;
    await idle?.close();
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/**
 * Decode → parse → normalise → validate (readRosterFile) on a thread of its own, so that it
 * overlaps the staging inserts and reference checks on the sync's thread. One file at a time,
 * one delivery after another (see ParseThreads).
 */
export class ParseThread {
  readonly #thread: Thread;
  readonly #inbox: ParseReply[] = [];
  #wake: (() => void) | null = null;
  #failure: Error | null = null;
  #closing = false;
  /** False from a file's first request until its end arrives: a thread left midway cannot serve another delivery. */
  #clean = true;

  constructor() {
    this.#thread = new Thread(new URL("../jobs/thread-boot.mjs", import.meta.url), { workerData: { entry: new URL("./parse-thread-main.ts", import.meta.url).href } });
    this.#thread.on("message", (reply: ParseReply) => {
      this.#inbox.push(reply);
      this.#notify();
    });
    this.#thread.on("error", (error) => {
      this.#failure ??= error;
      this.#notify();
    });
    this.#thread.on("exit", (code) => {
      if (!this.#closing) this.#failure ??= new Error(`The parse thread exited (${code})`);
      this.#notify();
    });
  }

  /** True when every file asked for was read to its end, and the thread neither failed nor is closing. */
  get clean(): boolean {
    return this.#clean && this.#failure === null && !this.#closing && this.#inbox.length === 0;
  }

  /** Gives the thread the next delivery to read; it keeps the process alive again while it has one. */
  open(files: readonly DeliveryFile[], unpackLimits: Partial<UnpackLimits>): void {
    this.#thread.ref();
    this.#post({ kind: "delivery", files: [...files], unpackLimits: { ...unpackLimits } });
  }

  /** Waiting for a delivery, the thread does not keep the process alive (a CLI ingest exits). */
  idle(): void {
    this.#thread.unref();
  }

  /** Starts detecting the encodings of the sources to be read, in this order. */
  prepare(sources: number[]): void {
    this.#clean = false;
    this.#post({ kind: "prepare", sources });
  }

  /** The file's messages in order; ends after its `end` message. Asking for the next one lets the thread parse one more batch. */
  async *read(source: number, file: RecognisedFile, progress: boolean, digest: DigestPlan | null = null, dateFormat: DateFormatSetting = "auto"): AsyncGenerator<ParsedMessage> {
    this.#clean = false;
    this.#post({ kind: "file", source, file, progress, digest, dateFormat });
    const columns = recordColumns(file.entity);
    const make = recordMaker(file.entity, columns);
    for (;;) {
      const reply = await this.#next();
      if (reply.kind === "failed") throw Object.assign(new Error(reply.message), { name: reply.name }, reply.code === undefined ? {} : { code: reply.code });
      if (reply.kind === "end") {
        this.#clean = true;
        yield reply;
        return;
      }
      yield { kind: "batch", issues: reply.issues, rejected: reply.rejected, stats: reply.stats, bytes: reply.bytes, rows: reply.rows, records: unpackRecords(reply.values, columns.length, make) };
      this.#post({ kind: "credit" });
    }
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#thread.terminate();
  }

  #post(request: ParseRequest): void {
    this.#thread.postMessage(request);
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #next(): Promise<ParseReply> {
    for (;;) {
      const reply = this.#inbox.shift();
      if (reply !== undefined) return reply;
      if (this.#failure !== null) throw this.#failure;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}

/**
 * A batch's values, record after record. Usually one string, the values joined by NUL, and what
 * each value was (a string, null, undefined or a number): copying one string between threads and
 * splitting it costs a fraction of cloning ~100k small strings. A batch with a value that cannot
 * travel so (a NUL in a value, another type) goes as a plain array.
 */
export type PackedValues = { text: string; count: number; kinds: Uint8Array | null } | { values: unknown[] };

const STRING = 0;
const NULL = 1;
const UNDEFINED = 2;
const NUMBER = 3;

/** The values of records, `columns` of each in order; `transfer` gets the buffers to move rather than copy. */
export function packRecords(records: readonly unknown[], columns: readonly string[], transfer: ArrayBuffer[]): PackedValues {
  const width = columns.length;
  const count = records.length * width;
  const parts = new Array<string>(count);
  let kinds: Uint8Array | null = null;
  let k = 0;
  for (const record of records as ReadonlyArray<Record<string, unknown>>) {
    for (let j = 0; j < width; j++, k++) {
      const value = record[columns[j]!];
      if (typeof value === "string") {
        if (value.includes("\u0000")) return { values: flatValues(records, columns) };
        parts[k] = value;
        continue;
      }
      kinds ??= new Uint8Array(count);
      if (value === null) kinds[k] = NULL;
      else if (value === undefined) kinds[k] = UNDEFINED;
      else if (typeof value === "number" && Object.is(Number(String(value)), value)) kinds[k] = NUMBER;
      else return { values: flatValues(records, columns) };
      parts[k] = typeof value === "number" ? String(value) : "";
    }
  }
  if (kinds !== null) transfer.push(kinds.buffer as ArrayBuffer);
  return { text: parts.join("\u0000"), count, kinds };
}

function flatValues(records: readonly unknown[], columns: readonly string[]): unknown[] {
  const width = columns.length;
  const values = new Array<unknown>(records.length * width);
  let k = 0;
  for (const record of records as ReadonlyArray<Record<string, unknown>>) {
    for (let j = 0; j < width; j++) values[k++] = record[columns[j]!];
  }
  return values;
}

function unpackValues(packed: PackedValues): unknown[] {
  if ("values" in packed) return packed.values;
  const values: unknown[] = packed.count === 0 ? [] : packed.text.split("\u0000");
  if (values.length !== packed.count) throw new Error(`A parsed batch arrived damaged: ${values.length} values, expected ${packed.count}`);
  const kinds = packed.kinds;
  if (kinds !== null) {
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[k]!;
      if (kind === STRING) continue;
      values[k] = kind === NULL ? null : kind === UNDEFINED ? undefined : Number(values[k]);
    }
  }
  return values;
}

/** Makes a record from `values` starting at `at`, in `recordColumns` order. */
type RecordMaker = (values: readonly unknown[], at: number) => unknown;

/**
 * For the big files, records as object literals of one shape (more than twice as fast to build
 * as adding keys one by one), used while the spec's columns are still the ones written here.
 */
const LITERAL_RECORDS: Partial<Record<EntityName, { columns: string; make: RecordMaker }>> = {
  enrollments: {
    columns: "class_id,student_id,start_date,end_date",
    make: (v, k) => ({ class_id: v[k], student_id: v[k + 1], start_date: v[k + 2], end_date: v[k + 3] }),
  },
  users: {
    columns: "district_user_id,first_name,last_name,role,middle_name,email,username,school_id,grade,student_number,teacher_number,state_id,birth_date,gender,scope",
    make: (v, k) => ({
      district_user_id: v[k],
      first_name: v[k + 1],
      last_name: v[k + 2],
      role: v[k + 3],
      middle_name: v[k + 4],
      email: v[k + 5],
      username: v[k + 6],
      school_id: v[k + 7],
      grade: v[k + 8],
      student_number: v[k + 9],
      teacher_number: v[k + 10],
      state_id: v[k + 11],
      birth_date: v[k + 12],
      gender: v[k + 13],
      scope: v[k + 14],
    }),
  },
};

function recordMaker(entity: EntityName, columns: readonly string[]): RecordMaker {
  const literal = LITERAL_RECORDS[entity];
  if (literal !== undefined && literal.columns === columns.join(",")) return literal.make;
  return (values, at) => {
    const record: Record<string, unknown> = {};
    for (let j = 0; j < columns.length; j++) record[columns[j]!] = values[at + j];
    return record;
  };
}

/** Records from their values: `width` values per record. */
function unpackRecords(packed: PackedValues, width: number, make: RecordMaker): unknown[] {
  const values = unpackValues(packed);
  const count = values.length / width;
  const records = new Array<unknown>(count);
  for (let i = 0; i < count; i++) records[i] = make(values, i * width);
  return records;
}
