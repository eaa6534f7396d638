import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = join(ROOT, "bin", "rosterdock");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A data folder of its own, and the environment that points Rosterdock at it. */
export class RosterdockHome {
  private constructor(
    readonly dataDir: string,
    readonly env: NodeJS.ProcessEnv,
  ) {}

  static async create(extraEnv: NodeJS.ProcessEnv = {}): Promise<RosterdockHome> {
    const dataDir = await mkdtemp(join(tmpdir(), "rosterdock-test-"));
    return new RosterdockHome(dataDir, {
      ...process.env,
      ROSTERDOCK_DATA_DIR: dataDir,
      ROSTERDOCK_HOST: "127.0.0.1",
      ROSTERDOCK_PUBLIC_HOST: "127.0.0.1",
      ROSTERDOCK_SFTP_PORT: "0",
      ROSTERDOCK_HTTP_PORT: "0",
      ROSTERDOCK_QUIET_SECONDS: "2",
      ROSTERDOCK_LOG_LEVEL: "info",
      ...extraEnv,
    });
  }

  /** Runs `rosterdock ARGS` to completion. */
  cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile(BIN, args, { env: { ...this.env, ...env }, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Runs a command that must succeed with `--json`, and parses its output. */
  async json<T = any>(args: string[]): Promise<T> {
    const result = await this.cli([...args, "--json"]);
    if (result.code !== 0) throw new Error(`rosterdock ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  async createDistrict(slug: string, extra: string[] = []): Promise<{ username: string; password: string; port: number }> {
    const created = await this.json(["district", "create", slug, "--name", `${slug} district`, ...extra]);
    return created.sftp;
  }

  /** `shell` runs first in the shell that starts the server, e.g. `ulimit -H -n 400`. */
  async serve(env: NodeJS.ProcessEnv = {}, options: { shell?: string } = {}): Promise<ServerProcess> {
    return ServerProcess.start(this, env, options);
  }

  async remove(): Promise<void> {
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** `rosterdock serve` as a child process, on random loopback ports. */
export class ServerProcess {
  readonly logs: any[] = [];
  private exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly sftpPort: number,
    readonly httpPort: number,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once("exit", (code) => resolve(code));
    });
  }

  static async start(home: RosterdockHome, env: NodeJS.ProcessEnv = {}, options: { shell?: string } = {}): Promise<ServerProcess> {
    const [command, args] = options.shell ? ["sh", ["-c", `${options.shell} && exec "$0" serve`, BIN]] : [BIN, ["serve"]];
    const child = spawn(command, args, { env: { ...home.env, ...env }, stdio: ["ignore", "inherit", "pipe"] });
    const logs: any[] = [];
    const lines = createInterface({ input: child.stderr! });
    const started = await new Promise<{ sftpPort: number; httpPort: number }>((resolve, reject) => {
      // Generous: on a machine loaded by other test files a start (migrations included) can take half a minute.
      // A server that did not start is killed: left running, it would keep the test file from ever ending.
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`serve did not start within 90 s:\n${JSON.stringify(logs.slice(-5))}`));
      }, 90_000);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`serve exited with ${code}: ${JSON.stringify(logs.slice(-20))}`));
      });
      lines.on("line", (line) => {
        let entry: any;
        try {
          entry = JSON.parse(line);
        } catch {
          entry = { raw: line };
        }
        logs.push(entry);
        if (entry.event === "server.started") {
          clearTimeout(timer);
          resolve({ sftpPort: entry.sftpPort, httpPort: entry.httpPort });
        }
      });
    });
    const server = new ServerProcess(child, started.sftpPort, started.httpPort);
    lines.on("line", () => undefined);
    server.logs.push(...logs);
    lines.removeAllListeners("line");
    lines.on("line", (line) => {
      try {
        server.logs.push(JSON.parse(line));
      } catch {
        server.logs.push({ raw: line });
      }
    });
    return server;
  }

  /** Waits until a log entry matches, or fails after `timeoutMs`. */
  async waitForLog(predicate: (entry: any) => boolean, timeoutMs = 20_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.logs.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no matching log entry; last: ${JSON.stringify(this.logs.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM, and the exit code. */
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }

  /** A crash: SIGKILL, no chance to clean up. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    await this.exited;
  }
}

/**
 * Checks until `check` gives a value. A check that is itself slow (one that starts the CLI, about
 * a second of CPU) is followed by a pause as long as it took: polling then takes at most half a
 * core, and leaves the rest to the server it waits for and to the test files beside it.
 */
export async function waitFor<T>(check: () => Promise<T | undefined | false>, timeoutMs = 20_000, what = "condition", everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const started = Date.now();
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, Math.max(everyMs, Date.now() - started)));
  }
}
