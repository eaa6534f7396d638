import { spawn } from "node:child_process";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { exited } from "./processes.ts";

export type SftpAuth = { kind: "password"; askpass: string } | { kind: "key"; keyFile: string };

export interface UploadRequest {
  port: number;
  user: string;
  auth: SftpAuth;
  /** `-o Ciphers=…`; unset leaves the client's default list. */
  cipher?: string;
  /** `-o MACs=…`; unset leaves the client's default list (which matters for non-AEAD ciphers only). */
  macs: string | undefined;
  localFile: string;
  remotePath: string;
  /** `put -f`: the client asks the server to fsync the file before closing it. */
  fsync: boolean;
  /** Where the batch file goes. */
  workDir: string;
  /** `-o BindAddress=…`: the local address the connection comes from (any 127.x.y.z on Linux's loopback). */
  bindAddress?: string;
  /** The client is killed, and the upload fails, past this (default: no limit). */
  timeoutMs?: number;
}

export interface UploadTiming {
  /** From sftp echoing `put` to it echoing `bye`: open, writes, (fsync), close. */
  transferSeconds: number;
  /** The whole client process: connection, key exchange, login, transfer, exit. */
  totalSeconds: number;
  negotiated: { server: string; kex: string; hostKey: string; cipher: string; mac: string };
}

/**
 * Writes an SSH_ASKPASS script that answers with `password` (OpenSSH reads passwords only from a
 * terminal or askpass). Its folder must be private.
 */
export async function writeAskpass(dir: string, password: string): Promise<string> {
  const script = join(dir, "askpass.sh");
  await writeFile(script, `#!/bin/sh\nprintf '%s\\n' '${password.replace(/'/g, "'\\''")}'\n`, { mode: 0o700 });
  await chmod(script, 0o700);
  return script;
}

/** One upload with OpenSSH's `sftp -b`, timed from its own echo of the batch commands. */
export async function sftpUpload(request: UploadRequest): Promise<UploadTiming> {
  const batch = join(request.workDir, "batch");
  const quote = (path: string) => `"${path.replace(/(["\\])/g, "\\$1")}"`;
  await writeFile(batch, `put ${request.fsync ? "-f " : ""}${quote(request.localFile)} ${quote(request.remotePath)}\nbye\n`);
  const auth =
    request.auth.kind === "password"
      ? ["-o", "BatchMode=no", "-o", "PreferredAuthentications=password", "-o", "PubkeyAuthentication=no"]
      : ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", "-o", "IdentitiesOnly=yes", "-i", request.auth.keyFile];
  const args = [
    // No user or system ssh_config: the same client settings for both servers.
    "-F", "/dev/null",
    "-v",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "Compression=no",
    ...(request.cipher ? ["-o", `Ciphers=${request.cipher}`] : []),
    ...(request.bindAddress ? ["-o", `BindAddress=${request.bindAddress}`] : []),
    ...(request.macs ? ["-o", `MACs=${request.macs}`] : []),
    ...auth,
    "-P", String(request.port),
    "-b", batch,
    `${request.user}@127.0.0.1`,
  ];
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (request.auth.kind === "password") Object.assign(env, { SSH_ASKPASS: request.auth.askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: env.DISPLAY ?? "rosterdock-bench" });

  const startedAt = performance.now();
  const child = spawn("sftp", args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const marks: { put?: number; bye?: number } = {};
  const stdout: string[] = [];
  const stderr: string[] = [];
  // sftp line-buffers stdout and echoes each batch command just before running it.
  createInterface({ input: child.stdout! }).on("line", (line) => {
    const now = performance.now();
    stdout.push(line);
    if (line.startsWith("sftp> put")) marks.put = now;
    else if (line.startsWith("sftp> bye")) marks.bye = now;
  });
  createInterface({ input: child.stderr! }).on("line", (line) => void stderr.push(line));
  let timedOut = false;
  const timer = request.timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = true), child.kill("SIGKILL")), request.timeoutMs);
  await exited(child);
  clearTimeout(timer);
  const endedAt = performance.now();
  if (timedOut) throw new Error(`sftp upload to port ${request.port} did not finish in ${request.timeoutMs} ms:\n${stderr.filter((line) => !line.startsWith("debug")).concat(stderr.slice(-5)).join("\n")}`);
  if (child.exitCode !== 0 || marks.put === undefined || marks.bye === undefined) {
    const debugFree = stderr.filter((line) => !line.startsWith("debug"));
    throw new Error(`sftp upload to port ${request.port} failed (exit ${child.exitCode ?? child.signalCode}):\n${[...stdout, ...debugFree, ...stderr.slice(-10)].join("\n")}`);
  }
  const find = (pattern: RegExp) => stderr.map((line) => pattern.exec(line)).find((m) => m !== null);
  const cipherLine = find(/kex: client->server cipher: (\S+) MAC: (\S+)/);
  return {
    transferSeconds: (marks.bye - marks.put) / 1000,
    totalSeconds: (endedAt - startedAt) / 1000,
    negotiated: {
      server: find(/remote software version (.+)$/)?.[1] ?? "?",
      kex: find(/kex: algorithm: (\S+)/)?.[1] ?? "?",
      hostKey: find(/kex: host key algorithm: (\S+)/)?.[1] ?? "?",
      cipher: cipherLine?.[1] ?? "?",
      mac: cipherLine?.[2] ?? "?",
    },
  };
}
