import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import type { StageProgress } from "../../sync/stage-delivery.ts";
import { INGEST_EXIT_CODES } from "../../errors.ts";
import { describeSync } from "./sync.ts";
import { emit, type OutputOptions } from "../output.ts";

export function registerIngestCommand(program: Command, ctx: CliContext): void {
  program
    .command("ingest <slug> <paths...>")
    .description("Run the sync pipeline on local files (files, a folder or a zip) without a server; exits 0 when applied, 3 when held, 4 when failed")
    .option("--json", "print JSON only")
    .action(async (slug: string, paths: string[], options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const bar = process.stderr.isTTY && !options.json ? await progressBar() : undefined;
        try {
          const outcome = await rd.syncs.ingest(slug, paths, bar ? { onProgress: bar.update } : {});
          bar?.stop();
          const detail = await rd.syncs.show(outcome.syncId);
          emit(options, detail, () => describeSync(detail));
          // Exit codes by outcome: docs/errors.md (generated from INGEST_EXIT_CODES).
          process.exitCode = outcome.status in INGEST_EXIT_CODES ? INGEST_EXIT_CODES[outcome.status as keyof typeof INGEST_EXIT_CODES] : 1;
        } finally {
          bar?.stop();
        }
      });
    });
}

/** On a terminal only, on stderr: stdout stays clean for --json and pipes. */
async function progressBar(): Promise<{ update(p: StageProgress): void; stop(): void }> {
  const { default: cliProgress } = await import("cli-progress");
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: "{bar} {percentage}% | {mb}/{totalMb} MB | {file}", hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let stopped = false;
  return {
    update(p) {
      const payload = { file: p.file, mb: (p.totalBytes / 2 ** 20).toFixed(0), totalMb: (p.totalSize / 2 ** 20).toFixed(0) };
      if (!started) {
        bar.start(Math.max(1, p.totalSize), p.totalBytes, payload);
        started = true;
      } else bar.update(p.totalBytes, payload);
    },
    stop() {
      if (started && !stopped) bar.stop();
      stopped = true;
    },
  };
}
