import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { emit, table, type OutputOptions } from "../output.ts";

export function registerBansCommands(program: Command, ctx: CliContext): void {
  const bans = program.command("bans").description("Addresses banned after repeated failed logins (SFTP and HTTP)");

  bans
    .command("list [address]")
    .description("Bans in force, of every address or of one (an IPv6 address stands for its /64)")
    .option("--json", "print JSON only")
    .action(async (address: string | undefined, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const list = await rd.defender.list(address);
        emit(options, list, () =>
          list.length === 0
            ? "No ban is in force."
            : table([
                ["ADDRESS", "ACCOUNT", "UNTIL", "STRIKES", "REASON"],
                ...list.map((b) => [b.address, b.account ?? "(every account)", b.bannedUntil, String(b.strikes), b.reason]),
              ]),
        );
      });
    });

  bans
    .command("clear [address]")
    .description("Lift every ban, or those of one address, and forget the failures behind them (a running server follows within seconds)")
    .option("--json", "print JSON only")
    .action(async (address: string | undefined, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const lifted = await rd.defender.clear(address, ctx.actor);
        emit(options, { lifted }, () => (lifted === 0 ? "No ban was in force." : `Lifted ${lifted} ban${lifted === 1 ? "" : "s"}.`));
      });
    });
}
