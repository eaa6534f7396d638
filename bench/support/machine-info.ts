import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import { runCommand } from "./processes.ts";

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  loadAverageAtStart: number[];
  node: string;
  ssh2: string;
  /** ssh2's optional native crypto binding: without it ssh2 falls back to slower JS/OpenSSL paths. */
  ssh2NativeCrypto: boolean;
  ssh2NativeCryptoError?: string;
  openssh: string;
}

export async function machineInfo(root: string): Promise<MachineInfo> {
  const require = createRequire(join(root, "package.json"));
  let nativeError: string | undefined;
  try {
    require("ssh2/lib/protocol/crypto/build/Release/sshcrypto.node");
  } catch (error) {
    nativeError = error instanceof Error ? error.message.split("\n")[0] : String(error);
  }
  const ssh2Package = JSON.parse(readFileSync(require.resolve("ssh2/package.json"), "utf8")) as { version: string };
  const openssh = (await runCommand("ssh", ["-V"]).catch(() => ({ stderr: "missing" }))).stderr.trim();
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "?",
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    kernel: release(),
    loadAverageAtStart: loadavg().map((n) => Math.round(n * 100) / 100),
    node: process.version,
    ssh2: ssh2Package.version,
    ssh2NativeCrypto: nativeError === undefined,
    ...(nativeError ? { ssh2NativeCryptoError: nativeError } : {}),
    openssh,
  };
}
