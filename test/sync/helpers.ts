import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { sql } from "../../src/db/kysely.ts";
import yazl from "yazl";
import { loadConfig } from "../../src/config.ts";
import { createRosterdock } from "../../src/service.ts";
import type { Rosterdock } from "../../src/service.ts";
import { ROSTER_TABLES } from "../../src/sync/roster-tables.ts";
import type { SyncIssueView } from "../../src/sync/sync-service.ts";
import { BackendHomes } from "../support/backends.ts";
import type { Backend, BackendName } from "../support/backends.ts";

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

/** The backend of the suite running now (see `forEachBackend`); SQLite outside one. */
let currentHomes: BackendHomes | null = null;

export function currentBackend(): BackendName {
  return currentHomes?.backend ?? "sqlite";
}

/**
 * The suite once per database backend (`selectedBackends()`, see test/support/backends.ts), its
 * title naming the backend: `startRosterdock` inside it opens a Rosterdock on that backend. The
 * caller passes `selectedBackends()` itself: scripts/run-tests.mjs runs a file on PostgreSQL
 * when its text calls it.
 */
export function forEachBackend(backends: readonly Backend[], title: string, body: (backend: BackendName) => void): void {
  for (const backend of backends) {
    describe(`${title} (${backend.name})`, { skip: backend.skip }, () => {
      const homes = new BackendHomes(backend.name);
      before(() => {
        currentHomes = homes;
      });
      after(async () => {
        if (currentHomes === homes) currentHomes = null;
        // The suite's Rosterdocks go before the database server they are connected to.
        for (const rd of open.splice(0)) await rd.close();
        await homes.close();
      });
      body(backend.name);
    });
  }
}

/** A real Rosterdock on a fresh data folder, and a fresh database on the suite's backend. */
export async function startRosterdock(env: NodeJS.ProcessEnv = {}): Promise<Rosterdock> {
  const home = currentHomes === null ? { env: { ROSTERDOCK_DATA_DIR: await tempDir() } } : await currentHomes.create();
  if (currentHomes !== null) dirs.push(home.env.ROSTERDOCK_DATA_DIR!);
  const rd = await createRosterdock(loadConfig({ ...home.env, ROSTERDOCK_LOG_LEVEL: "silent", ...env }));
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
export async function snapshot(rd: Rosterdock, slug: string, options: { withSyncIds?: boolean } = {}): Promise<RosterSnapshot> {
  const db = rd.database.db;
  const { id } = await db.selectFrom("districts").select("id").where("slug", "=", slug).executeTakeFirstOrThrow();
  const result: RosterSnapshot = {};
  for (const table of ROSTER_TABLES) {
    // Sorted as SQLite sorts text (by bytes), whatever the database's collation.
    const order = table.key.map((k) => (rd.database.dialect.name === "postgres" ? `"${k}" COLLATE "C"` : `"${k}"`)).join(", ");
    const { rows } = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table.live)} WHERE district_id = ${id} ORDER BY ${sql.raw(order)}`.execute(db);
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
