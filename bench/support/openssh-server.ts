import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { BenchContext } from "../benchmark.ts";
import { exited, freePort, runCommand, stopChild } from "./processes.ts";

const SSHD = "/usr/sbin/sshd";
/** Compiled into Debian's sshd; the system's own service normally creates it. */
const PRIVSEP_DIR = "/run/sshd";

/**
 * A private OpenSSH sshd for comparison: its own config, host key and client key in `dir`,
 * listening on a random loopback port. The system's sshd and its config are never touched.
 */
export class OpensshServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
    readonly port: number,
    readonly user: string,
    readonly clientKey: string,
    readonly uploadDir: string,
  ) {}

  static async start(context: BenchContext, dir: string, options: { sftp: "internal-sftp" | "sftp-server" }): Promise<OpensshServer> {
    if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: apt-get install openssh-server`);
    if (process.getuid?.() !== 0) throw new Error("sshd needs root to run as a server; run the benchmark as root");
    await mkdir(dir, { recursive: true });
    const hostKey = join(dir, "host_ed25519");
    const clientKey = join(dir, "client_ed25519");
    await runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "rosterdock-bench-host", "-f", hostKey]);
    await runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "rosterdock-bench-client", "-f", clientKey]);
    const authorizedKeys = join(dir, "authorized_keys");
    await writeFile(authorizedKeys, await readFile(`${clientKey}.pub`), { mode: 0o600 });
    const uploadDir = join(dir, "uploads");
    await mkdir(uploadDir);

    if (!existsSync(PRIVSEP_DIR)) {
      await mkdir(PRIVSEP_DIR, { mode: 0o755 });
      context.defer(PRIVSEP_DIR, () => rmdir(PRIVSEP_DIR).catch(() => undefined));
    }

    const user = userInfo().username;
    const subsystem = options.sftp === "internal-sftp" ? "internal-sftp" : "/usr/lib/openssh/sftp-server";
    const config = join(dir, "sshd_config");
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      await writeFile(
        config,
        [
          `ListenAddress 127.0.0.1:${port}`,
          `HostKey ${hostKey}`,
          "PidFile none",
          "UsePAM no",
          // Only this loopback sshd, only the generated key, only this user.
          "PermitRootLogin prohibit-password",
          `AllowUsers ${user}`,
          "PubkeyAuthentication yes",
          "PasswordAuthentication no",
          "KbdInteractiveAuthentication no",
          `AuthorizedKeysFile ${authorizedKeys}`,
          "StrictModes no",
          "AllowTcpForwarding no",
          "X11Forwarding no",
          "PermitTTY no",
          "PrintMotd no",
          `Subsystem sftp ${subsystem}`,
          "LogLevel INFO",
          "",
        ].join("\n"),
      );
      await runCommand(SSHD, ["-t", "-f", config]);
      const child = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
      const listening = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 10_000);
        void exited(child).then(() => resolve(false));
        createInterface({ input: child.stderr! }).on("line", (line) => {
          if (line.startsWith("Server listening on")) {
            clearTimeout(timer);
            resolve(true);
          } else if (/error|fatal|bind/i.test(line)) {
            process.stderr.write(`[sshd] ${line}\n`);
          }
        });
      });
      if (listening) {
        context.defer("sshd", () => stopChild(child));
        return new OpensshServer(child, child.pid!, port, user, clientKey, uploadDir);
      }
      await stopChild(child);
      // Another process may have taken the port between freePort() and sshd's bind.
      if (attempt >= 3) throw new Error("sshd did not start listening");
    }
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
  }
}
