import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import type { Benchmark, BenchContext } from "./benchmark.ts";
import { cachedNight, scaledSize, type CachedNight } from "./ingest.ts";
import { FloodProcess, type FloodReport } from "./support/flood-process.ts";
import { machineInfo } from "./support/machine-info.ts";
import { ROOT, RosterdockServer, type LogEntry } from "./support/rosterdock-server.ts";
import { RssSampler } from "./support/rss-sampler.ts";
import { sftpUpload, writeAskpass } from "./support/sftp-upload.ts";
import { BENCHMARK_DEMO_SIZE } from "../src/demo/generate-demo-data.ts";

const PHASES = ["banner", "channel", "hash", "sync"] as const;
type PhaseName = (typeof PHASES)[number];

const USAGE = [
  `  --phases LIST             comma-separated, run in this order after the idle baseline (default ${PHASES.join(",")})`,
  "  --phase-seconds N         how long each flood phase lasts (default 30); the sync phase lasts as long as the sync",
  "  --idle-seconds N          how long the idle baseline lasts (default: --phase-seconds)",
  "  --innocents N             districts uploading small files throughout (default 3)",
  "  --upload-pause-ms N       each innocent district's pause between two uploads (default 250)",
  "  --upload-timeout-ms N     an upload still running after this is killed and counted as failed (default 60000)",
  "  --sockets N               banner flood: sockets held; 3/4 from one address, the rest from --flood-addresses others,",
  "                            half of them sending an SSH identification and nothing more, half silent (default 4000)",
  "  --flood-addresses N       banner flood: the other addresses (default 5)",
  "  --reconnect-ms N          banner flood: a socket the server closed is opened again after ~N ms (default 1000; -1: never)",
  "  --channel-connections N   channel flood: connections the greedy district tries to log in (default 40)",
  "  --channels N              channel flood: SFTP channels it tries per connection (default 10)",
  "  --handles N               channel flood: files it tries to open for writing per channel (default 100)",
  "  --hash-addresses N        hash flood: addresses sending wrong client secrets for a known client id (default 200) …",
  "  --hash-parallel N         … requests in flight per address (default 1; 10 with 20 addresses is the test's flood)",
  "  --ssh-guess-addresses N   hash flood: addresses guessing a district's SSH password … (default 10)",
  "  --ssh-guess-parallel N    … with this many connections in flight each (default 20)",
  "  --flood-pause-ms N        hash flood: an attacker turned away unchecked (HTTP 429/503, connection dropped) waits this",
  "                            long before its next try (default 100)",
  `  --students N              sync phase: students of the big district (default ${BENCHMARK_DEMO_SIZE.students}: 1M users, ~8M enrollments)`,
  "  --sync-via X              sftp (default: the zip is uploaded, the delivery closes, the server's worker applies it)",
  "                            or ingest (`rosterdock ingest` beside the server, on the same database)",
  "  --quiet-seconds N         the server's ROSTERDOCK_QUIET_SECONDS (default 3)",
  "  --cache-dir DIR           generated nights, shared with `bench ingest` (default <tmp>/rosterdock-bench-ingest-cache)",
  "  --work-dir DIR            where the server's data folder goes (default: the OS temp folder; removed afterwards)",
  "  --rosterdock-root DIR     measure another checkout's server (default: this one)",
].join("\n");

interface Options {
  phases: PhaseName[];
  phaseSeconds: number;
  idleSeconds: number;
  innocents: number;
  uploadPauseMs: number;
  uploadTimeoutMs: number;
  sockets: number;
  floodAddresses: number;
  reconnectMs: number;
  channelConnections: number;
  channels: number;
  handles: number;
  hashAddresses: number;
  hashParallel: number;
  sshGuessAddresses: number;
  sshGuessParallel: number;
  floodPauseMs: number;
  students: number;
  syncVia: "sftp" | "ingest";
  quietSeconds: number;
  cacheDir: string;
  workDir: string;
  rosterdockRoot: string;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      phases: { type: "string", default: PHASES.join(",") },
      "phase-seconds": { type: "string", default: "30" },
      "idle-seconds": { type: "string" },
      innocents: { type: "string", default: "3" },
      "upload-pause-ms": { type: "string", default: "250" },
      "upload-timeout-ms": { type: "string", default: "60000" },
      sockets: { type: "string", default: "4000" },
      "flood-addresses": { type: "string", default: "5" },
      "reconnect-ms": { type: "string", default: "1000" },
      "channel-connections": { type: "string", default: "40" },
      channels: { type: "string", default: "10" },
      handles: { type: "string", default: "100" },
      "hash-addresses": { type: "string", default: "200" },
      "hash-parallel": { type: "string", default: "1" },
      "ssh-guess-addresses": { type: "string", default: "10" },
      "ssh-guess-parallel": { type: "string", default: "20" },
      "flood-pause-ms": { type: "string", default: "100" },
      students: { type: "string", default: String(BENCHMARK_DEMO_SIZE.students) },
      "sync-via": { type: "string", default: "sftp" },
      "quiet-seconds": { type: "string", default: "3" },
      "cache-dir": { type: "string", default: join(tmpdir(), "rosterdock-bench-ingest-cache") },
      "work-dir": { type: "string", default: tmpdir() },
      "rosterdock-root": { type: "string", default: ROOT },
    },
  });
  const whole = (name: string, raw: string, min: number) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be a whole number ≥ ${min}, got ${raw}`);
    return value;
  };
  const phases = values.phases.split(",").map((p) => p.trim()).filter(Boolean);
  for (const phase of phases) if (!(PHASES as readonly string[]).includes(phase)) throw new Error(`--phases: unknown phase ${phase} (known: ${PHASES.join(", ")})`);
  if (values["sync-via"] !== "sftp" && values["sync-via"] !== "ingest") throw new Error("--sync-via must be sftp or ingest");
  const phaseSeconds = whole("phase-seconds", values["phase-seconds"], 1);
  return {
    phases: phases as PhaseName[],
    phaseSeconds,
    idleSeconds: values["idle-seconds"] === undefined ? phaseSeconds : whole("idle-seconds", values["idle-seconds"], 1),
    innocents: whole("innocents", values.innocents, 1),
    uploadPauseMs: whole("upload-pause-ms", values["upload-pause-ms"], 0),
    uploadTimeoutMs: whole("upload-timeout-ms", values["upload-timeout-ms"], 1000),
    sockets: whole("sockets", values.sockets, 1),
    floodAddresses: whole("flood-addresses", values["flood-addresses"], 0),
    reconnectMs: whole("reconnect-ms", values["reconnect-ms"], -1),
    channelConnections: whole("channel-connections", values["channel-connections"], 1),
    channels: whole("channels", values.channels, 1),
    handles: whole("handles", values.handles, 1),
    hashAddresses: whole("hash-addresses", values["hash-addresses"], 0),
    hashParallel: whole("hash-parallel", values["hash-parallel"], 1),
    sshGuessAddresses: whole("ssh-guess-addresses", values["ssh-guess-addresses"], 0),
    sshGuessParallel: whole("ssh-guess-parallel", values["ssh-guess-parallel"], 1),
    floodPauseMs: whole("flood-pause-ms", values["flood-pause-ms"], 0),
    students: whole("students", values.students, 10),
    syncVia: values["sync-via"],
    quietSeconds: whole("quiet-seconds", values["quiet-seconds"], 1),
    cacheDir: resolve(values["cache-dir"]),
    workDir: resolve(values["work-dir"]),
    rosterdockRoot: resolve(values["rosterdock-root"]),
  };
}

// ---- addresses: each attacker its own, so no ban or per-address cap of an attack falls on the innocents ----

/** Every innocent district uploads from here (several districts behind one vendor's address). */
const INNOCENT_ADDRESS = "127.0.0.1";
const bannerAddress = (i: number) => `127.0.0.${2 + i}`;
const GREEDY_ADDRESS = "127.0.3.1";
const secretAddress = (i: number) => `127.0.${4 + Math.floor(i / 250)}.${1 + (i % 250)}`;
const sshGuessAddress = (i: number) => `127.0.2.${1 + i}`;
const BIG_ADDRESS = "127.0.9.1";

// ---- measuring ----

interface UploadSample {
  district: string;
  /** When it started, seconds into the phase. */
  at: number;
  ms: number;
  transferMs: number | null;
  error?: string;
}

interface Innocent {
  slug: string;
  username: string;
  password: string;
  askpass: string;
  dir: string;
}

const round = (n: number, digits = 0) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function latency(values: number[]) {
  const at = (p: number) => {
    const v = percentile(values, p);
    return v === null ? null : round(v);
  };
  return { p50Ms: at(50), p99Ms: at(99), maxMs: values.length ? round(Math.max(...values)) : null };
}

/** The innocent districts' uploads, one after another per district, until stopped. */
class InnocentUploads {
  readonly samples: UploadSample[] = [];
  private running = true;
  private readonly loops: Promise<void>[];
  private sequence = 0;
  private readonly started = performance.now();

  constructor(
    private readonly server: RosterdockServer,
    innocents: Innocent[],
    private readonly options: Options,
  ) {
    // Staggered, so the districts do not log in in lockstep.
    this.loops = innocents.map((innocent, i) => this.loop(innocent, (i * options.uploadPauseMs) / innocents.length));
  }

  private async loop(innocent: Innocent, delayMs: number): Promise<void> {
    await sleep(delayMs);
    while (this.running) {
      const n = ++this.sequence;
      // Ten names over and over, as a nightly export overwrites its files: the district's folder stays small.
      const name = `students-${n % 10}.csv`;
      const localFile = join(innocent.dir, name);
      const rows = Array.from({ length: 20 }, (_, i) => `${n * 100 + i},Student${i},Upload${n},${9 + (i % 4)}`);
      await writeFile(localFile, `Student_Number,First_Name,Last_Name,Grade_Level\n${rows.join("\n")}\n`);
      const started = performance.now();
      const at = round((started - this.started) / 1000, 1);
      try {
        const timing = await sftpUpload({
          port: this.server.sftpPort,
          user: innocent.username,
          auth: { kind: "password", askpass: innocent.askpass },
          macs: undefined,
          localFile,
          remotePath: `/${name}`,
          fsync: false,
          workDir: innocent.dir,
          bindAddress: INNOCENT_ADDRESS,
          timeoutMs: this.options.uploadTimeoutMs,
        });
        this.samples.push({ district: innocent.slug, at, ms: timing.totalSeconds * 1000, transferMs: timing.transferSeconds * 1000 });
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.samples.push({ district: innocent.slug, at, ms: performance.now() - started, transferMs: null, error: summarise(message) });
      }
      if (this.running) await sleep(this.options.uploadPauseMs);
    }
  }

  /** Lets the uploads under way finish; no new one starts. */
  async stop(): Promise<UploadSample[]> {
    this.running = false;
    await Promise.all(this.loops);
    return this.samples;
  }
}

/** An sftp failure in a line: what the client said, without its version banner and host-key notice. */
function summarise(message: string): string {
  const lines = message.split("\n").filter((line) => line.trim() && !/^(OpenSSH_|Warning: Permanently added|debug)/.test(line));
  return [...new Set(lines)].slice(0, 4).join(" | ").slice(0, 400);
}

/** The server's open descriptors, from /proc/PID/fd. */
class DescriptorSampler {
  private readonly values: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 250);
  }

  private sample(): void {
    try {
      this.values.push(readdirSync(`/proc/${this.pid}/fd`).length);
    } catch {
      // the process is gone
    }
  }

  stop() {
    clearInterval(this.timer);
    this.sample();
    return { start: this.values[0] ?? null, peak: this.values.length ? Math.max(...this.values) : null, end: this.values.at(-1) ?? null, samples: this.values.length };
  }
}

interface HealthBody {
  connections?: { unauthenticated: number; authenticated: number; channels: number; atLimit: string[]; refused: Record<string, number>; timedOut: Record<string, number> };
  descriptors?: unknown;
}

/** GET /healthz every second: does HTTP keep answering, and what the server says of its connections. */
class HealthProbe {
  private readonly latencies: number[] = [];
  private failed = 0;
  private readonly failures: string[] = [];
  private first: HealthBody | undefined;
  private last: HealthBody | undefined;
  private readonly atLimit = new Set<string>();
  private running = true;
  private readonly loop: Promise<void>;

  constructor(private readonly port: number) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const started = performance.now();
      try {
        const response = await fetch(`http://127.0.0.1:${this.port}/healthz`, { signal: AbortSignal.timeout(5000) });
        const body = (await response.json()) as HealthBody;
        if (response.status !== 200) throw new Error(`status ${response.status}`);
        this.latencies.push(performance.now() - started);
        this.first ??= body;
        this.last = body;
        for (const limit of body.connections?.atLimit ?? []) this.atLimit.add(limit);
      } catch (error) {
        this.failed++;
        if (this.failures.length < 3) this.failures.push(error instanceof Error ? error.message : String(error));
      }
      await sleep(1000);
    }
  }

  async stop() {
    this.running = false;
    await this.loop;
    const [first, last] = [this.first?.connections, this.last?.connections];
    // The server's own counters since start, taken between the phase's first and last probe.
    const delta = (from: Record<string, number> | undefined, to: Record<string, number> | undefined) =>
      Object.fromEntries(Object.entries(to ?? {}).flatMap(([key, n]) => (n - (from?.[key] ?? 0) > 0 ? [[key, n - (from?.[key] ?? 0)]] : [])));
    return {
      probes: this.latencies.length + this.failed,
      failed: this.failed,
      ...(this.failures.length ? { failures: this.failures } : {}),
      ...latency(this.latencies),
      refused: delta(first?.refused, last?.refused),
      timedOut: delta(first?.timedOut, last?.timedOut),
      atLimit: [...this.atLimit].sort(),
      last: last ? { unauthenticated: last.unauthenticated, authenticated: last.authenticated, channels: last.channels, descriptors: this.last!.descriptors } : null,
    };
  }
}

/** Counts the server's log entries during a phase by event, with the limit, reason or stage they name. */
function countEvents(server: RosterdockServer): () => Record<string, number> {
  const counts: Record<string, number> = {};
  const stop = server.onLog((entry: LogEntry) => {
    if (typeof entry.event !== "string") return;
    const detail = entry.limit ?? entry.reason ?? entry.stage;
    const key = typeof detail === "string" ? `${entry.event}:${detail}` : entry.event;
    // Log entries, not occurrences: refusals are logged once per address and limit every 10 s (/healthz counts them all).
    counts[key] = (counts[key] ?? 0) + 1;
  });
  return () => {
    stop();
    return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a.localeCompare(b)));
  };
}

// ---- the attacks ----

interface Attack {
  /** Resolves when the attack is over by itself (the sync phase); flood phases last --phase-seconds. */
  done?: Promise<unknown>;
  /** Ends the attack; what it did. */
  stop(): Promise<unknown>;
}

interface Setup {
  server: RosterdockServer;
  options: Options;
  context: BenchContext;
  greedy: { username: string; password: string };
  victim: { username: string };
  clientId: string;
  adminToken: string;
  bigNight: CachedNight | undefined;
  big: { username: string; password: string; askpass: string; dir: string };
}

function floodAttack(flood: FloodProcess): Attack {
  return { stop: () => flood.stop().then(({ event: _event, ...counts }: FloodReport) => counts) };
}

async function bannerFlood({ server, options, context }: Setup): Promise<Attack> {
  const main = Math.round(options.sockets * 0.75);
  const others = options.floodAddresses > 0 ? options.sockets - main : 0;
  const groups = [
    { address: bannerAddress(0), count: Math.ceil(main / 2), banner: true },
    { address: bannerAddress(0), count: Math.floor(main / 2), banner: false },
    ...Array.from({ length: options.floodAddresses }, (_, i) => ({
      address: bannerAddress(1 + i),
      count: Math.floor(others / options.floodAddresses) + (i < others % options.floodAddresses ? 1 : 0),
      banner: i % 2 === 0,
    })),
  ];
  return floodAttack(await FloodProcess.start(context, "socket-flood.ts", { port: server.sftpPort, groups, reconnectMs: options.reconnectMs }));
}

async function channelFlood({ server, options, context, greedy }: Setup): Promise<Attack> {
  return floodAttack(
    await FloodProcess.start(context, "channel-flood.ts", {
      port: server.sftpPort,
      address: GREEDY_ADDRESS,
      ...greedy,
      connections: options.channelConnections,
      channelsPerConnection: options.channels,
      handlesPerChannel: options.handles,
      wave: 10,
      retryMs: 2000,
    }),
  );
}

async function hashFlood({ server, options, context, victim, clientId }: Setup): Promise<Attack> {
  return floodAttack(
    await FloodProcess.start(context, "login-flood.ts", {
      httpPort: server.httpPort,
      sftpPort: server.sftpPort,
      http: { clientId, addresses: Array.from({ length: options.hashAddresses }, (_, i) => secretAddress(i)), perAddress: options.hashParallel },
      ssh: { username: victim.username, addresses: Array.from({ length: options.sshGuessAddresses }, (_, i) => sshGuessAddress(i)), perAddress: options.sshGuessParallel },
      pauseMs: options.floodPauseMs,
    }),
  );
}

interface SyncListEntry {
  id: number;
  status: string;
}

async function api<T>(server: RosterdockServer, token: string, path: string): Promise<T> {
  const response = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

const FINISHED = (status: string) => !["waiting", "processing"].includes(status);

async function bigSync(setup: Setup): Promise<Attack> {
  const { server, options, context, bigNight, big, adminToken } = setup;
  if (!bigNight) throw new Error("the big district's night was not prepared");
  const before = new Set((await api<SyncListEntry[]>(server, adminToken, "/api/v1/districts/big/syncs")).map((s) => s.id));
  const started = performance.now();
  const run = (async () => {
    let deliveredSeconds: number | null = null;
    let syncId: number;
    if (options.syncVia === "sftp") {
      const remote = `/${bigNight.ingestPaths[0]!.split("/").pop()}`;
      context.progress(`sync: uploading ${round(bigNight.bytes / 2 ** 20)} MiB as the big district`);
      const timing = await sftpUpload({
        port: server.sftpPort,
        user: big.username,
        auth: { kind: "password", askpass: big.askpass },
        macs: undefined,
        localFile: bigNight.ingestPaths[0]!,
        remotePath: remote,
        fsync: false,
        workDir: big.dir,
        bindAddress: BIG_ADDRESS,
        timeoutMs: 30 * 60_000,
      });
      deliveredSeconds = timing.totalSeconds;
      context.progress(`sync: uploaded in ${round(timing.totalSeconds, 1)} s; waiting for the delivery to close and the worker to apply it`);
      // The delivery closes after the quiet period; the worker then takes the sync.
      syncId = await waitFor(async () => (await api<SyncListEntry[]>(server, adminToken, "/api/v1/districts/big/syncs")).find((s) => !before.has(s.id))?.id, 10 * 60_000, "the big delivery's sync");
    } else {
      context.progress(`sync: rosterdock ingest of ${round(bigNight.bytes / 2 ** 20)} MiB beside the server`);
      const ingested = await ingest(server, bigNight.ingestPaths);
      syncId = ingested.id;
    }
    const status = await waitFor(
      async () => {
        const sync = (await api<SyncListEntry[]>(server, adminToken, "/api/v1/districts/big/syncs")).find((s) => s.id === syncId);
        return sync && FINISHED(sync.status) && sync.status;
      },
      120 * 60_000,
      "the big sync to finish",
      1000,
    );
    const shown = await api<{ counts: unknown; summary: { timings?: unknown; changes?: number } }>(server, adminToken, `/api/v1/syncs/${syncId}`);
    const result = {
      via: options.syncVia,
      students: options.students,
      bytes: bigNight.bytes,
      syncId,
      status,
      deliveredSeconds: deliveredSeconds === null ? null : round(deliveredSeconds, 1),
      finishedSeconds: round((performance.now() - started) / 1000, 1),
      timings: shown.summary.timings ?? null,
      changes: shown.summary.changes ?? null,
    };
    context.progress(`sync: ${status} after ${result.finishedSeconds} s, timings ${JSON.stringify(result.timings)}`);
    return result;
  })();
  return { done: run, stop: () => run };
}

/** `rosterdock ingest big PATHS --json`; it exits 3 when the sync is held, 4 when it failed, and prints the sync either way. */
function ingest(server: RosterdockServer, paths: string[]): Promise<{ id: number; status: string }> {
  return new Promise((resolvePromise, reject) => {
    execFile(server.bin, ["ingest", "big", ...paths, "--json"], { env: server.env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      try {
        resolvePromise(JSON.parse(stdout) as { id: number; status: string });
      } catch {
        reject(new Error(`rosterdock ingest failed: ${error?.message ?? ""}\n${stderr.slice(-2000)}`));
      }
    });
  });
}

const ATTACKS: Record<PhaseName, (setup: Setup) => Promise<Attack>> = { banner: bannerFlood, channel: channelFlood, hash: hashFlood, sync: bigSync };

async function waitFor<T>(check: () => Promise<T | undefined | false>, timeoutMs: number, what: string, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ---- one phase ----

async function measurePhase(name: "idle" | PhaseName, setup: Setup, innocents: Innocent[], start: (() => Promise<Attack>) | undefined) {
  const { server, options, context } = setup;
  context.checkInterrupted();
  context.progress(`${name}: starting`);
  const events = countEvents(server);
  const descriptors = new DescriptorSampler(server.pid);
  const rss = RssSampler.ofProcess(server.pid, 250).start();
  const health = new HealthProbe(server.httpPort);
  const uploads = new InnocentUploads(server, innocents, options);
  const started = performance.now();
  let attack: unknown = null;
  let attackError: string | undefined;
  try {
    const running = start ? await start() : undefined;
    if (running?.done) await running.done;
    else await sleep(Math.max(0, (name === "idle" ? options.idleSeconds : options.phaseSeconds) * 1000 - (performance.now() - started)));
    if (running) attack = await running.stop();
  } catch (error) {
    attackError = error instanceof Error ? error.message : String(error);
    context.progress(`${name}: the attack failed: ${attackError}`);
  }
  const samples = await uploads.stop();
  const seconds = (performance.now() - started) / 1000;
  const healthResult = await health.stop();
  const rssResult = rss.stop();
  const descriptorResult = descriptors.stop();
  const serverEvents = events();
  const ok = samples.filter((s) => s.error === undefined);
  const failed = samples.filter((s) => s.error !== undefined);
  const result = {
    phase: name,
    seconds: round(seconds, 1),
    uploads: {
      count: samples.length,
      failed: failed.length,
      ...latency(ok.map((s) => s.ms)),
      transfer: latency(ok.flatMap((s) => (s.transferMs === null ? [] : [s.transferMs]))),
      slowest: [...ok].sort((a, b) => b.ms - a.ms).slice(0, 3).map((s) => ({ district: s.district, atSeconds: s.at, ms: round(s.ms) })),
      ...(failed.length ? { failures: failed.slice(0, 3).map((s) => `${s.district} at ${s.at} s: ${s.error}`) } : {}),
    },
    server: {
      descriptors: descriptorResult,
      rssMiB: { start: round(rssResult.firstKiB / 1024, 1), peak: round(rssResult.peakKiB / 1024, 1), end: round(rssResult.lastKiB / 1024, 1) },
    },
    healthz: healthResult,
    attack,
    ...(attackError ? { attackError } : {}),
    serverEvents,
  };
  context.progress(
    `${name}: ${result.uploads.count} uploads, ${result.uploads.failed} failed, p50 ${result.uploads.p50Ms} ms, p99 ${result.uploads.p99Ms} ms, max ${result.uploads.maxMs} ms; ` +
      `descriptors peak ${descriptorResult.peak}, RSS peak ${result.server.rssMiB.peak} MiB; /healthz max ${healthResult.maxMs} ms, ${healthResult.failed} failed`,
  );
  return result;
}

/**
 * Between phases: the innocents' deliveries close and their syncs run, and what the attack left
 * (timed-out handshakes, closing connections) is gone, so that no phase pays for the one before.
 */
async function settle(setup: Setup, innocents: Innocent[]): Promise<number> {
  const { server, options, adminToken, context } = setup;
  const started = performance.now();
  // Credential checks a flood left queued are still hashed after it ends.
  let lastCheck = performance.now();
  const stopWatching = server.onLog((entry) => {
    if (entry.event === "http.auth.failed" || entry.event === "sftp.login.failed") lastCheck = performance.now();
  });
  await sleep((options.quietSeconds + 1) * 1000);
  await waitFor(async () => performance.now() - lastCheck > 3000, 120_000, "the flood's queued credential checks", 500).catch((error: Error) => context.progress(`settle: ${error.message}; going on`));
  stopWatching();
  for (const innocent of innocents) {
    await waitFor(async () => (await api<SyncListEntry[]>(server, adminToken, `/api/v1/districts/${innocent.slug}/syncs?limit=5`)).every((s) => FINISHED(s.status)), 10 * 60_000, `${innocent.slug}'s syncs`, 500);
  }
  await waitFor(
    async () => {
      const response = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`, { signal: AbortSignal.timeout(5000) });
      const body = (await response.json()) as HealthBody;
      return body.connections !== undefined && body.connections.unauthenticated === 0 && body.connections.authenticated === 0;
    },
    120_000,
    "the attack's connections to close",
    500,
  ).catch((error: Error) => context.progress(`settle: ${error.message}; going on`));
  return round((performance.now() - started) / 1000, 1);
}

// ---- the benchmark ----

async function run(args: string[], context: BenchContext): Promise<unknown> {
  const options = parseOptions(args);
  const { progress } = context;
  const machine = await machineInfo(options.rosterdockRoot);
  if (!machine.ssh2NativeCrypto) progress(`WARNING: ssh2's native crypto binding does not load (${machine.ssh2NativeCryptoError}); Rosterdock will be slower`);

  // Generated before the server starts: generating a big district is heavy, and not what is measured.
  const bigNight = options.phases.includes("sync") ? await cachedNight(context, options.cacheDir, scaledSize(options.students), "canonical", 1) : undefined;

  const dir = await mkdtemp(join(options.workDir, "rosterdock-bench-attack-"));
  context.defer("temporary folder", () => rm(dir, { recursive: true, force: true }));
  progress(`starting rosterdock serve in ${dir}`);
  const server = await RosterdockServer.start(context, join(dir, "server"), {
    root: options.rosterdockRoot,
    slug: "innocent-1",
    env: { ROSTERDOCK_QUIET_SECONDS: String(options.quietSeconds), ROSTERDOCK_MAX_UPLOAD_BYTES: String(4 * 1024 ** 3) },
  });
  const clientDir = async (name: string) => {
    const path = join(dir, "clients", name);
    await mkdir(path, { recursive: true, mode: 0o700 });
    return path;
  };
  const innocents: Innocent[] = [];
  for (let i = 1; i <= options.innocents; i++) {
    const slug = `innocent-${i}`;
    const login = i === 1 ? { username: server.username, password: server.password } : await server.createDistrict(slug);
    const path = await clientDir(slug);
    innocents.push({ slug, ...login, askpass: await writeAskpass(path, login.password), dir: path });
  }
  const greedy = await server.createDistrict("greedy");
  const victim = await server.createDistrict("victim");
  const bigLogin = await server.createDistrict("big");
  const bigDir = await clientDir("big");
  const { clientId } = await server.cli<{ clientId: string }>(["client", "create", "--name", "gradebook"]);
  const { token: adminToken } = await server.cli<{ token: string }>(["token", "create", "--name", "bench", "--scope", "admin"]);
  const setup: Setup = {
    server,
    options,
    context,
    greedy,
    victim,
    clientId,
    adminToken,
    bigNight,
    big: { ...bigLogin, askpass: await writeAskpass(bigDir, bigLogin.password), dir: bigDir },
  };

  const idle = await measurePhase("idle", setup, innocents, undefined);
  const idleSettle = await settle(setup, innocents);
  const idleP99 = idle.uploads.p99Ms ?? 0;
  const phases = [];
  for (const name of options.phases) {
    const result = await measurePhase(name, setup, innocents, () => ATTACKS[name](setup));
    const limitMs = 2 * idleP99;
    const target = {
      p99LimitMs: limitMs,
      p99Met: result.uploads.p99Ms !== null && result.uploads.p99Ms <= limitMs,
      noFailedUpload: result.uploads.failed === 0,
      met: false,
    };
    target.met = target.p99Met && target.noFailedUpload && result.attackError === undefined;
    phases.push({ ...result, target, settleSeconds: await settle(setup, innocents) });
  }
  await server.stop();
  return {
    benchmark: "attack",
    date: new Date().toISOString(),
    settings: { ...options, innocentAddress: INNOCENT_ADDRESS, bigNightBytes: bigNight?.bytes ?? null },
    machine: { ...machine, loadAverageAtEnd: loadavg().map((n) => round(n, 2)) },
    idle: { ...idle, settleSeconds: idleSettle },
    phases,
    target: {
      rule: "each phase: innocent uploads' p99 ≤ 2 × idle p99, and no failed upload",
      met: phases.every((p) => p.target.met),
      failedPhases: phases.filter((p) => !p.target.met).map((p) => p.phase),
    },
  };
}

export const attackBenchmark: Benchmark = {
  name: "attack",
  description: "Innocent districts' upload latency during a banner flood, a channel flood, a hash flood and a 1M-student sync, against idle",
  usage: USAGE,
  run,
};
