import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { postgresMissing, startPostgres, type PostgresServer } from "./postgres.ts";

export type BackendName = "sqlite" | "postgres";

/**
 * The database backends a suite runs against: ROSTERDOCK_TEST_DB=sqlite|postgres|all (default
 * all, so `npm test` covers both). `skip` is set when the backend cannot run here.
 */
export interface Backend {
  readonly name: BackendName;
  readonly skip: string | undefined;
}

export function selectedBackends(): Backend[] {
  const chosen = (process.env.ROSTERDOCK_TEST_DB ?? "all").trim().toLowerCase() || "all";
  const names: BackendName[] = chosen === "all" ? ["sqlite", "postgres"] : chosen === "sqlite" || chosen === "postgres" ? [chosen] : [];
  if (names.length === 0) throw new Error(`ROSTERDOCK_TEST_DB must be sqlite, postgres or all, got "${chosen}"`);
  return names.map((name) => ({ name, skip: name === "postgres" ? postgresMissing() : undefined }));
}

/** A data folder and, on PostgreSQL, a fresh database: the environment for `loadConfig`. */
export interface BackendHome {
  readonly env: Record<string, string>;
  remove(): Promise<void>;
}

/**
 * Hands out homes on one backend. On PostgreSQL one throwaway cluster serves the whole test
 * file (started on first use) and every home gets a database of its own; `close()` stops it.
 */
export class BackendHomes {
  #postgres: Promise<PostgresServer> | undefined;

  constructor(readonly backend: BackendName) {}

  async create(extraEnv: Record<string, string> = {}): Promise<BackendHome> {
    const dataDir = await mkdtemp(join(tmpdir(), `rosterdock-${this.backend}-`));
    const env: Record<string, string> = { ROSTERDOCK_DATA_DIR: dataDir, ...extraEnv };
    if (this.backend === "postgres") {
      try {
        env.ROSTERDOCK_DATABASE_URL = await (await (this.#postgres ??= startPostgres())).createDatabase();
      } catch (error) {
        await rm(dataDir, { recursive: true, force: true });
        throw error;
      }
    }
    return { env, remove: () => rm(dataDir, { recursive: true, force: true }) };
  }

  async close(): Promise<void> {
    const postgres = this.#postgres;
    this.#postgres = undefined;
    if (postgres) await (await postgres.catch(() => undefined))?.stop();
  }
}
