#!/usr/bin/env node
// Runs the test files under test/ with node's test runner (Node 20's --test takes no globs), in
// two lanes side by side: every file on SQLite, and again on PostgreSQL every file whose suites
// are parametrised over the database (they call `selectedBackends()`, test/support/backends.ts).
// ROSTERDOCK_TEST_DB=sqlite|postgres runs one lane; arguments filter files by substring.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
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
const onBothDatabases = (file) => readFileSync(join(root, file), "utf8").includes("selectedBackends(");
const chosen = (process.env.ROSTERDOCK_TEST_DB ?? "all").trim().toLowerCase() || "all";
if (!["all", "sqlite", "postgres"].includes(chosen)) {
  console.error(`ROSTERDOCK_TEST_DB must be sqlite, postgres or all, got "${chosen}"`);
  process.exit(1);
}
const lanes = [
  { name: "sqlite", files },
  { name: "postgres", files: files.filter(onBothDatabases) },
].filter((lane) => (chosen === "all" || chosen === lane.name) && lane.files.length > 0);

/** One lane: its own node --test process, its output prefixed line by line. */
function run(lane, prefixed) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=spec", ...lane.files], {
      cwd: root,
      env: { ...process.env, ROSTERDOCK_TEST_DB: lane.name },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const tag = prefixed ? `[${lane.name}] ` : "";
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on("line", (line) => console.log(tag + line));
    child.on("close", (code, signal) => resolve({ lane: lane.name, files: lane.files.length, code: code ?? (signal ? 1 : 0) }));
  });
}

const started = Date.now();
const results = await Promise.all(lanes.map((lane) => run(lane, lanes.length > 1)));
for (const r of results) console.log(`lane ${r.lane}: ${r.files} files, ${r.code === 0 ? "passed" : `FAILED (exit ${r.code})`}`);
console.log(`all lanes: ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
