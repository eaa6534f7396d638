#!/usr/bin/env node
// Runs every test file under test/ with node's test runner (Node 20's --test takes no globs).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
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
const result = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...files], { cwd: root, stdio: "inherit" });
process.exit(result.status ?? 1);
