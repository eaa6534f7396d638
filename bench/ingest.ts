import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { parseArgs } from "node:util";
import SqliteDatabase from "better-sqlite3";
import type { Benchmark, BenchContext } from "./benchmark.ts";
import { machineInfo } from "./support/machine-info.ts";
import { cpuTicks, exited, runCommand, TICKS_PER_SECOND } from "./support/processes.ts";
import { ROOT } from "./support/rosterdock-server.ts";
import { BENCHMARK_DEMO_SIZE, DEMO_STYLES, generateDemoData } from "../src/demo/generate-demo-data.ts";
import type { DemoExpectations, DemoStyle } from "../src/demo/generate-demo-data.ts";
import type { DistrictSize } from "../src/demo/demo-district.ts";
import { INGEST_EXIT_CODES } from "../src/errors.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { ApiWatch, DEFAULT_API_RATE, summarise, type WatchSample, type WatchSummary } from "./support/api-watch.ts";
import { CommitProbe } from "./support/commit-probe.ts";

const USAGE = [
  `  --students N              students in the generated district (default ${BENCHMARK_DEMO_SIZE.students}: with teachers, 1M users and ~8M enrollments)`,
  "  --style S                 canonical (one zip, default) | dem (Data Export Manager CSVs) | autosend (tab-separated, Windows-1252)",
  "  --cache-dir DIR           where generated nights are kept between runs (default: <tmp>/rosterdock-bench-ingest-cache)",
  "  --work-dir DIR            where the data folder and the baseline database go (default: a temporary folder, removed afterwards)",
  "  --keep                    keep the work folder",
  "  --no-baseline             skip the sqlite3 baselines (plain .import, and .import into the live roster's keyed tables)",
  "  --rosterdock-root DIR     measure another checkout's `bin/rosterdock` (e.g. before a patch); default this one",
  "  --cpu-prof                run the ingests with node --cpu-prof; the profiles are kept in the work folder",
  "  --rollover                then the next school year (every section, term and enrollment new): its ingest (held by the",
  "                            safeguards), `sync approve` and `sync rollback`, each timed",
  "  --db sqlite|postgres      where the roster goes (default sqlite). postgres: a throwaway Debian PostgreSQL 15 cluster with",
  "                            durable settings, and a keyed COPY baseline instead of the sqlite3 ones",
  "  --api-watch / --no-api-watch",
  "                            OneRoster requests against the district during each ingest, from a `rosterdock serve` on the",
  "                            same database (default: on for postgres, off for sqlite)",
  `  --api-rate N              requests the API watch starts per second, on schedule (default ${DEFAULT_API_RATE}); 0: four`,
  "                            back-to-back loops instead (a stress that takes about a core)",
].join("\n");

/** Targets from issue 3 (SQLite) and issue 15 (PostgreSQL: the ratio is to the keyed COPY baseline; apiMaxMs during the ingests). */
const TARGETS = {
  sqlite: { firstNightSeconds: 60, baselineRatio: 2.5, peakRssMiB: 400, secondToFirstRatio: 0.5 },
  postgres: { firstNightSeconds: 90, baselineRatio: 1.5, peakRssMiB: 400, secondToFirstRatio: 0.5, apiMaxMs: 200 },
} as const;

/** PostgreSQL settings of the benchmark's cluster: durable (fsync, synchronous commit), sized for a 1M-user district. */
const POSTGRES_SETTINGS = { shared_buffers: "2GB", maintenance_work_mem: "1GB", work_mem: "64MB", max_wal_size: "16GB", checkpoint_timeout: "15min" };

/** Bumped when the cache layout changes; the generator's own sources are hashed into the key too. */
const CACHE_VERSION = 1;

interface ChildMeasurement {
  seconds: number;
  /** VmHWM (peak RSS) of the process, last seen before it exited, MiB. */
  peakRssMiB: number;
  /** user + system CPU time, last seen before it exited (polled: may miss the last ~50 ms). */
  cpuSeconds: number;
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

interface NightResult {
  night: number;
  status: string;
  syncId: number;
  seconds: number;
  /** Data rows read from all files (every row of every file, kept or not), per wall-clock second. */
  rows: number;
  rowsPerSecond: number;
  peakRssMiB: number;
  cpuSeconds: number;
  /** The sync's own `summary.timings` (stage includes unpack, parse, validate, keys). */
  timings: { stageMs: number; planMs: number; applyMs: number } | null;
  /** Wall time outside the three stages: node + tsx start, migrations check, archiving, hashing, reporting. */
  otherMs: number | null;
  changes: number | null;
  counts: Record<string, { created: number; updated: number; deleted: number; unchanged: number }>;
  issueCounts: unknown;
  /** Line digests the sync kept; on a second night, `delta` says unchanged lines were skipped. */
  digests: unknown;
  /** OneRoster requests made meanwhile (--api-watch): over the whole ingest, over its apply, and just after its commit. */
  api: { wholeIngest: WatchSummary; apply: WatchSummary; afterCommit: WatchSummary | null; commitSeenBeforeExitMs: number | null } | null;
}

/** `npm run bench -- ingest`: `rosterdock ingest` end to end on a generated district, two nights, against `sqlite3 .import`. */
export const ingestBenchmark: Benchmark = {
  name: "ingest",
  description: "`rosterdock ingest` of a 1M-user / 8M-enrollment district, first night and a second night with ~1% changes, vs `sqlite3 .import`",
  usage: USAGE,
  async run(args: string[], context: BenchContext) {
    const { values } = parseArgs({
      args,
      options: {
        students: { type: "string" },
        style: { type: "string", default: "canonical" },
        "cache-dir": { type: "string" },
        "work-dir": { type: "string" },
        keep: { type: "boolean", default: false },
        "no-baseline": { type: "boolean", default: false },
        "rosterdock-root": { type: "string" },
        "cpu-prof": { type: "boolean", default: false },
        rollover: { type: "boolean", default: false },
        db: { type: "string", default: "sqlite" },
        "api-watch": { type: "boolean" },
        "no-api-watch": { type: "boolean" },
        "api-rate": { type: "string" },
      },
    });
    const dbName = values.db;
    if (dbName !== "sqlite" && dbName !== "postgres") throw new Error("--db must be sqlite or postgres");
    const watchApi = values["no-api-watch"] ? false : (values["api-watch"] ?? dbName === "postgres");
    const apiRate = Number(values["api-rate"] ?? DEFAULT_API_RATE);
    if (!Number.isFinite(apiRate) || apiRate < 0) throw new Error("--api-rate must be a number ≥ 0");
    const targets = TARGETS[dbName];
    const style = values.style as DemoStyle;
    if (!DEMO_STYLES.includes(style)) throw new Error(`--style must be one of ${DEMO_STYLES.join(", ")}`);
    const students = Number(values.students ?? BENCHMARK_DEMO_SIZE.students);
    if (!Number.isInteger(students) || students < 10) throw new Error("--students must be an integer ≥ 10");
    const size = scaledSize(students);
    const root = values["rosterdock-root"] ?? ROOT;
    const cacheDir = values["cache-dir"] ?? join(tmpdir(), "rosterdock-bench-ingest-cache");
    const workDir = values["work-dir"] ?? (await mkdtemp(join(tmpdir(), "rosterdock-bench-ingest-")));
    await mkdir(workDir, { recursive: true });
    if (!values.keep && !values["cpu-prof"]) context.defer("work folder", () => rm(workDir, { recursive: true, force: true }));

    // 1. Both nights, generated once and cached.
    const nights = [];
    for (const night of [1, 2]) {
      context.checkInterrupted();
      nights.push(await cachedNight(context, cacheDir, size, style, night));
    }

    // 2. A fresh data folder with one district, outside the measurement.
    const dataDir = join(workDir, "data");
    await rm(dataDir, { recursive: true, force: true });
    await mkdir(dataDir, { recursive: true });
    const postgres = dbName === "postgres" ? await startPostgres({ durable: true, settings: POSTGRES_SETTINGS }) : null;
    if (postgres) context.defer("PostgreSQL cluster", () => postgres.stop());
    const databaseUrl = postgres ? await postgres.createDatabase("rosterdock_bench") : null;
    const env: NodeJS.ProcessEnv = { ...process.env, ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_LOG_LEVEL: "warn", ...(databaseUrl ? { ROSTERDOCK_DATABASE_URL: databaseUrl } : {}) };
    const bin = join(root, "bin", "rosterdock");
    const slug = "bench";
    await runCommand(bin, ["district", "create", slug, "--name", "Benchmark district", "--json"], { env });
    const watch = watchApi ? await ApiWatch.start(context, workDir, { root, slug, env, rate: apiRate }) : null;
    if (watch) context.defer("api watch", () => watch.stop());
    const probe = watch ? await CommitProbe.open(databaseUrl ? { databaseUrl } : { sqlitePath: join(dataDir, "rosterdock.sqlite") }, slug) : null;
    if (probe) context.defer("commit probe", () => probe.end());

    // 3. The two nights, each `rosterdock ingest` as its own process.
    const results: NightResult[] = [];
    for (const [i, night] of nights.entries()) {
      context.checkInterrupted();
      context.progress(`ingesting night ${i + 1} (${style}, ${mib(night.bytes)} MiB in ${night.ingestPaths.length} path(s))`);
      const command = values["cpu-prof"]
        ? ["node", "--cpu-prof", `--cpu-prof-dir=${join(workDir, `cpu-prof-night${i + 1}`)}`, "--import", join(root, "node_modules/tsx/dist/esm/index.mjs"), join(root, "src/cli/main.ts")]
        : [bin];
      await probe?.begin();
      watch?.begin();
      const run = await measureChild(command[0]!, [...command.slice(1), "ingest", slug, ...night.ingestPaths, "--json"], env, context);
      const ended = Date.now();
      probe?.stop();
      const committedAt = probe?.committedAt ?? null;
      // The first requests of the new roster too (its caches are cold): the watch goes on a while after the commit.
      if (watch && committedAt !== null) await new Promise((resolve) => setTimeout(resolve, Math.max(0, committedAt + AFTER_COMMIT_MS - Date.now())));
      const samples = (await watch?.end()) ?? null;
      if (run.exitCode !== 0 && run.stdout.trim() === "") throw new Error(`rosterdock ingest failed (exit ${run.exitCode}):\n${run.stderr.slice(-4000)}`);
      const ingested = JSON.parse(run.stdout) as { id: number; status: string };
      // The sync as recorded, as an operator would look it up.
      const shown = JSON.parse((await runCommand(bin, ["sync", "show", String(ingested.id), "--json"], { env })).stdout) as {
        status: string;
        counts: NightResult["counts"];
        summary: { files?: Array<{ rows: number }>; timings?: NightResult["timings"]; changes?: number | null; issueCounts?: unknown; error?: string; digests?: unknown };
      };
      if (shown.status !== "applied") throw new Error(`night ${i + 1} was ${shown.status}: ${JSON.stringify(shown.summary).slice(0, 2000)}`);
      const rows = (shown.summary.files ?? []).reduce((sum, f) => sum + f.rows, 0);
      const timings = shown.summary.timings ?? null;
      results.push({
        night: i + 1,
        status: shown.status,
        syncId: ingested.id,
        seconds: round(run.seconds, 2),
        rows,
        rowsPerSecond: Math.round(rows / run.seconds),
        peakRssMiB: round(run.peakRssMiB, 1),
        cpuSeconds: round(run.cpuSeconds, 1),
        timings,
        otherMs: timings ? Math.round(run.seconds * 1000 - timings.stageMs - timings.planMs - timings.applyMs) : null,
        changes: shown.summary.changes ?? null,
        counts: shown.counts,
        issueCounts: shown.summary.issueCounts ?? null,
        digests: shown.summary.digests ?? null,
        api: samples && apiWindows(samples, ended, committedAt, timings?.applyMs ?? 0),
      });
      context.progress(`night ${i + 1}: ${round(run.seconds, 1)} s, peak RSS ${round(run.peakRssMiB, 0)} MiB, timings ${JSON.stringify(timings)}`);
    }
    await watch?.stop();
    const databaseBytes = databaseUrl ? await postgresDatabaseBytes(databaseUrl) : await sizeOf(join(dataDir, "rosterdock.sqlite")).catch(() => null);
    const rollover = values.rollover ? await measureRollover(context, await cachedNight(context, cacheDir, size, style, 1, 2), bin, slug, env) : null;

    // 4. The baseline: the same night-1 CSVs through `sqlite3 .import`, into a fresh database.
    let baseline: Awaited<ReturnType<typeof importBaseline>> | null = null;
    let keyedBaseline: KeyedBaseline | null = null;
    if (!values["no-baseline"] && postgres) {
      if (style !== "canonical") throw new Error("the keyed COPY baseline reads canonical headers: use --style canonical or --no-baseline");
      context.checkInterrupted();
      context.progress("keyed COPY baseline: COPY into scratch tables, then the live roster's keyed tables and indexes");
      keyedBaseline = await copyKeyedBaseline(context, workDir, root, nights[0]!.csvFiles, await postgres.createDatabase("keyed_baseline"));
      context.progress(`keyed COPY baseline: ${keyedBaseline.seconds} s`);
    } else if (!values["no-baseline"]) {
      context.checkInterrupted();
      context.progress(`baseline: sqlite3 .import of ${nights[0]!.csvFiles.length} files`);
      baseline = await importBaseline(context, workDir, nights[0]!.csvFiles, style);
      context.progress(`baseline: ${baseline.seconds} s`);
      if (style === "canonical") {
        context.progress("keyed baseline: sqlite3 .import, then the live roster's keyed tables and indexes");
        keyedBaseline = await importKeyedBaseline(context, workDir, root, nights[0]!.csvFiles);
        context.progress(`keyed baseline: ${keyedBaseline.seconds} s`);
      }
    }

    const [first, second] = results as [NightResult, NightResult];
    const ratios = {
      firstNightToBaseline: baseline ? round(first.seconds / baseline.seconds, 2) : null,
      firstNightToKeyedBaseline: keyedBaseline ? round(first.seconds / keyedBaseline.seconds, 2) : null,
      keyedBaselineToBaseline: baseline && keyedBaseline ? round(keyedBaseline.seconds / baseline.seconds, 2) : null,
      secondNightToBaseline: baseline ? round(second.seconds / baseline.seconds, 2) : null,
      secondNightToFirst: round(second.seconds / first.seconds, 2),
    };
    const peakRssMiB = Math.max(first.peakRssMiB, second.peakRssMiB);
    const apiMaxMs = watch ? Math.max(...results.map((r) => r.api?.apply.maxMs ?? 0)) : null;
    return {
      benchmark: "ingest",
      settings: { students, style, size, rosterdockRoot: root, cacheDir, db: dbName, ...(postgres ? { postgres: POSTGRES_SETTINGS } : {}), apiWatch: watchApi ? { ratePerSecond: apiRate === 0 ? null : apiRate, loops: apiRate === 0 ? 4 : null } : false },
      district: { ...nights[0]!.expected, night1Bytes: nights[0]!.bytes, night2Bytes: nights[1]!.bytes, csvBytes: nights[0]!.csvBytes },
      generateSeconds: nights.map((n) => n.generateSeconds),
      nights: results,
      baseline,
      keyedBaseline,
      ratios,
      peakRssMiB,
      databaseMiB: databaseBytes === null ? null : round(databaseBytes / 2 ** 20, 0),
      rollover,
      targets: {
        ...targets,
        met: {
          firstNightSeconds: first.seconds <= targets.firstNightSeconds,
          // SQLite: to the plain .import; PostgreSQL: to the keyed COPY (the issue's baseline).
          baselineRatio: postgres
            ? ratios.firstNightToKeyedBaseline === null ? null : ratios.firstNightToKeyedBaseline <= targets.baselineRatio
            : ratios.firstNightToBaseline === null ? null : ratios.firstNightToBaseline <= targets.baselineRatio,
          peakRssMiB: peakRssMiB <= targets.peakRssMiB,
          secondToFirstRatio: ratios.secondNightToFirst <= targets.secondToFirstRatio,
          ...("apiMaxMs" in targets ? { apiMaxMs: apiMaxMs === null ? null : apiMaxMs <= targets.apiMaxMs } : {}),
        },
      },
      machine: await machineInfo(ROOT),
    };
  },
};

/** How long after the commit the API watch goes on: the first requests of the new roster version. */
const AFTER_COMMIT_MS = 3000;

/**
 * The API watch's requests: over the whole ingest; those started while the apply ran (its last
 * applyMs before the commit was seen, to within the probe's 20 ms); and those started in the
 * 3 s after it, the first of the new roster version. Without a commit seen, the apply window is
 * the ingest's end (its last applyMs, plus 2 s for the process to report and exit).
 */
function apiWindows(samples: readonly WatchSample[], ended: number, committedAt: number | null, applyMs: number) {
  return {
    wholeIngest: summarise(samples, -Infinity, ended),
    apply: committedAt === null ? summarise(samples, ended - applyMs - 2000, ended) : summarise(samples, committedAt - applyMs, committedAt),
    afterCommit: committedAt === null ? null : summarise(samples, committedAt, committedAt + AFTER_COMMIT_MS),
    commitSeenBeforeExitMs: committedAt === null ? null : ended - committedAt,
  };
}

// ---- the next school year ----

interface StepResult {
  seconds: number;
  peakRssMiB: number;
  status: string;
  timings: NightResult["timings"];
  changes: number | null;
  rebuiltIndexes: string[];
}

/**
 * The yearly rollover on top of the two nights: every section, term and enrollment is new. The
 * ingest is held (it deletes every class and enrollment); an operator approves it, which reads
 * the delivery again and applies it; then rolls it back. Each step is its own process.
 */
async function measureRollover(context: BenchContext, night: CachedNight, bin: string, slug: string, env: NodeJS.ProcessEnv) {
  const step = async (label: string, args: string[], expectedExit = 0): Promise<StepResult & { id: number }> => {
    context.checkInterrupted();
    context.progress(`rollover: ${label}`);
    const run = await measureChild(bin, [...args, "--json"], env, context);
    if (run.exitCode !== expectedExit) throw new Error(`rosterdock ${args.join(" ")} failed (exit ${run.exitCode}):\n${run.stderr.slice(-4000)}`);
    const out = JSON.parse(run.stdout) as {
      id: number;
      status: string;
      summary?: { timings?: NightResult["timings"]; changes?: number | null; rebuiltIndexes?: string[] };
      rollback?: { changes: number; rebuiltIndexes: string[] };
    };
    const result = {
      id: out.id,
      seconds: round(run.seconds, 2),
      peakRssMiB: round(run.peakRssMiB, 1),
      status: out.status,
      timings: out.rollback ? null : (out.summary?.timings ?? null),
      changes: out.rollback?.changes ?? out.summary?.changes ?? null,
      rebuiltIndexes: out.rollback?.rebuiltIndexes ?? out.summary?.rebuiltIndexes ?? [],
    };
    context.progress(`rollover: ${label}: ${result.seconds} s, ${result.status}, timings ${JSON.stringify(result.timings)}`);
    return result;
  };
  // A held ingest exits 3 (docs/errors.md).
  const { id: syncId, ...ingest } = await step("ingest of the next school year", ["ingest", slug, ...night.ingestPaths], INGEST_EXIT_CODES.held);
  if (ingest.status !== "held") throw new Error(`the next school year was ${ingest.status}, not held`);
  const { id: _approved, ...approve } = await step("sync approve", ["sync", "approve", String(syncId)]);
  const { id: _rolledBack, ...rollback } = await step("sync rollback", ["sync", "rollback", String(syncId)]);
  return { syncId, ingest, approve, rollback };
}

// ---- generated nights, cached ----

export interface CachedNight {
  /** What `rosterdock ingest` is given: the zip, or the style's files. */
  ingestPaths: string[];
  /** Plain CSV/TXT files for the baseline (a zip's entries, extracted). */
  csvFiles: string[];
  bytes: number;
  csvBytes: number;
  expected: DemoExpectations;
  /** null: taken from the cache. */
  generateSeconds: number | null;
}

export async function cachedNight(context: BenchContext, cacheDir: string, size: DistrictSize, style: DemoStyle, night: number, schoolYear = 1): Promise<CachedNight> {
  const year = schoolYear === 1 ? {} : { schoolYear };
  const key = createHash("sha256")
    .update(JSON.stringify({ CACHE_VERSION, size, style, night, ...year, generator: await generatorFingerprint() }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(cacheDir, `${style}-${size.students}-${schoolYear === 1 ? "" : `year${schoolYear}-`}night${night}-${key}`);
  const manifestPath = join(dir, "manifest.json");
  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as Omit<CachedNight, "generateSeconds">;
    if ([...manifest.ingestPaths, ...manifest.csvFiles].every((p) => existsSync(p))) {
      context.progress(`night ${night}: cached in ${dir}`);
      return { ...manifest, generateSeconds: null };
    }
  }
  // Generated into a scratch folder, renamed into place when complete: an interrupted run leaves no half cache.
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  context.defer(`partial cache ${partial}`, () => rm(partial, { recursive: true, force: true }));
  context.progress(`night ${night}: generating ${size.students} students, ${size.teachers} teachers (${style}) into ${dir}`);
  const started = performance.now();
  const generated = await generateDemoData(partial, { ...size, styles: [style], night, schoolYear });
  const generateSeconds = round((performance.now() - started) / 1000, 1);
  const files = generated.files[style].map((p) => p.slice(partial.length + 1));
  let csvFiles = files;
  if (style === "canonical") {
    const csvDir = join(partial, "csv");
    await mkdir(csvDir);
    await runCommand("unzip", ["-q", "-o", join(partial, files[0]!), "-d", csvDir]);
    csvFiles = (await readdir(csvDir)).sort().map((name) => join("csv", name));
  }
  await rm(dir, { recursive: true, force: true });
  await rename(partial, dir);
  const sum = async (paths: string[]) => (await Promise.all(paths.map((p) => sizeOf(p)))).reduce((a, b) => a + b, 0);
  const ingestPaths = files.map((p) => join(dir, p));
  const csvPaths = csvFiles.map((p) => join(dir, p));
  const manifest: Omit<CachedNight, "generateSeconds"> = {
    ingestPaths,
    csvFiles: csvPaths,
    bytes: await sum(ingestPaths),
    csvBytes: await sum(csvPaths),
    expected: generated.expected,
  };
  await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  context.progress(`night ${night}: generated in ${generateSeconds} s`);
  return { ...manifest, generateSeconds };
}

/** The demo generator's sources: a change to them regenerates the cache. */
async function generatorFingerprint(): Promise<string> {
  const hash = createHash("sha256");
  for (const file of ["generate-demo-data.ts", "demo-district.ts"]) hash.update(await readFile(join(ROOT, "src", "demo", file)));
  return hash.digest("hex");
}

/** BENCHMARK_DEMO_SIZE scaled to the student count (~49 students per teacher, 8 enrollments each). */
export function scaledSize(students: number): DistrictSize {
  const ratio = students / BENCHMARK_DEMO_SIZE.students;
  return {
    ...BENCHMARK_DEMO_SIZE,
    students,
    teachers: Math.max(3, Math.round(BENCHMARK_DEMO_SIZE.teachers * ratio)),
    schools: Math.max(3, Math.min(BENCHMARK_DEMO_SIZE.schools, Math.round(BENCHMARK_DEMO_SIZE.schools * ratio))),
    courses: Math.max(30, Math.round(BENCHMARK_DEMO_SIZE.courses * Math.min(1, ratio * 4))),
  };
}

// ---- measuring a child process ----

/** Runs a command to completion, polling its /proc status for peak RSS (VmHWM) and CPU time. */
async function measureChild(command: string, args: string[], env: NodeJS.ProcessEnv, context: BenchContext): Promise<ChildMeasurement> {
  const started = performance.now();
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let killedBySignal = false;
  context.defer(`${command} ${args[0] ?? ""}`, () => {
    if (child.exitCode === null && child.signalCode === null) {
      killedBySignal = true;
      child.kill("SIGTERM");
    }
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout!.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk));
  let peakKiB = 0;
  let ticks = 0;
  const sample = () => {
    const hwm = statusKiB(child.pid!, "VmHWM");
    if (hwm !== undefined && hwm > peakKiB) peakKiB = hwm;
    const cpu = cpuTicks(child.pid!);
    if (cpu !== undefined && cpu.own > ticks) ticks = cpu.own;
  };
  const timer = setInterval(sample, 50);
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  await exited(child);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  await closed;
  if (killedBySignal) throw new Error(`${command} was interrupted`);
  return {
    seconds,
    peakRssMiB: peakKiB / 1024,
    cpuSeconds: ticks / TICKS_PER_SECOND,
    exitCode: child.exitCode,
    stdout: Buffer.concat(stdout).toString("utf8"),
    stderr: Buffer.concat(stderr).toString("utf8"),
  };
}

function statusKiB(pid: number, field: "VmHWM" | "VmRSS"): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

// ---- the baseline ----

/**
 * `sqlite3 .import` of the night's files into a fresh database, one table per file, no keys:
 * the cost of getting the bytes into SQLite at all. AutoSend files are tab-separated.
 */
async function importBaseline(context: BenchContext, workDir: string, files: string[], style: DemoStyle) {
  const database = join(workDir, "baseline.sqlite");
  await rm(database, { force: true });
  const script = join(workDir, "baseline.sql");
  const tables = files.map((_, i) => `t${i}`);
  await writeFile(
    script,
    [style === "autosend" ? ".mode tabs" : ".mode csv", ...files.map((file, i) => `.import '${file.replace(/'/g, "''")}' ${tables[i]}`), ""].join("\n"),
  );
  const run = await measureChild("sqlite3", ["-bail", database, `.read '${script}'`], process.env, context);
  if (run.exitCode !== 0) throw new Error(`sqlite3 .import failed (exit ${run.exitCode}):\n${run.stderr.slice(-2000)}`);
  const rows = await countRows(database, tables);
  const databaseBytes = await sizeOf(database);
  await rm(database, { force: true });
  context.progress(`baseline imported ${rows} rows`);
  return {
    ...(await sqlite3Result(run, rows)),
    databaseMiB: round(databaseBytes / 2 ** 20, 0),
    warnings: run.stderr.trim().split("\n").filter(Boolean).length,
  };
}

/** Rows in the given tables of a database, all together. */
async function countRows(database: string, tables: readonly string[]): Promise<number> {
  const counts = await runCommand("sqlite3", [database, tables.map((t) => `SELECT count(*) FROM ${t};`).join(" ")]);
  return counts.stdout
    .trim()
    .split("\n")
    .reduce((sum, n) => sum + Number(n), 0);
}

/** What both baselines report of their sqlite3 run. */
async function sqlite3Result(run: ChildMeasurement, rows: number) {
  return {
    tool: (await runCommand("sqlite3", ["--version"])).stdout.trim().split(" ")[0],
    seconds: round(run.seconds, 2),
    rows,
    rowsPerSecond: Math.round(rows / run.seconds),
    peakRssMiB: round(run.peakRssMiB, 1),
  };
}

/**
 * What SQLite alone needs to turn the same CSVs into the live roster's tables: `.import` into a
 * scratch database, then one WAL transaction that fills `roster_users`, `roster_classes` and
 * `roster_enrollments` of a freshly migrated Rosterdock database in key order, with their
 * secondary indexes dropped first and built after (as a first load does). No validation, no
 * references, no staging, no change log: a floor under any first night that ends in those
 * tables, measured the same way as the plain baseline. Canonical headers only.
 */
async function importKeyedBaseline(context: BenchContext, workDir: string, root: string, files: string[]) {
  const dataDir = join(workDir, "keyed-baseline");
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  // The schema comes from Rosterdock's own migrations.
  await runCommand(join(root, "bin", "rosterdock"), ["district", "create", "keyed", "--name", "Keyed baseline", "--json"], {
    env: { ...process.env, ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_LOG_LEVEL: "warn" },
  });
  const database = join(dataDir, "rosterdock.sqlite");
  const tables = ["roster_users", "roster_classes", "roster_enrollments"];
  const schema = new SqliteDatabase(database, { readonly: true });
  const indexes = schema
    .prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (${tables.map(() => "?").join(", ")}) ORDER BY name`)
    .all(...tables) as Array<{ name: string; sql: string }>;
  schema.close();
  const csv = (name: string) => {
    const file = files.find((f) => basename(f) === name);
    if (file === undefined) throw new Error(`keyed baseline: no ${name} among the night's files`);
    return `'${file.replace(/'/g, "''")}'`;
  };
  const empty = (column: string) => `nullif(${column}, '')`;
  const script = join(workDir, "keyed-baseline.sql");
  await writeFile(
    script,
    [
      ".bail on",
      "PRAGMA synchronous = NORMAL;",
      "PRAGMA threads = 1;",
      `ATTACH '${join(dataDir, "scratch.sqlite").replace(/'/g, "''")}' AS scratch;`,
      "PRAGMA scratch.journal_mode = OFF;",
      `.import --csv --schema scratch ${csv("users.csv")} users`,
      `.import --csv --schema scratch ${csv("classes.csv")} classes`,
      `.import --csv --schema scratch ${csv("enrollments.csv")} enrollments`,
      "BEGIN IMMEDIATE;",
      ...indexes.map((i) => `DROP INDEX "${i.name}";`),
      `INSERT OR IGNORE INTO roster_users (district_id, user_key, scope, district_user_id, role, first_name, middle_name, last_name, email, username,
         school_id, school_ids, grade, student_number, teacher_number, state_id, birth_date, last_sync_id)
       SELECT 1, CASE WHEN role = 'student' THEN 'student-' || district_user_id WHEN teacher_number <> '' THEN 'staff-' || teacher_number ELSE 'staff-id-' || district_user_id END,
         CASE WHEN role = 'student' THEN 'student' ELSE 'staff' END, district_user_id, role, first_name, ${empty("middle_name")}, last_name, ${empty("email")}, NULL,
         ${empty("school_id")}, json_array(school_id), ${empty("grade")}, ${empty("student_number")}, ${empty("teacher_number")}, NULL, ${empty("birth_date")}, 0
       FROM scratch.users ORDER BY 2;`,
      `INSERT OR IGNORE INTO roster_classes (district_id, class_id, class_name, school_id, course_id, teacher_id, teacher_key, term_id, section_number, period, room, last_sync_id)
       SELECT 1, class_id, class_name, school_id, course_id, teacher_id, 'staff-id-' || teacher_id, ${empty("term_id")}, ${empty("section_number")}, ${empty("period")}, ${empty("room")}, 0
       FROM scratch.classes ORDER BY class_id;`,
      `INSERT OR IGNORE INTO roster_enrollments (district_id, class_id, student_id, start_date, end_date, last_sync_id)
       SELECT 1, class_id, student_id, ${empty("start_date")}, ${empty("end_date")}, 0 FROM scratch.enrollments ORDER BY class_id, student_id;`,
      ...indexes.map((i) => `${i.sql};`),
      "COMMIT;",
      "",
    ].join("\n"),
  );
  const run = await measureChild("sqlite3", [database, `.read '${script.replace(/'/g, "''")}'`], process.env, context);
  if (run.exitCode !== 0) throw new Error(`keyed baseline failed (exit ${run.exitCode}):\n${run.stderr.slice(-2000)}`);
  const rows = await countRows(database, tables);
  await rm(dataDir, { recursive: true, force: true });
  context.progress(`keyed baseline: ${rows} rows in users, classes and enrollments`);
  return { ...(await sqlite3Result(run, rows)), tables, indexes: indexes.length };
}

/** What a keyed baseline reports: its tool's run, and the tables and indexes it filled. */
type KeyedBaseline = Awaited<ReturnType<typeof sqlite3Result>> & { tables: string[]; indexes: number };

/**
 * The PostgreSQL counterpart of the keyed baseline: `COPY … FROM STDIN` (psql's `\copy`) of the
 * same CSVs into UNLOGGED scratch tables, then one transaction that fills `roster_users`,
 * `roster_classes` and `roster_enrollments` of a freshly migrated Rosterdock database (the
 * district's partition of each) in key order, their secondary indexes dropped first and built
 * after. Same cluster, same durability as
 * the ingests. Like the SQLite one it does less than a night: no validation, no references, no
 * change log, no name keys (left at their default).
 */
async function copyKeyedBaseline(context: BenchContext, workDir: string, root: string, files: string[], databaseUrl: string): Promise<KeyedBaseline> {
  const dataDir = join(workDir, "keyed-baseline");
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  // The schema comes from Rosterdock's own migrations; the district is id 1.
  await runCommand(join(root, "bin", "rosterdock"), ["district", "create", "keyed", "--name", "Keyed baseline", "--json"], {
    env: { ...process.env, ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_LOG_LEVEL: "warn", ROSTERDOCK_DATABASE_URL: databaseUrl },
  });
  const tables = ["roster_users", "roster_classes", "roster_enrollments"];
  const indexes = (
    await psqlRows(
      databaseUrl,
      `SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = 'public' AND tablename IN (${tables.map((t) => `'${t}'`).join(", ")})
         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname) ORDER BY indexname`,
    )
  ).map(([name, sql]) => ({ name: name!, sql: sql! }));
  const csv = (name: string) => {
    const file = files.find((f) => basename(f) === name);
    if (file === undefined) throw new Error(`keyed baseline: no ${name} among the night's files`);
    return file;
  };
  const scratch = async (table: string, file: string) => {
    const header = readFileSync(file, "utf8").slice(0, 4096).split(/\r?\n/, 1)[0]!.split(",");
    return [
      `CREATE UNLOGGED TABLE ${table} (${header.map((c) => `"${c}" text`).join(", ")});`,
      `\\copy ${table} FROM '${file.replace(/'/g, "''")}' WITH (FORMAT csv, HEADER true)`,
    ];
  };
  const empty = (column: string) => `nullif(${column}, '')`;
  const script = join(workDir, "keyed-baseline.psql");
  await writeFile(
    script,
    [
      "\\set ON_ERROR_STOP on",
      ...(await scratch("scratch_users", csv("users.csv"))),
      ...(await scratch("scratch_classes", csv("classes.csv"))),
      ...(await scratch("scratch_enrollments", csv("enrollments.csv"))),
      "BEGIN;",
      ...indexes.map((i) => `DROP INDEX "${i.name}";`),
      // The tables are partitioned per district (migration 0016): the district's partitions, keyed by the tables' keys.
      ...tables.map((t) => `CREATE TABLE "${t}_d1" PARTITION OF ${t} FOR VALUES IN (1);`),
      `INSERT INTO roster_users (district_id, user_key, scope, district_user_id, role, first_name, middle_name, last_name, email, username,
         school_id, school_ids, grade, student_number, teacher_number, state_id, birth_date, last_sync_id)
       SELECT 1, CASE WHEN role = 'student' THEN 'student-' || district_user_id WHEN teacher_number <> '' THEN 'staff-' || teacher_number ELSE 'staff-id-' || district_user_id END,
         CASE WHEN role = 'student' THEN 'student' ELSE 'staff' END, district_user_id, role, first_name, ${empty("middle_name")}, last_name, ${empty("email")}, NULL,
         ${empty("school_id")}, json_build_array(school_id)::text, ${empty("grade")}, ${empty("student_number")}, ${empty("teacher_number")}, NULL, ${empty("birth_date")}, 0
       FROM scratch_users ORDER BY 2 ON CONFLICT DO NOTHING;`,
      `INSERT INTO roster_classes (district_id, class_id, class_name, school_id, course_id, teacher_id, teacher_key, term_id, section_number, period, room, last_sync_id)
       SELECT 1, class_id, class_name, school_id, course_id, teacher_id, 'staff-id-' || teacher_id, ${empty("term_id")}, ${empty("section_number")}, ${empty("period")}, ${empty("room")}, 0
       FROM scratch_classes ORDER BY class_id ON CONFLICT DO NOTHING;`,
      `INSERT INTO roster_enrollments (district_id, class_id, student_id, start_date, end_date, last_sync_id)
       SELECT 1, class_id, student_id, ${empty("start_date")}, ${empty("end_date")}, 0 FROM scratch_enrollments ORDER BY class_id, student_id ON CONFLICT DO NOTHING;`,
      ...indexes.map((i) => `${i.sql};`),
      "COMMIT;",
      "",
    ].join("\n"),
  );
  const run = await measureChild("psql", ["-X", "-q", databaseUrl, "-f", script], process.env, context);
  if (run.exitCode !== 0) throw new Error(`keyed COPY baseline failed (exit ${run.exitCode}):\n${run.stderr.slice(-2000)}`);
  const rows = (await psqlRows(databaseUrl, tables.map((t) => `SELECT count(*) FROM ${t}`).join(" UNION ALL "))).reduce((sum, [n]) => sum + Number(n), 0);
  await rm(dataDir, { recursive: true, force: true });
  context.progress(`keyed COPY baseline: ${rows} rows in users, classes and enrollments`);
  const version = (await runCommand("psql", ["-X", "-At", databaseUrl, "-c", "SHOW server_version"])).stdout.trim();
  return { tool: `PostgreSQL ${version} COPY`, seconds: round(run.seconds, 2), rows, rowsPerSecond: Math.round(rows / run.seconds), peakRssMiB: round(run.peakRssMiB, 1), tables, indexes: indexes.length };
}

/** Rows of a query through psql, unaligned, fields split on the unit separator. */
async function psqlRows(databaseUrl: string, query: string): Promise<string[][]> {
  const { stdout } = await runCommand("psql", ["-X", "-At", "-F", "\x1f", databaseUrl, "-c", query]);
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.split("\x1f"));
}

async function postgresDatabaseBytes(databaseUrl: string): Promise<number> {
  return Number((await psqlRows(databaseUrl, "SELECT pg_database_size(current_database())"))[0]![0]);
}

// ---- helpers ----

async function sizeOf(path: string): Promise<number> {
  return (await stat(path)).size;
}

function mib(bytes: number): number {
  return round(bytes / 2 ** 20, 0);
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
