import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { emit, table, type OutputOptions } from "../output.ts";

export function registerHostKeyCommands(program: Command, ctx: CliContext): void {
  program
    .command("hostkey")
    .description("The server's SSH host keys")
    .command("show")
    .description("Print the host-key fingerprints districts are asked to accept")
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const keys = (await rd.hostKeys()).map((k) => ({ algorithm: k.algorithm, sha256: k.sha256, md5: k.md5 }));
        emit(options, keys, () => table([["ALGORITHM", "SHA256", "MD5"], ...keys.map((k) => [k.algorithm, k.sha256, k.md5])]));
      });
    });
}
