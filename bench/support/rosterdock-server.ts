import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "../benchmark.ts";
import { runCommand, stopChild } from "./processes.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface LogEntry {
  event?: string;
  level?: number;
  [field: string]: unknown;
}

export interface UploadRecord {
  path: string;
  status: string;
  size: number;
  sha256: string | null;
}

/** `rosterdock serve` as a child process: its own data folder, random loopback ports, one district. */
export class RosterdockServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly bin: string,
    readonly env: NodeJS.ProcessEnv,
    readonly pid: number,
    readonly sftpPort: number,
    readonly httpPort: number,
    readonly dataDir: string,
    readonly slug: string,
    readonly username: string,
    readonly password: string,
    private readonly districtId: number,
    private readonly logListeners: Set<(entry: LogEntry) => void>,
  ) {}

  /**
   * `root`: the checkout whose server is measured (this one by default; another lets a patch be compared).
   * `env`: settings over the benchmark's defaults below.
   */
  static async start(context: BenchContext, dir: string, options: { root: string; slug: string; cpuProfileDir?: string; env?: NodeJS.ProcessEnv }): Promise<RosterdockServer> {
    const bin = join(options.root, "bin", "rosterdock");
    const dataDir = join(dir, "data");
    await mkdir(dataDir, { recursive: true });
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ROSTERDOCK_DATA_DIR: dataDir,
      ROSTERDOCK_HOST: "127.0.0.1",
      ROSTERDOCK_PUBLIC_HOST: "127.0.0.1",
      ROSTERDOCK_SFTP_PORT: "0",
      ROSTERDOCK_HTTP_PORT: "0",
      // No delivery may close (and start processing random bytes) while we measure.
      ROSTERDOCK_QUIET_SECONDS: String(7 * 24 * 3600),
      ROSTERDOCK_MAX_UPLOAD_BYTES: String(64 * 1024 ** 3),
      ...options.env,
      // Whatever the caller's environment says: the start and the events measured are read off info-level lines.
      ROSTERDOCK_LOG_LEVEL: "info",
    };
    const cli = async (args: string[]) => JSON.parse((await runCommand(bin, [...args, "--json"], { env })).stdout) as Record<string, unknown>;
    const created = (await cli(["district", "create", options.slug, "--name", "Benchmark district"])) as { sftp: { username: string; password: string } };
    const shown = (await cli(["district", "show", options.slug])) as { id: number };

    // What bin/rosterdock runs, plus --cpu-prof (which NODE_OPTIONS may not carry).
    const command = options.cpuProfileDir
      ? ["node", "--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`, "--import", join(options.root, "node_modules/tsx/dist/esm/index.mjs"), join(options.root, "src/cli/main.ts"), "serve"]
      : [bin, "serve"];
    const child = spawn(command[0]!, command.slice(1), { env, stdio: ["ignore", "ignore", "pipe"] });
    context.defer("rosterdock serve", () => stopChild(child, 10_000));
    const tail: string[] = [];
    const logListeners = new Set<(entry: LogEntry) => void>();
    const started = await new Promise<{ sftpPort: number; httpPort: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`rosterdock serve did not start in 30 s:\n${tail.join("\n")}`)), 30_000);
      // "close", not "exit": by then its last words on stderr have been read.
      child.once("close", () => {
        clearTimeout(timer);
        reject(new Error(`rosterdock serve exited (${child.exitCode ?? child.signalCode}):\n${tail.join("\n")}`));
      });
      createInterface({ input: child.stderr! }).on("line", (line) => {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        try {
          const entry = JSON.parse(line) as LogEntry & { sftpPort?: number; httpPort?: number };
          for (const listener of logListeners) listener(entry);
          if (entry.event === "server.started" && typeof entry.sftpPort === "number") {
            clearTimeout(timer);
            resolve({ sftpPort: entry.sftpPort, httpPort: entry.httpPort ?? 0 });
          }
          if (typeof (entry as { level?: number }).level === "number" && (entry as { level: number }).level >= 50) {
            process.stderr.write(`[rosterdock] ${line}\n`);
          }
        } catch {
          process.stderr.write(`[rosterdock] ${line}\n`);
        }
      });
    });
    return new RosterdockServer(child, bin, env, child.pid!, started.sftpPort, started.httpPort, dataDir, options.slug, created.sftp.username, created.sftp.password, shown.id, logListeners);
  }

  /** `rosterdock ARGS --json` against the server's data folder (the CLI works beside a running server). */
  async cli<T = unknown>(args: string[]): Promise<T> {
    return JSON.parse((await runCommand(this.bin, [...args, "--json"], { env: this.env })).stdout) as T;
  }

  /** Another district; its SFTP login. */
  async createDistrict(slug: string): Promise<{ username: string; password: string }> {
    const created = await this.cli<{ sftp: { username: string; password: string } }>(["district", "create", slug, "--name", `Benchmark district ${slug}`]);
    return created.sftp;
  }

  /** Calls `listener` with each JSON log entry the server writes from now on; returns how to stop. */
  onLog(listener: (entry: LogEntry) => void): () => void {
    this.logListeners.add(listener);
    return () => this.logListeners.delete(listener);
  }

  /** Where a file uploaded as `/NAME` ends up. */
  homePath(name: string): string {
    return join(this.dataDir, "districts", String(this.districtId), "home", name);
  }

  async uploads(): Promise<UploadRecord[]> {
    const { stdout } = await runCommand(this.bin, ["uploads", this.slug, "--json", "--limit", "1000"], { env: this.env });
    return JSON.parse(stdout) as UploadRecord[];
  }

  async stop(): Promise<void> {
    await stopChild(this.child, 10_000);
  }
}
