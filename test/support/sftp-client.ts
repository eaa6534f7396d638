import { spawn, spawnSync } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** In CI every tool the tests need must be there: a missing one fails instead of skipping. */
export function requireTool(command: string, args: string[] = ["-V"]): string | undefined {
  const found = spawnSync(command, args, { stdio: "ignore" }).error === undefined;
  if (found) return undefined;
  if (process.env.CI === "true") throw new Error(`${command} is required (installed by .ci/run)`);
  return `${command} is not installed`;
}

export interface SftpRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SftpLogin {
  port: number;
  username: string;
  password: string;
}

/** A password-answering SSH_ASKPASS script in `dir`, since OpenSSH reads passwords only from a terminal or askpass. */
async function askpass(dir: string, password: string): Promise<string> {
  const script = join(dir, "askpass.sh");
  await writeFile(script, `#!/bin/sh\nprintf '%s\\n' '${password.replace(/'/g, "'\\''")}'\n`);
  await chmod(script, 0o700);
  return script;
}

/** `extra` comes first: ssh keeps the first value it reads for an option, so extra options override these. */
export function sftpArgs(login: SftpLogin, extra: string[] = []): string[] {
  return [
    ...extra,
    "-o", "BatchMode=no",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "PreferredAuthentications=password",
    "-o", "LogLevel=ERROR",
    "-P", String(login.port),
  ];
}

/** Runs OpenSSH's `sftp -b` with the password method, in `cwd`. */
export async function runSftp(login: SftpLogin, commands: string[], options: { cwd?: string; extra?: string[]; onSpawn?: (pid: number) => void } = {}): Promise<SftpRun> {
  // One private folder per run for the askpass script and the batch file, removed when sftp exits.
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-sftp-"));
  const script = await askpass(dir, login.password);
  const batch = join(dir, "batch");
  await writeFile(batch, commands.join("\n") + "\n");
  return new Promise((resolve) => {
    const child = spawn("sftp", [...sftpArgs(login, options.extra), "-b", batch, `${login.username}@127.0.0.1`], {
      cwd: options.cwd,
      env: { ...process.env, SSH_ASKPASS: script, SSH_ASKPASS_REQUIRE: "force", DISPLAY: "rosterdock-test" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    if (child.pid) options.onSpawn?.(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      void rm(dir, { recursive: true, force: true }).finally(() => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    });
  });
}

/**
 * One SSH connection that many `sftp` runs share, each a session of its own on it (OpenSSH's
 * ControlMaster): the first run opens it and leaves it in the background, later runs skip the key
 * exchange and the password. For tests that send many small batches whose point is not the login.
 */
export class SharedSftpConnection {
  private constructor(private readonly dir: string, private readonly login: SftpLogin) {}

  static async open(login: SftpLogin): Promise<SharedSftpConnection> {
    return new SharedSftpConnection(await mkdtemp(join(tmpdir(), "rosterdock-ssh-mux-")), login);
  }

  /** The options that make a run use (or open) the shared connection. */
  get options(): string[] {
    return ["-o", "ControlMaster=auto", "-o", `ControlPath=${join(this.dir, "mux")}`, "-o", "ControlPersist=yes"];
  }

  run(commands: string[], options: { cwd?: string } = {}): Promise<SftpRun> {
    return runSftp(this.login, commands, { ...options, extra: this.options });
  }

  /** Ends the background connection and removes its socket's folder. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      const child = spawn("ssh", [...this.options, "-O", "exit", "-p", String(this.login.port), `${this.login.username}@127.0.0.1`], { stdio: "ignore" });
      child.on("close", () => resolve());
      child.on("error", () => resolve());
    });
    await rm(this.dir, { recursive: true, force: true });
  }
}
