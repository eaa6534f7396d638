import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { emit, type OutputOptions } from "../output.ts";

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerClientCommands(program: Command, ctx: CliContext): void {
  program
    .command("client")
    .description("OAuth 2.0 clients for apps (client-credentials grant at POST /oauth/token)")
    .command("create")
    .description("Create a client; its secret is shown once")
    .requiredOption("--name <name>", "the app's name")
    .option(
      "--scope <scope>",
      "roster.readonly (the OneRoster API: core and demographics, and the change feed), roster-core.readonly, roster-demographics.readonly, their OneRoster URIs (https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly…), or admin; repeatable; default roster.readonly",
      collect,
      [] as string[],
    )
    .option("--district <slug>", "limit the client to this district (repeatable)", collect, [] as string[])
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions & { name: string; scope: string[]; district: string[] }) => {
      await ctx.with(async (rd) => {
        const created = await rd.clients.create({ name: options.name, scopes: options.scope, districts: options.district }, ctx.actor);
        const { publicUrl } = await rd.settings.address(rd.config);
        emit(options, created, () =>
          [
            `Client for "${options.name}" (shown only now):`,
            `  client_id      ${created.clientId}`,
            `  client_secret  ${created.clientSecret}`,
            `  scopes         ${created.scopes.join(" ")}`,
            `Token endpoint: ${publicUrl}/oauth/token`,
          ].join("\n"),
        );
      });
    });
}
