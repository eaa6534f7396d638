import { spawn, type ChildProcess } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { BenchContext } from "../benchmark.ts";
import { runCommand, stopChild } from "./processes.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

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
    private readonly bin: string,
    private readonly env: NodeJS.ProcessEnv,
    readonly pid: number,
    readonly sftpPort: number,
    readonly dataDir: string,
    readonly slug: string,
    readonly username: string,
    readonly password: string,
    private readonly districtId: number,
  ) {}

  /** `root`: the checkout whose server is measured (this one by default; another lets a patch be compared). */
  static async start(context: BenchContext, dir: string, options: { root: string; slug: string; cpuProfileDir?: string }): Promise<RosterdockServer> {
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
      ROSTERDOCK_LOG_LEVEL: "info",
      ROSTERDOCK_MAX_UPLOAD_BYTES: String(64 * 1024 ** 3),
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
    const started = await new Promise<{ sftpPort: number }>((resolve, reject) => {
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
          const entry = JSON.parse(line) as { event?: string; sftpPort?: number };
          if (entry.event === "server.started" && typeof entry.sftpPort === "number") {
            clearTimeout(timer);
            resolve({ sftpPort: entry.sftpPort });
          }
          if (typeof (entry as { level?: number }).level === "number" && (entry as { level: number }).level >= 50) {
            process.stderr.write(`[rosterdock] ${line}\n`);
          }
        } catch {
          process.stderr.write(`[rosterdock] ${line}\n`);
        }
      });
    });
    return new RosterdockServer(child, bin, env, child.pid!, started.sftpPort, dataDir, options.slug, created.sftp.username, created.sftp.password, shown.id);
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
