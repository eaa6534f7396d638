import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import type { CanonicalRecord } from "../../src/spec/roster-spec.ts";
import { MemoryIssueSink } from "../../src/intake/issue.ts";
import type { Issue } from "../../src/intake/issue.ts";
import { emptyFileStats, readRosterFile } from "../../src/intake/read-roster-file.ts";
import type { FileStats, ReadRosterFileOptions } from "../../src/intake/read-roster-file.ts";
import { recogniseFile } from "../../src/intake/recognise-file.ts";
import { unpackDelivery } from "../../src/intake/unpack.ts";
import type { RosterSource } from "../../src/intake/unpack.ts";

const dirs: string[] = [];
// Registered at import, on the root: registered inside a test, it would run after that test only.
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A fresh temporary folder, removed after the test file. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-intake-"));
  dirs.push(dir);
  return dir;
}

export async function writeTemp(name: string, content: string | Buffer): Promise<string> {
  const path = join(await tempDir(), name);
  await writeFile(path, content);
  return path;
}

export interface ReadResult {
  records: CanonicalRecord[];
  rows: number[];
  issues: Issue[];
  stats: FileStats;
  sink: MemoryIssueSink;
}

export async function readSource(source: RosterSource, options: ReadRosterFileOptions = {}, sink = new MemoryIssueSink()): Promise<ReadResult> {
  const file = recogniseFile(source.name);
  if (file === null) throw new Error(`unrecognised test file ${source.name}`);
  const stats = emptyFileStats();
  const records: CanonicalRecord[] = [];
  const rows: number[] = [];
  for await (const batch of readRosterFile(source, file, sink, { ...options, stats })) {
    records.push(...batch.records);
    rows.push(...batch.rows);
  }
  return { records, rows, issues: sink.kept, stats, sink };
}

/** Writes `content` as `name` and reads it as a roster file. */
export async function readContent(name: string, content: string | Buffer, options: ReadRosterFileOptions = {}): Promise<ReadResult> {
  const path = await writeTemp(name, content);
  const sink = new MemoryIssueSink();
  const { sources, close } = await unpackDelivery([{ name, path }], sink);
  try {
    return await readSource(sources[0]!, options, sink);
  } finally {
    await close();
  }
}

/** code@row:column=value for compact, exact assertions. */
export function brief(issues: readonly Issue[]): string[] {
  return issues.map((i) => `${i.severity} ${i.code}@${i.row ?? "-"}:${i.column ?? "-"}=${i.value ?? "-"}`);
}
