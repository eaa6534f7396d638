import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { EXIT_CODES, isRosterdockError } from "../errors.ts";
import { CliContext } from "./cli-context.ts";
import { registerDistrictCommands } from "./commands/district.ts";
import { registerHostKeyCommands } from "./commands/hostkey.ts";
import { registerServeCommand } from "./commands/serve.ts";
import { registerSyncsCommand } from "./commands/syncs.ts";
import { registerSyncCommands } from "./commands/sync.ts";
import { registerIngestCommand } from "./commands/ingest.ts";
import { registerDemoDataCommand } from "./commands/demo-data.ts";
import { registerTokenCommands } from "./commands/token.ts";
import { registerClientCommands } from "./commands/client.ts";
import { registerWebhookCommands } from "./commands/webhook.ts";
import { registerDoctorCommand } from "./commands/doctor.ts";
import { registerBansCommands } from "./commands/bans.ts";
import { registerGuideCommand } from "./commands/guide.ts";
import { registerOperatorCommands } from "./commands/operator.ts";

/** The version in package.json, read at run time: the CLI runs from a checkout, not a build. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

export function buildProgram(ctx: CliContext): Command {
  const program = new Command("rosterdock")
    .description("Receive districts' nightly roster exports over SFTP and keep a trustworthy roster.")
    .version(packageVersion(), "-V, --version", "print the version")
    .showHelpAfterError()
    .exitOverride();
  registerServeCommand(program, ctx);
  registerDistrictCommands(program, ctx);
  registerHostKeyCommands(program, ctx);
  registerSyncsCommand(program, ctx);
  registerSyncCommands(program, ctx);
  registerIngestCommand(program, ctx);
  registerDemoDataCommand(program, ctx);
  registerTokenCommands(program, ctx);
  registerClientCommands(program, ctx);
  registerWebhookCommands(program, ctx);
  registerDoctorCommand(program, ctx);
  registerBansCommands(program, ctx);
  registerGuideCommand(program, ctx);
  registerOperatorCommands(program, ctx);
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram(new CliContext());
  try {
    await program.parseAsync(argv);
    // A command whose outcome is not a plain success (an ingest held or failed, doctor finding a dangling reference) has set its own code.
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (isRosterdockError(error)) {
      process.stderr.write(`rosterdock: ${error.message} [${error.code}]\n`);
      return EXIT_CODES[error.category];
    }
    process.stderr.write(`rosterdock: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
