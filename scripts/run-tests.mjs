#!/usr/bin/env node
// Runs the test files under test/ with node's test runner (Node 20's --test takes no globs), in
// two lanes: every file on SQLite, and again on PostgreSQL every file whose suites are
// parametrised over the database (they call `selectedBackends()`, test/support/backends.ts).
// ROSTERDOCK_TEST_DB=sqlite|postgres runs one lane; arguments filter files by substring.
//
// Both lanes' files share one queue, longest first (scripts/test-timings.json, from an earlier
// run), run ROSTERDOCK_TEST_JOBS at a time (default 2, CI's cores): the suite ends when the work
// does, not when the longer lane does. Each file's output is printed whole when it ends.
// One throwaway PostgreSQL cluster serves every file (each test makes databases of its own),
// rather than an initdb per file; ROSTERDOCK_TEST_POSTGRES_URL names a server to use instead.
// ROSTERDOCK_TEST_RECORD_TIMINGS=1 writes this run's durations back to scripts/test-timings.json.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const timingsPath = join(root, "scripts", "test-timings.json");
const filter = process.argv.slice(2);

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "fixtures" ? [] : find(path);
    return entry.name.endsWith(".test.ts") ? [relative(root, path)] : [];
  });
}

const files = find(join(root, "test"))
  .filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)))
  .sort();
if (files.length === 0) {
  console.error(`No test files match ${filter.join(" ")}`);
  process.exit(1);
}
const source = (file) => readFileSync(join(root, file), "utf8");
const onBothDatabases = (file) => source(file).includes("selectedBackends(");
const chosen = (process.env.ROSTERDOCK_TEST_DB ?? "all").trim().toLowerCase() || "all";
if (!["all", "sqlite", "postgres"].includes(chosen)) {
  console.error(`ROSTERDOCK_TEST_DB must be sqlite, postgres or all, got "${chosen}"`);
  process.exit(1);
}
const jobs = Number(process.env.ROSTERDOCK_TEST_JOBS ?? 2);
if (!Number.isInteger(jobs) || jobs < 1) {
  console.error(`ROSTERDOCK_TEST_JOBS must be a whole number of at least 1, got "${process.env.ROSTERDOCK_TEST_JOBS}"`);
  process.exit(1);
}
const lanes = [
  { name: "sqlite", files },
  { name: "postgres", files: files.filter(onBothDatabases) },
].filter((lane) => (chosen === "all" || chosen === lane.name) && lane.files.length > 0);

/**
 * Seconds each lane's file took in an earlier run. A file not yet timed on PostgreSQL counts as on
 * SQLite; one not timed at all as a long one, so that it starts early.
 */
const timings = existsSync(timingsPath) ? JSON.parse(readFileSync(timingsPath, "utf8")) : {};
const key = (run) => `${run.lane}:${run.file}`;
const estimate = (run) => timings[key(run)] ?? timings[`sqlite:${run.file}`] ?? 60;
const queue = lanes.flatMap((lane) => lane.files.map((file) => ({ lane: lane.name, file }))).sort((a, b) => estimate(b) - estimate(a));
const prefixed = lanes.length > 1;
const single = queue.length === 1;

// One cluster for the whole run, when any file will want PostgreSQL and none was given.
let postgres;
const env = { ...process.env };
if (!env.ROSTERDOCK_TEST_POSTGRES_URL && queue.some((run) => run.lane === "postgres" || source(run.file).includes("startPostgres("))) {
  const { register } = await import("tsx/esm/api");
  register();
  const { postgresMissing, startPostgres } = await import("../test/support/postgres.ts");
  if (postgresMissing() === undefined) {
    // Room for every file running at once, and the several nodes and pools some of them start.
    postgres = await startPostgres({ settings: { max_connections: String(100 + 100 * jobs) } });
    env.ROSTERDOCK_TEST_POSTGRES_URL = postgres.adminUrl;
  }
}

/** One file on one lane: its own node --test process, its output kept and printed when it ends. */
function run(item) {
  return new Promise((resolve) => {
    const started = Date.now();
    // Said at the start too, so that a file that hangs is named while it does.
    if (!single) console.log(`${prefixed ? `[${item.lane}] ` : ""}START ${item.file}`);
    const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-reporter=spec", item.file], {
      cwd: root,
      env: { ...env, ROSTERDOCK_TEST_DB: item.lane },
      stdio: ["ignore", "pipe", "pipe"],
    });
    // A file run alone is shown as it goes; beside others, whole when it ends, so outputs do not interleave.
    const output = [];
    const live = single && !prefixed;
    child.stdout.on("data", (chunk) => (live ? process.stdout.write(chunk) : output.push(chunk)));
    child.stderr.on("data", (chunk) => (live ? process.stderr.write(chunk) : output.push(chunk)));
    child.on("close", (code, signal) => {
      const seconds = (Date.now() - started) / 1000;
      const passed = code === 0;
      const tag = prefixed ? `[${item.lane}] ` : "";
      const text = Buffer.concat(output).toString("utf8").trimEnd();
      console.log(`${tag}${passed ? "PASS" : "FAIL"} ${item.file} (${seconds.toFixed(1)} s)`);
      if (text) console.log(text.split("\n").map((line) => tag + line).join("\n"));
      resolve({ ...item, passed, seconds, signal });
    });
  });
}

const started = Date.now();
const results = [];
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => (stopping = true));
try {
  await Promise.all(
    Array.from({ length: Math.min(jobs, queue.length) }, async () => {
      for (let item = queue.shift(); item && !stopping; item = queue.shift()) results.push(await run(item));
    }),
  );
} finally {
  await postgres?.stop();
}

for (const lane of lanes) {
  const mine = results.filter((r) => r.lane === lane.name);
  const failed = mine.filter((r) => !r.passed);
  console.log(`lane ${lane.name}: ${lane.files.length} files, ${failed.length === 0 && mine.length === lane.files.length ? "passed" : `FAILED: ${failed.map((r) => r.file).join(", ") || "interrupted"}`}`);
}
console.log("slowest files:");
for (const r of [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 10)) console.log(`  ${r.seconds.toFixed(1).padStart(6)} s  ${r.lane.padEnd(8)} ${r.file}`);
console.log(`all lanes: ${Math.round((Date.now() - started) / 1000)} s, up to ${jobs} files at a time`);
if (process.env.ROSTERDOCK_TEST_RECORD_TIMINGS === "1") {
  for (const r of results) timings[key(r)] = Math.round(r.seconds);
  writeFileSync(timingsPath, `${JSON.stringify(Object.fromEntries(Object.entries(timings).sort()), null, 2)}\n`);
}
const total = lanes.reduce((sum, lane) => sum + lane.files.length, 0);
process.exit(results.length === total && results.every((r) => r.passed) ? 0 : 1);
