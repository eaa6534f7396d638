import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { DEFAULT_TOKEN_SCOPES, type TokenView } from "../../tokens/token-service.ts";
import { emit, table, type OutputOptions } from "../output.ts";

// No commander default: it would print "(default: [])" beside the real default, which the description gives.
const collect = (v: string, acc: string[] | undefined) => [...(acc ?? []), v];

export function registerTokenCommands(program: Command, ctx: CliContext): void {
  const token = program.command("token").description("API bearer tokens: create, list, revoke");

  token
    .command("create")
    .description("Create an API token (shown once; only its hash is stored)")
    .requiredOption("--name <name>", "what the token is for")
    .option(
      "--scope <scope>",
      `roster.readonly (read the OneRoster API and change feed), roster-core.readonly or roster-demographics.readonly (OneRoster without demographics, or demographics only), or admin (everything, the admin API included); repeatable; default ${DEFAULT_TOKEN_SCOPES.join(", ")}`,
      collect,
    )
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions & { name: string; scope?: string[] }) => {
      await ctx.with(async (rd) => {
        const created = await rd.tokens.create(options.name, options.scope ?? DEFAULT_TOKEN_SCOPES, ctx.actor);
        emit(options, { id: created.id, name: options.name.trim(), scopes: created.scopes, token: created.token }, () =>
          [
            `Token ${created.id} for "${options.name}" (${created.scopes.join(", ")}), shown only now:`,
            created.token,
            `Revoke it with: rosterdock token revoke ${created.id}`,
          ].join("\n"),
        );
      });
    });

  token
    .command("list")
    .description("API tokens: id, name, scopes, creation (never the tokens themselves)")
    .option("--all", "include revoked tokens")
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions & { all?: boolean }) => {
      await ctx.with(async (rd) => {
        const tokens = await rd.tokens.list({ includeRevoked: options.all === true });
        emit(options, tokens, () => (tokens.length === 0 ? "No API tokens. Create one with: rosterdock token create --name NAME" : tokensTable(tokens)));
      });
    });

  token
    .command("revoke <id-or-name>")
    .description("Revoke an API token by its id or name; it stops working at once, server running or not")
    .option("--json", "print JSON only")
    .action(async (idOrName: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const revoked = await rd.tokens.revoke(idOrName, ctx.actor);
        emit(options, revoked, () =>
          revoked.alreadyRevoked
            ? `Token ${revoked.id} ("${revoked.name}") was already revoked at ${revoked.revokedAt}.`
            : `Token ${revoked.id} ("${revoked.name}") is revoked: requests with it are refused from now on.`,
        );
      });
    });
}

function tokensTable(tokens: TokenView[]): string {
  const withState = tokens.some((t) => t.revokedAt !== null);
  return table([
    ["ID", "NAME", "SCOPES", "CREATED", ...(withState ? ["REVOKED"] : [])],
    ...tokens.map((t) => [String(t.id), t.name, t.scopes.join(","), t.createdAt, ...(withState ? [t.revokedAt ?? "-"] : [])]),
  ]);
}
