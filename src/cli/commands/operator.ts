import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { emit, table, type OutputOptions } from "../output.ts";
import type { OperatorCredentials } from "../../operators/operator-service.ts";

function credentialsText(c: OperatorCredentials, what: string): string {
  return [
    `${what} ${c.email}.`,
    `  Email     ${c.email}`,
    `  Password  ${c.password}`,
    "  (The password is shown only now. Hand it over securely; `rosterdock operator reset-password` replaces it.)",
  ].join("\n");
}

/** `rosterdock operator …`: accounts of the vendor's support staff for the web console. */
export function registerOperatorCommands(program: Command, ctx: CliContext): void {
  const operator = program.command("operator").description("Manage the operators who sign in to the web console");

  operator
    .command("create <email>")
    .description("Create an operator with a generated password (shown once)")
    .option("--json", "print JSON only: {\"email\",\"password\"}")
    .action(async (email: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const created = await rd.operators.create(email, ctx.actor);
        emit(options, { email: created.email, password: created.password }, () => credentialsText(created, "Created operator"));
      });
    });

  operator
    .command("list")
    .description("List operators")
    .option("--json", "print JSON only")
    .action(async (options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const operators = await rd.operators.list();
        emit(options, operators, () =>
          operators.length === 0
            ? "No operators yet. Create one with: rosterdock operator create EMAIL"
            : table([["EMAIL", "STATUS", "CREATED", "LAST SIGN-IN"], ...operators.map((o) => [o.email, o.status, o.createdAt, o.lastSignInAt ?? "never"])]),
        );
      });
    });

  operator
    .command("disable <email>")
    .description("Refuse the operator's sign-ins from now on and end their console sessions")
    .option("--json", "print JSON only")
    .action(async (email: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const disabled = await rd.operators.disable(email, ctx.actor);
        emit(options, disabled, () => `Operator ${disabled.email} is disabled: their sign-ins are refused and their sessions ended.`);
      });
    });

  operator
    .command("reset-password <email>")
    .description("Give the operator a new generated password (shown once); their sessions end")
    .option("--json", "print JSON only: {\"email\",\"password\"}")
    .action(async (email: string, options: OutputOptions) => {
      await ctx.with(async (rd) => {
        const reset = await rd.operators.resetPassword(email, ctx.actor);
        emit(options, { email: reset.email, password: reset.password }, () => credentialsText(reset, "New password for"));
      });
    });
}
