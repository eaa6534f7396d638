import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateDemoData, type DemoDataOptions, type DemoExpectations, type DemoStyle } from "../../src/demo/generate-demo-data.ts";
import { ROOT } from "./rosterdock-process.ts";

export interface CachedDemoNight {
  files: string[];
  expected: DemoExpectations;
}

/**
 * A generated night of one style, kept between test runs (generating a few hundred thousand
 * students takes ~20 s of CPU). Keyed by the options and the generator's sources; written to a
 * scratch folder and renamed when complete, so an interrupted run leaves no half night.
 * ROSTERDOCK_TEST_CACHE_DIR moves the cache (default: the OS temp folder).
 */
export async function cachedDemoNight(style: DemoStyle, options: Omit<DemoDataOptions, "styles">): Promise<CachedDemoNight> {
  const hash = createHash("sha256").update(JSON.stringify({ style, options }));
  for (const file of ["generate-demo-data.ts", "demo-district.ts"]) hash.update(await readFile(join(ROOT, "src", "demo", file)));
  const root = process.env.ROSTERDOCK_TEST_CACHE_DIR ?? join(tmpdir(), "rosterdock-test-cache");
  const dir = join(root, `${style}-${options.students ?? "default"}-${hash.digest("hex").slice(0, 16)}`);
  const manifestPath = join(dir, "manifest.json");
  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(await readFile(manifestPath, "utf8")) as CachedDemoNight;
    if (manifest.files.every((f) => existsSync(f))) return manifest;
  }
  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  try {
    const generated = await generateDemoData(partial, { ...options, styles: [style] });
    const manifest: CachedDemoNight = { files: generated.files[style].map((f) => join(dir, f.slice(partial.length + 1))), expected: generated.expected };
    await writeFile(join(partial, "manifest.json"), JSON.stringify(manifest));
    await rm(dir, { recursive: true, force: true });
    await rename(partial, dir);
    return manifest;
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}
