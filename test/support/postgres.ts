import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** Debian's PostgreSQL 15 (package `postgresql`); ROSTERDOCK_TEST_PG_BIN points elsewhere. */
const PG_BIN = process.env.ROSTERDOCK_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";

/**
 * Why PostgreSQL tests cannot run here, or undefined when they can. In CI (`CI=true`) missing
 * binaries are an error, as with every other tool the tests need.
 */
export function postgresMissing(): string | undefined {
  if (process.env.ROSTERDOCK_TEST_POSTGRES_URL) return undefined;
  const missing = ["initdb", "pg_ctl", "postgres"].filter((tool) => !existsSync(join(PG_BIN, tool)));
  if (missing.length === 0 && (!isRoot() || postgresUser() !== undefined)) return undefined;
  const reason = missing.length > 0 ? `PostgreSQL binaries (${missing.join(", ")}) are not in ${PG_BIN}` : "there is no `postgres` OS user to run PostgreSQL as";
  if (process.env.CI === "true") throw new Error(`${reason}; PostgreSQL is required (installed by .ci/run)`);
  return reason;
}

/** A PostgreSQL server for one test file; each suite takes a database of its own. */
export interface PostgresServer {
  /** Creates an empty database and returns its `postgres://` URL (for ROSTERDOCK_DATABASE_URL). */
  createDatabase(prefix?: string): Promise<string>;
  /** Drops the databases created here, and stops and removes a throwaway cluster. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a throwaway cluster: initdb into a temp folder, a random free port on 127.0.0.1, the
 * unix socket in the same folder, fsync off. As root (postgres refuses to run as root) the
 * binaries run as the `postgres` OS user, which owns the folder. With ROSTERDOCK_TEST_POSTGRES_URL
 * (a superuser URL of a server already running) no cluster is started; databases are made there.
 */
export async function startPostgres(options: { durable?: boolean; settings?: Record<string, string> } = {}): Promise<PostgresServer> {
  const existing = process.env.ROSTERDOCK_TEST_POSTGRES_URL;
  if (existing) return new Databases(existing, async () => undefined);

  const dir = await mkdtemp(join(tmpdir(), "rosterdock-pg-"));
  const dataDir = join(dir, "data");
  const logFile = join(dir, "postgres.log");
  const owner = isRoot() ? postgresUser() : undefined;
  let started = false;
  const stopCluster = () => {
    if (started) pgTool(owner, "pg_ctl", ["-D", dataDir, "-m", "immediate", "-w", "stop"]);
    started = false;
  };
  // A test process that exits without its after() hooks (an uncaught error, Ctrl-C) still stops and removes the cluster.
  const onExit = () => {
    stopCluster();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    onExit();
    process.kill(process.pid, signal);
  };
  const cleanup = async () => {
    process.off("exit", onExit);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    stopCluster();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    if (owner) await chown(dir, owner.uid, owner.gid);
    check(
      pgTool(owner, "initdb", ["-D", dataDir, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]),
      "initdb",
    );
    process.once("exit", onExit);
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    // The free port may be taken between finding it and binding it: try another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      // Tests trade durability for speed; a benchmark keeps PostgreSQL's defaults (`durable`).
      const settings = { ...(options.durable ? {} : { fsync: "off", synchronous_commit: "off", full_page_writes: "off" }), max_connections: "50", ...options.settings };
      const serverOptions = [`-p ${port}`, "-h 127.0.0.1", `-k ${dir}`, ...Object.entries(settings).map(([name, value]) => `-c ${name}=${value}`)].join(" ");
      started = true;
      const start = pgTool(owner, "pg_ctl", ["-D", dataDir, "-l", logFile, "-w", "-t", "60", "-o", serverOptions, "start"]);
      if (start.status === 0) return new Databases(`postgres://postgres@127.0.0.1:${port}/postgres`, cleanup);
      stopCluster();
      const log = await readFile(logFile, "utf8").catch(() => "");
      if (attempt >= 3 || !/could not bind|address already in use/i.test(log)) throw new Error(`pg_ctl start failed (${start.status}): ${start.stderr}\n${log}`);
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
}

class Databases implements PostgresServer {
  readonly #created: string[] = [];
  #stopped = false;

  constructor(
    private readonly adminUrl: string,
    private readonly cleanup: () => Promise<void>,
  ) {}

  async createDatabase(prefix = "rosterdock_test"): Promise<string> {
    const name = `${prefix}_${process.pid}_${this.#created.length + 1}`.replace(/[^a-z0-9_]/gi, "_").toLowerCase();
    await this.#admin(`CREATE DATABASE "${name}"`);
    this.#created.push(name);
    const url = new URL(this.adminUrl);
    url.pathname = `/${name}`;
    return url.toString();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      // Only matters for a server the tests did not start: a throwaway cluster is deleted whole.
      if (process.env.ROSTERDOCK_TEST_POSTGRES_URL) {
        for (const name of this.#created) await this.#admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }
    } finally {
      await this.cleanup();
    }
  }

  async #admin(statement: string): Promise<void> {
    const client = new pg.Client({ connectionString: this.adminUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  }
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const uid = spawnSync("id", ["-u", "postgres"], { encoding: "utf8" });
  const gid = spawnSync("id", ["-g", "postgres"], { encoding: "utf8" });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** Runs a PostgreSQL binary, as the `postgres` user when we are root. */
function pgTool(owner: { uid: number } | undefined, tool: string, args: string[]): SpawnSyncReturns<string> {
  const command = join(PG_BIN, tool);
  const [file, argv] = owner ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  return spawnSync(file, argv, { encoding: "utf8", cwd: tmpdir(), timeout: 90_000 });
}

function check(result: SpawnSyncReturns<string>, what: string): void {
  if (result.status !== 0) throw new Error(`${what} failed (${result.status ?? result.signal}): ${result.stderr || result.error?.message}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
