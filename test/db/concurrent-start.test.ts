import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import pino from "pino";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { loadConfig } from "../../src/config.ts";
import { migrationProvider } from "../../src/db/migrations/index.ts";
import { POSTGRES_DIALECT } from "../../src/db/dialect-info.ts";
import { openDatabase } from "../../src/db/open-database.ts";
import { postgresMissing, startPostgres, type PostgresServer } from "../support/postgres.ts";

const NODES = 4;

describe("several nodes starting together on one new PostgreSQL database", { skip: postgresMissing() }, () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  const dirs: string[] = [];
  const nodes: Rosterdock[] = [];

  before(async () => {
    postgres = await startPostgres();
    databaseUrl = await postgres.createDatabase();
  });

  after(async () => {
    await Promise.allSettled(nodes.map((rd) => rd.close()));
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    await postgres?.stop();
  });

  async function query<T>(text: string): Promise<T[]> {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      return (await client.query(text)).rows as T[];
    } finally {
      await client.end();
    }
  }

  it("migrates once under kysely's advisory lock, and every node then reads the same host keys and settings", async () => {
    const configs = await Promise.all(
      Array.from({ length: NODES }, async () => {
        const dir = await mkdtemp(join(tmpdir(), "rosterdock-node-"));
        dirs.push(dir);
        return loadConfig({ ROSTERDOCK_DATA_DIR: dir, ROSTERDOCK_DATABASE_URL: databaseUrl });
      }),
    );
    // All at once: each opens the database and runs the migrator.
    const started = await Promise.allSettled(configs.map((config) => createRosterdock(config, { logger: pino({ level: "silent" }) })));
    for (const result of started) if (result.status === "fulfilled") nodes.push(result.value);
    assert.deepEqual(
      started.map((r) => (r.status === "rejected" ? String(r.reason) : "ok")),
      Array<string>(NODES).fill("ok"),
    );

    const expected = Object.keys(await migrationProvider(POSTGRES_DIALECT).getMigrations()).sort();
    const applied = await query<{ name: string }>("SELECT name FROM kysely_migration ORDER BY name");
    assert.deepEqual(
      applied.map((r) => r.name),
      expected,
    );
    assert.deepEqual(await query("SELECT is_locked FROM kysely_migration_lock"), [{ is_locked: 0 }]);

    // Host keys and the console's session secret are made on first use: racing, every node gets the same.
    const keys = await Promise.all(nodes.map((rd) => rd.hostKeys()));
    const fingerprints = keys.map((list) => list.map((k) => `${k.algorithm} ${k.sha256}`));
    for (const list of fingerprints) assert.deepEqual(list, fingerprints[0]);
    assert.equal(fingerprints[0]!.length, 3);
    assert.deepEqual(await query("SELECT count(*)::int AS n FROM host_keys"), [{ n: 3 }]);
    const secrets = await Promise.all(nodes.map((rd) => rd.settings.consoleSessionSecret()));
    assert.equal(new Set(secrets).size, 1);
  });

  it("opens a migrated database while another session creates and drops tables (a sync's staging and partitions-to-be)", async () => {
    const churn = new pg.Client({ connectionString: databaseUrl });
    await churn.connect();
    let stop = false;
    const churning = (async () => {
      for (let round = 0; !stop; round++) {
        const names = Array.from({ length: 20 }, (_, i) => `public."roster_users_sync${900_000 + round * 20 + i}"`);
        for (const name of names) await churn.query(`CREATE TABLE ${name} (LIKE public.roster_users)`);
        for (const name of names) await churn.query(`DROP TABLE ${name}`);
      }
    })();
    try {
      const dir = await mkdtemp(join(tmpdir(), "rosterdock-node-"));
      dirs.push(dir);
      // Every CLI command and node opens the database: none may fail on a table gone between two looks.
      const failures: string[] = [];
      for (let i = 0; i < 25; i++) {
        try {
          await (await openDatabase({ dataDir: dir, databaseUrl })).close();
        } catch (error) {
          failures.push(String(error));
        }
      }
      assert.deepEqual(failures, []);
    } finally {
      stop = true;
      await churning;
      await churn.end();
    }
  });
});
