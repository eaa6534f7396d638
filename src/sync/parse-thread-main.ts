// Entry of the parse thread (see ParseThread): reads roster files and posts their records in batches.
import { Readable } from "node:stream";
import { parentPort } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import { detectEncoding } from "../intake/decode.ts";
import type { EncodingDetection } from "../intake/decode.ts";
import type { Issue, IssueCode, IssueSink, SeverityCounts } from "../intake/issue.ts";
import { emptyFileStats, readRosterFile } from "../intake/read-roster-file.ts";
import { unpackDelivery } from "../intake/unpack.ts";
import type { RejectedRow } from "../intake/validate-row.ts";
import type { RosterSource } from "../intake/unpack.ts";
import { recordColumns } from "../spec/roster-spec.ts";
import { DigestTracker } from "./line-digest.ts";
import { BATCHES_IN_FLIGHT, packRecords } from "./parse-thread.ts";
import type { ParseReply, ParseRequest } from "./parse-thread.ts";
import { lowerThreadPriority } from "../jobs/lower-thread-priority.ts";

// Uploads and API requests on the server's thread come before reading a sync's files.
lowerThreadPriority();

/** Keeps issues until the next message to the sync's thread, which adds them to the real sink in order. */
class PendingIssues implements IssueSink {
  readonly counts: SeverityCounts = { error: 0, warning: 0, info: 0 };
  readonly #perKey = new Map<string, number>();
  #pending: Issue[] = [];

  add(issue: Issue): void {
    this.#pending.push(issue);
    this.counts[issue.severity]++;
    for (const key of [issue.code, `${issue.code}\u0000${issue.file}`]) this.#perKey.set(key, (this.#perKey.get(key) ?? 0) + 1);
  }

  countOf(code: IssueCode, file?: string): number {
    return this.#perKey.get(file === undefined ? code : `${code}\u0000${file}`) ?? 0;
  }

  take(): Issue[] {
    const issues = this.#pending;
    this.#pending = [];
    return issues;
  }
}

/** Counts bytes as the reader pulls them, for the sync's progress bar. */
function counted(source: RosterSource, onBytes: (bytes: number) => void): RosterSource {
  return {
    name: source.name,
    size: source.size,
    open: async () => {
      const stream = await source.open();
      async function* counting(): AsyncGenerator<Buffer> {
        let bytes = 0;
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          bytes += chunk.length;
          onBytes(Math.min(bytes, source.size));
          yield chunk;
        }
      }
      return Readable.from(counting(), { objectMode: false });
    },
  };
}

/**
 * Serves one delivery after another (see ParseThreads): each `delivery` message unpacks that
 * delivery's files, as the sync's thread did (unpacking is deterministic), and closes the last one's.
 */
function main(port: MessagePort): void {
  /** The delivery being read: its sources, once unpacked. */
  let opened: Promise<Awaited<ReturnType<typeof unpackDelivery>>> | null = null;
  let credits = BATCHES_IN_FLIGHT;
  let wake: (() => void) | null = null;
  const reply = (message: ParseReply, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  /** Detections started ahead, by source; each file's issues wait in its own sink until the file is read. */
  let prepared = new Map<number, { issues: PendingIssues; detection: Promise<EncodingDetection | { failed: IssueCode }> }>();
  let detecting: Promise<unknown> = Promise.resolve();

  async function sourcesOf(): Promise<RosterSource[]> {
    if (opened === null) throw new Error("The parse thread was asked to read before it was given a delivery");
    return (await opened).sources;
  }

  function open(request: Extract<ParseRequest, { kind: "delivery" }>): void {
    const previous = opened;
    opened = (async () => {
      await (await previous?.catch(() => null))?.close();
      return unpackDelivery(request.files, new PendingIssues(), request.unpackLimits);
    })();
    credits = BATCHES_IN_FLIGHT;
    prepared = new Map();
    detecting = Promise.resolve();
  }

  function prepare(indexes: number[]): void {
    for (const index of indexes) {
      const issues = new PendingIssues();
      const detection = detecting.then(async () => detectEncoding((await sourcesOf())[index]!, issues));
      // A failure surfaces when the file is read, as it would have there.
      detecting = detection.catch(() => undefined);
      prepared.set(index, { issues, detection });
    }
  }

  async function readFile(request: Extract<ParseRequest, { kind: "file" }>): Promise<void> {
    const source = (await sourcesOf())[request.source]!;
    const stats = emptyFileStats();
    const ahead = prepared.get(request.source);
    prepared.delete(request.source);
    const issues = ahead?.issues ?? new PendingIssues();
    let bytes = 0;
    const columns = recordColumns(request.file.entity);
    const input = request.progress ? counted(source, (b) => (bytes = b)) : source;
    const tracker = request.digest === null ? null : new DigestTracker(request.file.entity, request.file.stem, request.digest);
    let rejected: RejectedRow[] = [];
    const takeRejected = () => {
      const taken = rejected;
      rejected = [];
      return taken;
    };
    const options = {
      stats,
      duplicates: null,
      dateFormat: request.dateFormat,
      onRejected: (row: RejectedRow) => rejected.push(row),
      ...(ahead ? { detection: ahead.detection } : {}),
      ...(tracker ? { lines: tracker } : {}),
    };
    let digest = null;
    try {
      for await (const batch of readRosterFile(input, request.file, issues, options)) {
        while (credits === 0) await new Promise<void>((resolve) => (wake = resolve));
        credits--;
        const rows = Int32Array.from(batch.rows);
        const transfer = [rows.buffer];
        reply({ kind: "batch", issues: issues.take(), rejected: takeRejected(), stats, bytes, rows, values: packRecords(batch.records, columns, transfer) }, transfer);
      }
      if (tracker !== null && stats.failed === null) digest = tracker.finish();
    } finally {
      tracker?.abandon();
    }
    reply({ kind: "end", issues: issues.take(), rejected: takeRejected(), stats, bytes, digest });
  }

  port.on("message", (request: ParseRequest) => {
    if (request.kind === "credit") {
      credits++;
      const resume = wake;
      wake = null;
      resume?.();
      return;
    }
    if (request.kind === "delivery") {
      open(request);
      return;
    }
    if (request.kind === "prepare") {
      prepare(request.sources);
      return;
    }
    readFile(request).catch((error: unknown) => {
      const e = error instanceof Error ? error : new Error(String(error));
      const code = (e as { code?: unknown }).code;
      reply({ kind: "failed", name: e.name, message: e.message, ...(typeof code === "string" ? { code } : {}) });
    });
  });
}

main(parentPort!);
