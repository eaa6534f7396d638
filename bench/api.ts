import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import type { Benchmark, BenchContext } from "./benchmark.ts";
import { machineInfo } from "./support/machine-info.ts";
import { exited, freePort, runCommand, stopChild } from "./support/processes.ts";
import { ROOT } from "./support/rosterdock-server.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/logger.ts";
import { createRosterdock } from "../src/service.ts";
import { BENCHMARK_DEMO_SIZE, generateDemoData } from "../src/demo/generate-demo-data.ts";
import type { DistrictSize } from "../src/demo/demo-district.ts";

const USAGE = [
  `  --students N       students in the generated district (default ${BENCHMARK_DEMO_SIZE.students}: with teachers, 1M users and ~8M enrollments)`,
  "  --connections N    concurrent connections of the load generator (default 50)",
  "  --duration S       seconds measured per endpoint, after a warm-up (default 10)",
  "  --warmup S         seconds of warm-up per endpoint (default 2)",
  "  --work-dir DIR     where the district's database goes (default: a temporary folder, removed afterwards)",
  "  --keep             keep the work folder (reuse it with --work-dir to skip generating and ingesting)",
].join("\n");

interface EndpointResult {
  name: string;
  path: string;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  requestsPerSecond: number;
  requests: number;
  non2xx: number;
  errors: number;
}

/** `npm run bench -- api`: OneRoster and change-feed latency under load, on a generated district ingested by the real pipeline. */
export const apiBenchmark: Benchmark = {
  name: "api",
  description: "OneRoster and change-feed p50/p99 latency at 50 concurrent connections (autocannon) on a district of 1M users / 8M enrollments",
  usage: USAGE,
  async run(args: string[], context: BenchContext) {
    const { values } = parseArgs({
      args,
      options: {
        students: { type: "string" },
        connections: { type: "string", default: "50" },
        duration: { type: "string", default: "10" },
        warmup: { type: "string", default: "2" },
        "work-dir": { type: "string" },
        keep: { type: "boolean", default: false },
      },
    });
    const students = Number(values.students ?? BENCHMARK_DEMO_SIZE.students);
    const connections = Number(values.connections);
    const duration = Number(values.duration);
    const warmup = Number(values.warmup);
    const size = scaledSize(students);
    const workDir = values["work-dir"] ?? (await mkdtemp(join(tmpdir(), "rosterdock-bench-api-")));
    if (!values.keep && values["work-dir"] === undefined) context.defer("work folder", () => rm(workDir, { recursive: true, force: true }));
    const dataDir = join(workDir, "data");
    await mkdir(dataDir, { recursive: true });
    const slug = "bench";

    // 1. The district: generated, then ingested through the sync pipeline (skipped when the folder already holds it).
    const rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir }), { logger: createLogger("silent") });
    let ingest: { seconds: number; status: string } | "reused" = "reused";
    let generateSeconds: number | null = null;
    try {
      if (!(await rd.districts.list()).some((d) => d.slug === slug)) {
        await rd.districts.create({ slug, name: "Benchmark district" }, "bench");
        context.progress(`generating ${students} students, ${size.teachers} teachers, ${size.teachers * size.sectionsPerTeacher} classes`);
        let started = Date.now();
        const night1 = await generateDemoData(join(workDir, "night1"), { ...size, styles: ["dem"] });
        generateSeconds = (Date.now() - started) / 1000;
        context.checkInterrupted();
        context.progress(`ingesting night 1 (${night1.expected.enrollments} enrollments)`);
        started = Date.now();
        const outcome = await rd.syncs.ingest(slug, night1.files.dem);
        ingest = { seconds: (Date.now() - started) / 1000, status: outcome.status };
        if (outcome.status !== "applied") throw new Error(`night 1 was ${outcome.status}`);
        context.checkInterrupted();
        // Night 2 (~1% changed) gives the change feed a realistic tail after the initial load.
        const night2 = await generateDemoData(join(workDir, "night2"), { ...size, styles: ["dem"], night: 2 });
        context.progress("ingesting night 2");
        const second = await rd.syncs.ingest(slug, night2.files.dem);
        if (second.status !== "applied") throw new Error(`night 2 was ${second.status}`);
        await rm(join(workDir, "night1"), { recursive: true, force: true });
        await rm(join(workDir, "night2"), { recursive: true, force: true });
      }
    } finally {
      await rd.close();
    }
    const token = JSON.parse((await runCommand(join(ROOT, "bin", "rosterdock"), ["token", "create", "--name", "bench", "--scope", "roster.readonly", "--json"], { env: { ...process.env, ROSTERDOCK_DATA_DIR: dataDir } })).stdout) as {
      token: string;
    };

    // 2. The real server, in its own process.
    const httpPort = await freePort();
    const server = await startServe(context, dataDir, httpPort);
    const base = `http://127.0.0.1:${httpPort}`;
    const auth = { authorization: `Bearer ${token.token}` };
    const api = `/districts/${slug}/ims/oneroster/rostering/v1p2`;
    const fetchJson = async (path: string) => {
      const response = await fetch(`${base}${path}`, { headers: auth });
      if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
      return { body: (await response.json()) as Record<string, unknown>, total: Number(response.headers.get("x-total-count")) };
    };
    const { total: totalStudents } = await fetchJson(`${api}/students?limit=1`);
    const { total: totalUsers } = await fetchJson(`${api}/users?limit=1`);
    const { total: totalEnrollments } = await fetchJson(`${api}/enrollments?limit=1`);
    const middleClass = String(20001 + Math.floor((size.teachers * size.sectionsPerTeacher) / 2));
    // Cursors are `id` or `id.position` (inside a first load); the page measured sits among the second night's changes.
    const feed = (await fetchJson(`/api/v1/districts/${slug}/changes?after=0&limit=1`)).body as { nextCursor: string };
    const lastCursor = await lastChangeCursor(fetchJson, slug);
    const offset = Math.min(500_000, Math.floor(totalStudents / 2));
    const endpoints = [
      { name: "students page at a deep offset", path: `${api}/students?limit=100&offset=${offset}` },
      { name: "students of a class", path: `${api}/classes/${middleClass}/students` },
      { name: "filter on familyName", path: `${api}/students?filter=${encodeURIComponent("familyName='Peña'")}&limit=100` },
      // The same pages with a unique parameter per request: every one misses the response cache.
      { name: "students page at a deep offset, uncached", path: `${api}/students?limit=100&offset=${offset}&fresh=[<id>]` },
      { name: "filter on familyName, uncached", path: `${api}/students?filter=${encodeURIComponent("familyName='Peña'")}&limit=100&fresh=[<id>]` },
      { name: "change feed page", path: `/api/v1/districts/${slug}/changes?after=${Math.max(Number.parseInt(feed.nextCursor, 10), Math.floor(lastCursor / 2))}&limit=100` },
    ];

    const results: EndpointResult[] = [];
    for (const endpoint of endpoints) {
      context.checkInterrupted();
      await fetchJson(endpoint.path.replace("[<id>]", "check")); // fails loudly on a wrong path before loading it
      context.progress(`${endpoint.name}: warm-up ${warmup}s, then ${duration}s at ${connections} connections`);
      await autocannon(`${base}${endpoint.path}`, auth, connections, warmup);
      const run = await autocannon(`${base}${endpoint.path}`, auth, connections, duration);
      results.push({
        name: endpoint.name,
        path: endpoint.path,
        p50Ms: run.latency.p50,
        p90Ms: run.latency.p90,
        p99Ms: run.latency.p99,
        maxMs: run.latency.max,
        requestsPerSecond: run.requests.average,
        requests: run.requests.total,
        non2xx: run.non2xx,
        errors: run.errors,
      });
    }
    await server.stop();
    const targetP99Ms = 50;
    return {
      benchmark: "api",
      district: { students: totalStudents, users: totalUsers, enrollmentsIncludingTeachers: totalEnrollments, classes: size.teachers * size.sectionsPerTeacher, changes: lastCursor },
      setup: { generateSeconds, ingest },
      load: { connections, durationSeconds: duration, warmupSeconds: warmup, generator: "autocannon (separate process, loopback)" },
      targetP99Ms,
      allUnderTarget: results.every((r) => r.p99Ms < targetP99Ms && r.non2xx === 0 && r.errors === 0),
      endpoints: results,
      machine: await machineInfo(ROOT),
    };
  },
};

/** BENCHMARK_DEMO_SIZE scaled to the student count (~49 students per teacher, 8 enrollments each). */
function scaledSize(students: number): DistrictSize {
  const ratio = students / BENCHMARK_DEMO_SIZE.students;
  return {
    ...BENCHMARK_DEMO_SIZE,
    students,
    teachers: Math.max(3, Math.round(BENCHMARK_DEMO_SIZE.teachers * ratio)),
    schools: Math.max(3, Math.min(BENCHMARK_DEMO_SIZE.schools, Math.round(BENCHMARK_DEMO_SIZE.schools * ratio))),
    courses: Math.max(30, Math.round(BENCHMARK_DEMO_SIZE.courses * Math.min(1, ratio * 4))),
  };
}

async function lastChangeCursor(fetchJson: (path: string) => Promise<{ body: Record<string, unknown> }>, slug: string): Promise<number> {
  // Binary search on `after`: a page is empty exactly when after >= the last cursor.
  let low = 0;
  let high = 1;
  const empty = async (after: number) => ((await fetchJson(`/api/v1/districts/${slug}/changes?after=${after}&limit=1`)).body as { nextCursor: string }).nextCursor === String(after);
  while (!(await empty(high))) high *= 2;
  while (low < high) {
    const mid = Math.floor((low + high) / 2);
    if (await empty(mid)) high = mid;
    else low = mid + 1;
  }
  return low;
}

interface AutocannonResult {
  latency: { p50: number; p90: number; p99: number; max: number };
  requests: { average: number; total: number };
  non2xx: number;
  errors: number;
}

/** autocannon as its own process, so the load generator never shares an event loop with what it measures. */
async function autocannon(url: string, headers: Record<string, string>, connections: number, seconds: number): Promise<AutocannonResult> {
  const cli = createRequire(join(ROOT, "package.json")).resolve("autocannon/autocannon.js");
  const headerArgs = Object.entries(headers).flatMap(([name, value]) => ["-H", `${name}=${value}`]);
  const { stdout } = url.includes("[<id>]")
    ? await runCommand(process.execPath, [join(ROOT, "bench", "support", "autocannon-unique.mjs"), url, String(connections), String(seconds), JSON.stringify(headers)])
    : await runCommand(process.execPath, [cli, "-c", String(connections), "-d", String(seconds), "-j", ...headerArgs, url]);
  return JSON.parse(stdout) as AutocannonResult;
}

async function startServe(context: BenchContext, dataDir: string, httpPort: number): Promise<{ stop: () => Promise<void> }> {
  const sftpPort = await freePort();
  const env = {
    ...process.env,
    ROSTERDOCK_DATA_DIR: dataDir,
    ROSTERDOCK_HOST: "127.0.0.1",
    ROSTERDOCK_PUBLIC_HOST: "127.0.0.1",
    ROSTERDOCK_SFTP_PORT: String(sftpPort),
    ROSTERDOCK_HTTP_PORT: String(httpPort),
    ROSTERDOCK_LOG_LEVEL: "warn",
  };
  const child = spawn(join(ROOT, "bin", "rosterdock"), ["serve"], { env, stdio: ["ignore", "ignore", "pipe"] });
  context.defer("rosterdock serve", () => stopChild(child, 10_000));
  const tail: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (line) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`rosterdock serve exited:\n${tail.join("\n")}`);
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort}/healthz`)).status < 600) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`rosterdock serve did not answer in 60 s:\n${tail.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { stop: async () => void (await Promise.all([stopChild(child, 10_000), exited(child)])) };
}
