import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { emit, type OutputOptions } from "../output.ts";

export function registerTokenCommands(program: Command, ctx: CliContext): void {
  program
    .command("token")
    .description("API bearer tokens")
    .command("create")
    .description("Create an API token (shown once; only its hash is stored)")
    .requiredOption("--name <name>", "what the token is for")
    .option("--scope <scope>", "admin or roster.readonly (repeatable)", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions & { name: string; scope: string[] }) => {
      await ctx.with(async (rd) => {
        const created = await rd.tokens.create(options.name, options.scope.length ? options.scope : ["admin"], ctx.actor);
        emit(options, { token: created.token }, () => `Token for "${options.name}" (${created.scopes.join(", ")}), shown only now:\n${created.token}`);
      });
    });
}
