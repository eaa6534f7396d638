import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { emit, table, type OutputOptions } from "../output.ts";

export function registerSyncsCommand(program: Command, ctx: CliContext): void {
  program
    .command("syncs <slug>")
    .description("A district's syncs, newest first")
    .option("--limit <n>", "how many", "50")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions & { limit: string }) => {
      await ctx.with(async (rd) => {
        const syncs = await rd.syncs.list(slug, Math.max(1, Number(options.limit) || 50));
        emit(options, syncs, () =>
          syncs.length === 0
            ? `No syncs for ${slug} yet.`
            : table([["ID", "STATUS", "CREATED", "FILES"], ...syncs.map((s) => [String(s.id), s.status, s.createdAt, s.files.map((f) => f.name).join(", ")])]),
        );
      });
    });

  program
    .command("uploads <slug>")
    .description("A district's recent uploads, newest first, including partial and refused ones with the reason")
    .option("--limit <n>", "how many", "50")
    .option("--json", "print JSON only")
    .action(async (slug: string, options: OutputOptions & { limit: string }) => {
      await ctx.with(async (rd) => {
        const district = await rd.districts.show(slug);
        const uploads = await rd.deliveries.listUploads(district.id, Math.max(1, Number(options.limit) || 50));
        emit(options, uploads, () =>
          uploads.length === 0
            ? `No uploads from ${slug} yet.`
            : table([
                ["ID", "STATUS", "FINISHED", "SIZE", "DELIVERY", "PATH", "REASON"],
                ...uploads.map((u) => [String(u.id), u.status, u.finishedAt, String(u.size), u.deliveryId === null ? "-" : String(u.deliveryId), u.path, u.reason ?? ""]),
              ]),
        );
      });
    });
}
