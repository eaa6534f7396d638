import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import yazl from "yazl";
import { loadConfig } from "../../src/config.ts";
import { createRosterdock } from "../../src/service.ts";
import type { Rosterdock } from "../../src/service.ts";
import { ROSTER_TABLES } from "../../src/sync/roster-tables.ts";
import type { SyncIssueView } from "../../src/sync/sync-service.ts";

const dirs: string[] = [];
const open: Rosterdock[] = [];
after(async () => {
  for (const rd of open) await rd.close();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-sync-"));
  dirs.push(dir);
  return dir;
}

/** A real Rosterdock on a fresh SQLite data folder. */
export async function startRosterdock(env: NodeJS.ProcessEnv = {}): Promise<Rosterdock> {
  const rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: await tempDir(), ROSTERDOCK_LOG_LEVEL: "silent", ...env }));
  open.push(rd);
  return rd;
}

let districts = 0;
export async function newDistrict(rd: Rosterdock, settings?: object): Promise<string> {
  const slug = `district-${++districts}`;
  const created = await rd.districts.create({ slug, name: slug }, "test");
  if (settings) await rd.database.db.updateTable("districts").set({ settings: JSON.stringify(settings) }).where("id", "=", created.district.id).execute();
  return slug;
}

/** Writes files into a fresh folder; returns the folder. */
export async function writeFiles(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await tempDir();
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, ".."), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

export async function zipBytes(entries: Array<{ name: string; content: string | Buffer }>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const entry of entries) zip.addBuffer(typeof entry.content === "string" ? Buffer.from(entry.content) : entry.content, entry.name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export type RosterSnapshot = Record<string, Array<Record<string, unknown>>>;

/** Every live roster row of the district, sorted, optionally without last_sync_id. */
export function snapshot(rd: Rosterdock, slug: string, options: { withSyncIds?: boolean } = {}): RosterSnapshot {
  const sqlite = rd.database.sqlite!;
  const id = (sqlite.prepare("SELECT id FROM districts WHERE slug = ?").pluck().get(slug) as number);
  const result: RosterSnapshot = {};
  for (const table of ROSTER_TABLES) {
    const rows = sqlite.prepare(`SELECT * FROM ${table.live} WHERE district_id = ? ORDER BY ${table.key.join(", ")}`).all(id) as Array<Record<string, unknown>>;
    result[table.entity] = rows.map((r) => {
      const { district_id: _d, ...rest } = r;
      if (!options.withSyncIds) delete rest.last_sync_id;
      return rest;
    });
  }
  return result;
}

export function rowCount(snapshot: RosterSnapshot): number {
  return Object.values(snapshot).reduce((n, rows) => n + rows.length, 0);
}

/** code@row:column=value, for compact and exact assertions. */
export function brief(issues: readonly SyncIssueView[]): string[] {
  return issues.map((i) => `${i.severity} ${i.code}@${i.row ?? "-"}:${i.column ?? "-"}=${i.value ?? "-"}`);
}
