import { createHash, randomFillSync } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, open, rm, stat, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { Benchmark, BenchContext } from "./benchmark.ts";
import { machineInfo } from "./support/machine-info.ts";
import { OpensshServer } from "./support/openssh-server.ts";
import { cpuTicks, descendants, machineBusyTicks, rssKiB, TICKS_PER_SECOND } from "./support/processes.ts";
import { ROOT, RosterdockServer } from "./support/rosterdock-server.ts";
import { RssSampler } from "./support/rss-sampler.ts";
import { sftpUpload, writeAskpass, type UploadTiming } from "./support/sftp-upload.ts";

const DEFAULT_CIPHERS = "aes128-ctr,aes128-gcm@openssh.com";

type ServerName = "rosterdock" | "openssh";

interface Options {
  sizeMiB: number;
  runs: number;
  warmup: number;
  ciphers: string[];
  macs: string | undefined;
  opensshSftp: "internal-sftp" | "sftp-server";
  opensshFsync: boolean;
  settleMs: number;
  cpuProf: boolean;
  workDir: string;
  maxOtherCpu: number;
  attempts: number;
  rosterdockRoot: string;
}

export interface RunResult {
  cipher: string;
  run: number;
  server: ServerName;
  /** Decimal megabytes (10^6 bytes) per second over `transferSeconds`. */
  MBps: number;
  transferSeconds: number;
  totalSeconds: number;
  /** CPU time of the server side of the connection, user + system. */
  serverCpuSeconds: number;
  /** CPU time of the sftp and ssh client processes. */
  clientCpuSeconds: number;
  /** CPU used by everything else on the machine meanwhile, in cores (1 = one core busy throughout). */
  otherCpuCores: number;
  /** Rosterdock: the serve process. OpenSSH: the per-connection sshd processes, summed. */
  rssBeforeMiB: number;
  rssPeakMiB: number;
  rssAfterMiB: number;
  rssSamples: number;
  negotiated: UploadTiming["negotiated"];
}

export interface CipherSummary {
  rosterdockMBps: number;
  opensshMBps: number;
  ratio: number;
  /** Median over runs of (Rosterdock ÷ OpenSSH) within each run: less sensitive to slow spells of the machine. */
  pairedRatio: number;
  rosterdockPeakRssMiB: number;
  rosterdockIdleRssMiB: number;
  opensshPeakRssMiB: number;
  rosterdockCpuSeconds: number;
  opensshCpuSeconds: number;
  negotiated: Record<ServerName, string>;
  /** Runs measured again because other processes took more than --max-other-cpu meanwhile. */
  repeatedBusyRuns: number;
  /** Runs kept although still disturbed after --attempts tries. */
  disturbedRuns: number;
  runs: RunResult[];
}

const USAGE = [
  "  --size-mib N        size of the uploaded file (default 256)",
  "  --runs N            measured uploads per server and cipher; the median is reported (default 3)",
  `  --ciphers LIST      comma-separated, passed to sftp as -o Ciphers= (default ${DEFAULT_CIPHERS})`,
  "  --macs LIST         -o MACs= for non-AEAD ciphers (default: the client's own list, so each server negotiates its best)",
  "  --warmup N          unmeasured uploads per server before measuring (default 1)",
  "  --openssh-sftp X    internal-sftp (default) or sftp-server",
  "  --openssh-fsync X   yes (default): `put -f`, so OpenSSH fsyncs like Rosterdock does on close; no: it does not",
  "  --settle-ms N       pause before each upload, when idle RSS is taken (default 1000)",
  "  --work-dir DIR      where the temporary folder (test file, both servers' data) goes (default: the OS temp folder);",
  "                      a tmpfs such as /dev/shm takes the disk (and fsync) out of the comparison",
  "  --max-other-cpu X   a run (both servers' uploads) is repeated when other processes used more than X cores",
  "                      meanwhile (default 0.15)",
  "  --attempts N        tries per run before a disturbed run is kept anyway, and flagged (default 3)",
  "  --rosterdock-root D measure the server of another checkout D (default: this one), e.g. to compare a patch",
  "  --cpu-prof          run Rosterdock with --cpu-prof; the profile's folder is printed and kept",
].join("\n");

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      "size-mib": { type: "string", default: "256" },
      runs: { type: "string", default: "3" },
      warmup: { type: "string", default: "1" },
      ciphers: { type: "string", default: DEFAULT_CIPHERS },
      macs: { type: "string" },
      "openssh-sftp": { type: "string", default: "internal-sftp" },
      "openssh-fsync": { type: "string", default: "yes" },
      "settle-ms": { type: "string", default: "1000" },
      "cpu-prof": { type: "boolean", default: false },
      "work-dir": { type: "string", default: tmpdir() },
      "max-other-cpu": { type: "string", default: "0.15" },
      attempts: { type: "string", default: "3" },
      "rosterdock-root": { type: "string", default: ROOT },
    },
  });
  const whole = (name: string, raw: string, min: number) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be a whole number ≥ ${min}, got ${raw}`);
    return value;
  };
  const opensshSftp = values["openssh-sftp"];
  if (opensshSftp !== "internal-sftp" && opensshSftp !== "sftp-server") throw new Error("--openssh-sftp must be internal-sftp or sftp-server");
  if (!["yes", "no"].includes(values["openssh-fsync"])) throw new Error("--openssh-fsync must be yes or no");
  if (!(Number(values["max-other-cpu"]) >= 0)) throw new Error("--max-other-cpu must be a number of cores ≥ 0");
  return {
    sizeMiB: whole("size-mib", values["size-mib"], 1),
    runs: whole("runs", values.runs, 1),
    warmup: whole("warmup", values.warmup, 0),
    ciphers: values.ciphers.split(",").map((c) => c.trim()).filter(Boolean),
    macs: values.macs,
    opensshSftp,
    opensshFsync: values["openssh-fsync"] === "yes",
    settleMs: whole("settle-ms", values["settle-ms"], 0),
    cpuProf: values["cpu-prof"],
    workDir: values["work-dir"],
    maxOtherCpu: Number(values["max-other-cpu"]),
    attempts: whole("attempts", values.attempts, 1),
    rosterdockRoot: resolve(values["rosterdock-root"]),
  };
}

const MiB = 1024 * 1024;
const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const toMiB = (kib: number) => round(kib / 1024);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Random content, so neither compression nor deduplication anywhere can flatter a server. */
async function generateFile(path: string, bytes: number): Promise<string> {
  const hash = createHash("sha256");
  const file = await open(path, "w");
  const chunk = Buffer.allocUnsafe(4 * MiB);
  try {
    for (let written = 0; written < bytes; ) {
      const part = chunk.subarray(0, Math.min(chunk.length, bytes - written));
      randomFillSync(part);
      hash.update(part);
      await file.write(part, 0, part.length);
      written += part.length;
    }
  } finally {
    await file.close();
  }
  return hash.digest("hex");
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    createReadStream(path, { highWaterMark: 4 * MiB })
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

async function run(args: string[], context: BenchContext): Promise<unknown> {
  const options = parseOptions(args);
  const { progress } = context;
  const machine = await machineInfo(options.rosterdockRoot);
  if (!machine.ssh2NativeCrypto) progress(`WARNING: ssh2's native crypto binding does not load (${machine.ssh2NativeCryptoError}); Rosterdock will be slower`);

  const dir = await mkdtemp(join(options.workDir, "rosterdock-bench-"));
  context.defer("temporary folder", () => rm(dir, { recursive: true, force: true }));
  const cpuProfileDir = options.cpuProf ? await mkdtemp(join(tmpdir(), "rosterdock-cpu-prof-")) : undefined;

  const bytes = options.sizeMiB * MiB;
  const localFile = join(dir, "upload.bin");
  progress(`generating ${options.sizeMiB} MiB of random data`);
  const sha256 = await generateFile(localFile, bytes);
  const clientDir = join(dir, "client");
  await mkdir(clientDir, { mode: 0o700 });

  progress("starting rosterdock serve and a private sshd");
  const rosterdock = await RosterdockServer.start(context, join(dir, "rosterdock"), { root: options.rosterdockRoot, slug: "bench", cpuProfileDir });
  const openssh = await OpensshServer.start(context, join(dir, "openssh"), { sftp: options.opensshSftp });
  const askpass = await writeAskpass(clientDir, rosterdock.password);
  await sleep(options.settleMs);
  const rosterdockStartRssMiB = toMiB(rssKiB(rosterdock.pid) ?? 0);

  let sequence = 0;
  const upload = async (server: ServerName, cipher: string, runNumber: number): Promise<RunResult> => {
    context.checkInterrupted();
    sequence += 1;
    const name = `bench-${sequence}.bin`;
    const remotePath = server === "rosterdock" ? `/${name}` : join(openssh.uploadDir, name);
    await sleep(options.settleMs);
    const serverPid = server === "rosterdock" ? rosterdock.pid : openssh.pid;
    const sampler = server === "rosterdock" ? RssSampler.ofProcess(serverPid) : RssSampler.ofDescendants(serverPid);
    const serverCpu = () => {
      const ticks = cpuTicks(serverPid);
      // OpenSSH's connection runs in forked processes: counted in the listener's children once reaped.
      return ticks ? (server === "rosterdock" ? ticks.own : ticks.children) : 0;
    };
    const clientCpu = () => cpuTicks(process.pid)?.children ?? 0;
    const selfCpu = () => cpuTicks(process.pid)?.own ?? 0;
    const cpuBefore = serverCpu();
    const clientBefore = clientCpu();
    const selfBefore = selfCpu();
    const busyBefore = machineBusyTicks();
    const windowStart = performance.now();
    sampler.start();
    let timing: UploadTiming;
    try {
      timing = await sftpUpload({
        port: server === "rosterdock" ? rosterdock.sftpPort : openssh.port,
        user: server === "rosterdock" ? rosterdock.username : openssh.user,
        auth: server === "rosterdock" ? { kind: "password", askpass } : { kind: "key", keyFile: openssh.clientKey },
        cipher,
        macs: options.macs,
        localFile,
        remotePath,
        fsync: server === "openssh" && options.opensshFsync,
        workDir: clientDir,
      });
    } catch (error) {
      sampler.stop();
      throw error;
    }
    const rss = sampler.stop();
    if (server === "openssh" && !(await waitUntil(() => descendants(openssh.pid).length === 0, 5000))) {
      progress("warning: an sshd session process outlived its client; its CPU time is missing");
    }
    const serverCpuSeconds = (serverCpu() - cpuBefore) / TICKS_PER_SECOND;
    const clientCpuSeconds = (clientCpu() - clientBefore) / TICKS_PER_SECOND;
    const selfCpuSeconds = (selfCpu() - selfBefore) / TICKS_PER_SECOND;
    const busySeconds = (machineBusyTicks() - busyBefore) / TICKS_PER_SECOND;
    const windowSeconds = (performance.now() - windowStart) / 1000;
    const otherCpuCores = Math.max(0, busySeconds - serverCpuSeconds - clientCpuSeconds - selfCpuSeconds) / windowSeconds;

    // The file must have arrived intact, or the figure means nothing.
    if (server === "rosterdock") {
      const record = (await rosterdock.uploads()).find((u) => u.path === remotePath);
      if (!record) throw new Error(`rosterdock has no upload record for ${remotePath}`);
      if (record.status !== "accepted" || record.size !== bytes || record.sha256 !== sha256) {
        throw new Error(`rosterdock recorded ${JSON.stringify(record)}, expected ${bytes} bytes with sha256 ${sha256}`);
      }
      const onDisk = rosterdock.homePath(name);
      if ((await stat(onDisk)).size !== bytes || (await hashFile(onDisk)) !== sha256) throw new Error(`${onDisk} differs from the uploaded file`);
      // Free the space (the archive's hard link goes too); the record stays.
      await unlink(onDisk);
    } else {
      if ((await stat(remotePath)).size !== bytes || (await hashFile(remotePath)) !== sha256) throw new Error(`${remotePath} differs from the uploaded file`);
      await unlink(remotePath);
    }

    const result: RunResult = {
      cipher,
      run: runNumber,
      server,
      MBps: round(bytes / 1e6 / timing.transferSeconds),
      transferSeconds: round(timing.transferSeconds, 3),
      totalSeconds: round(timing.totalSeconds, 3),
      serverCpuSeconds: round(serverCpuSeconds, 2),
      clientCpuSeconds: round(clientCpuSeconds, 2),
      otherCpuCores: round(otherCpuCores, 2),
      rssBeforeMiB: toMiB(rss.firstKiB),
      rssPeakMiB: toMiB(rss.peakKiB),
      rssAfterMiB: toMiB(rss.lastKiB),
      rssSamples: rss.samples,
      negotiated: timing.negotiated,
    };
    progress(
      `${runNumber === 0 ? "warm-up" : `run ${runNumber}`} ${cipher} ${server}: ${result.MBps} MB/s, server CPU ${result.serverCpuSeconds} s, RSS ${result.rssBeforeMiB} → peak ${result.rssPeakMiB} MiB, other processes ${result.otherCpuCores} cores`,
    );
    return result;
  };

  for (let i = 0; i < options.warmup; i++) {
    for (const server of ["rosterdock", "openssh"] as const) await upload(server, options.ciphers[0]!, 0);
  }

  const perCipher: Record<string, CipherSummary> = {};
  for (const cipher of options.ciphers) {
    const runs: RunResult[] = [];
    const pairedRatios: number[] = [];
    let repeatedBusyRuns = 0;
    let disturbedRuns = 0;
    for (let runNumber = 1; runNumber <= options.runs; runNumber++) {
      // Alternate who goes first, so a slow spell of the machine does not always hit the same server.
      const order: ServerName[] = runNumber % 2 ? ["rosterdock", "openssh"] : ["openssh", "rosterdock"];
      for (let attempt = 1; ; attempt++) {
        const pair: RunResult[] = [];
        for (const server of order) pair.push(await upload(server, cipher, runNumber));
        const busiest = Math.max(...pair.map((r) => r.otherCpuCores));
        if (busiest > options.maxOtherCpu && attempt < options.attempts) {
          repeatedBusyRuns += 1;
          progress(`run ${runNumber} disturbed: other processes used ${busiest} cores; measuring it again`);
          continue;
        }
        if (busiest > options.maxOtherCpu) disturbedRuns += 1;
        runs.push(...pair);
        const [r, o] = [pair.find((p) => p.server === "rosterdock")!, pair.find((p) => p.server === "openssh")!];
        pairedRatios.push(r.MBps / o.MBps);
        break;
      }
    }
    const of = (server: ServerName) => runs.filter((r) => r.server === server);
    const rosterdockMBps = round(median(of("rosterdock").map((r) => r.MBps)));
    const opensshMBps = round(median(of("openssh").map((r) => r.MBps)));
    const describe = (r: RunResult | undefined) => (r ? `${r.negotiated.kex} / ${r.negotiated.hostKey} / ${r.negotiated.cipher} / ${r.negotiated.mac}` : "?");
    perCipher[cipher] = {
      rosterdockMBps,
      opensshMBps,
      ratio: round(rosterdockMBps / opensshMBps, 2),
      pairedRatio: round(median(pairedRatios), 2),
      rosterdockPeakRssMiB: Math.max(...of("rosterdock").map((r) => r.rssPeakMiB)),
      rosterdockIdleRssMiB: Math.min(...of("rosterdock").map((r) => r.rssBeforeMiB)),
      opensshPeakRssMiB: Math.max(...of("openssh").map((r) => r.rssPeakMiB)),
      rosterdockCpuSeconds: round(median(of("rosterdock").map((r) => r.serverCpuSeconds)), 2),
      opensshCpuSeconds: round(median(of("openssh").map((r) => r.serverCpuSeconds)), 2),
      negotiated: { rosterdock: describe(of("rosterdock")[0]), openssh: describe(of("openssh")[0]) },
      repeatedBusyRuns,
      disturbedRuns,
      runs,
    };
  }

  const rosterdockEndRssMiB = toMiB(rssKiB(rosterdock.pid) ?? 0);
  await rosterdock.stop();
  await openssh.stop();
  if (cpuProfileDir) progress(`Rosterdock CPU profile written to ${cpuProfileDir}`);
  return {
    benchmark: "sftp",
    date: new Date().toISOString(),
    settings: {
      fileMiB: options.sizeMiB,
      runs: options.runs,
      warmup: options.warmup,
      macs: options.macs ?? "client default",
      opensshSftp: options.opensshSftp,
      opensshFsync: options.opensshFsync,
      workDir: options.workDir,
      maxOtherCpuCores: options.maxOtherCpu,
      rosterdockRoot: options.rosterdockRoot,
      client: "OpenSSH sftp -b, one file per connection",
    },
    machine,
    rosterdockStartRssMiB,
    rosterdockEndRssMiB,
    ...(cpuProfileDir ? { cpuProfileDir } : {}),
    ciphers: perCipher,
  };
}

export const sftpBenchmark: Benchmark = {
  name: "sftp",
  description: "Upload throughput and server RSS: Rosterdock vs OpenSSH's sshd, OpenSSH sftp client, per cipher",
  usage: USAGE,
  run,
};
