import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import type { Config } from "../../config.ts";
import type { ServerAddress } from "../../settings/server-settings.ts";
import { emit, table, type OutputOptions } from "../output.ts";

/** Says where an SFTP host and port shown to an operator come from, and when this shell disagrees. */
export function addressNote(address: ServerAddress, config: Pick<Config, "publicHost" | "sftpPort">): string {
  if (address.source === "environment") return "from this shell's environment: no server has started on this database yet";
  const differs = address.sftpHost !== config.publicHost || address.sftpPort !== config.sftpPort;
  return `as the server published it when it started, ${address.publishedAt}${differs ? `; this shell's environment would say ${config.publicHost}:${config.sftpPort}` : ""}`;
}

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
        const address = await rd.settings.address(rd.config);
        emit(options, keys, () =>
          [
            table([["ALGORITHM", "SHA256", "MD5"], ...keys.map((k) => [k.algorithm, k.sha256, k.md5])]),
            "",
            `Districts connect to ${address.sftpHost} port ${address.sftpPort} (${addressNote(address, rd.config)}).`,
          ].join("\n"),
        );
      });
    });
}
