import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { RosterdockError } from "../../errors.ts";
import { GUIDE_FORMATS } from "../../guide/setup-guide.ts";
import type { GuideFormat } from "../../guide/setup-guide.ts";
import { emit, type OutputOptions } from "../output.ts";

export function registerGuideCommand(program: Command, ctx: CliContext): void {
  program
    .command("guide <slug>")
    .description("Write the district's own PowerSchool setup guide (connection, host keys, export templates, schedule); never its password")
    .option("--format <format>", `${GUIDE_FORMATS.join(", ")} (pdf is printed by Debian's chromium)`, "html")
    .option("--out <file>", "write the guide to this file (required for pdf; html and md go to standard output without it)")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions & { format: string; out?: string }) => {
      if (!(GUIDE_FORMATS as readonly string[]).includes(options.format)) {
        throw new RosterdockError("ERR_INVALID_ARGUMENT", `--format must be one of ${GUIDE_FORMATS.join(", ")}, got ${JSON.stringify(options.format)}.`);
      }
      const format = options.format as GuideFormat;
      if (format === "pdf" && options.out === undefined) {
        throw new RosterdockError("ERR_INVALID_ARGUMENT", "A PDF guide needs --out FILE: it is not written to a terminal.");
      }
      await ctx.with(async (rd) => {
        const guide = await rd.guides.render(slug, format);
        if (options.out === undefined) {
          if (options.json) emit(options, { slug, format, content: guide.body.toString("utf8") }, () => "");
          else process.stdout.write(guide.body);
          return;
        }
        const file = resolve(options.out);
        await writeFile(file, guide.body);
        emit(options, { slug, format, file, bytes: guide.body.length }, () => `Wrote ${slug}'s setup guide (${format}, ${guide.body.length} bytes) to ${file}. It holds no password: send the district its one-time credentials link separately.`);
      });
    });
}
