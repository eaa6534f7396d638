import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { createRosterdock, startServer, type Rosterdock, type RunningServer } from "../../service.ts";

export function registerServeCommand(program: Command, ctx: CliContext): void {
  program
    .command("serve")
    .description("Run the SFTP server, the HTTP server and the background worker")
    .action(async () => {
      const rd = await createRosterdock(ctx.config);
      const server = await startServer(rd);
      rd.logger.info(
        { event: "server.started", sftpPort: server.sftpPort, httpPort: server.httpPort, dataDir: rd.config.dataDir, publicHost: rd.config.publicHost },
        "Rosterdock is running",
      );
      // Someone at a terminal gets a summary to act on; pipes and service managers keep the JSON logs alone.
      if (process.stdout.isTTY) process.stdout.write(`${await startupSummary(rd, server)}\n`);
      await new Promise<void>((resolve) => {
        const shutdown = (signal: string) => {
          rd.logger.info({ event: "server.stopping", signal }, "stopping");
          resolve();
        };
        process.once("SIGTERM", () => shutdown("SIGTERM"));
        process.once("SIGINT", () => shutdown("SIGINT"));
      });
      await server.stop();
      await rd.close();
      rd.logger.info({ event: "server.stopped" }, "stopped");
    });
}

/** What an operator who just ran `rosterdock serve` needs: where it listens, what it uses, what to do next. */
export async function startupSummary(rd: Rosterdock, server: RunningServer): Promise<string> {
  const { config } = rd;
  const address = await rd.settings.address(config);
  const keys = await rd.hostKeys();
  const districts = await rd.districts.list();
  const nextStep =
    districts.length === 0
      ? "Create a district: rosterdock district create SLUG --name NAME"
      : `${districts.length} district${districts.length === 1 ? "" : "s"} (rosterdock district list); new deliveries appear in: rosterdock syncs SLUG`;
  return [
    "",
    "Rosterdock is running.",
    `  SFTP         ${address.sftpHost}:${address.sftpPort}   (listening on ${config.host}:${server.sftpPort})`,
    `  HTTP         ${address.publicUrl}   (listening on ${config.host}:${server.httpPort})`,
    `  Public host  ${config.publicHost}   (ROSTERDOCK_PUBLIC_HOST: what districts are told to connect to)`,
    `  Data folder  ${config.dataDir}`,
    `  Database     ${describeDatabase(config.databaseUrl, config.dataDir)}`,
    "  Host keys    (districts accept one of these once)",
    ...keys.map((k) => `    ${k.algorithm.padEnd(20)} ${k.sha256}`),
    "",
    `Next: ${nextStep}`,
    "Stop with Ctrl-C. Logs follow as JSON on standard error.",
    "",
  ].join("\n");
}

/** The database in words, without its password. */
function describeDatabase(databaseUrl: string | undefined, dataDir: string): string {
  if (!databaseUrl) return `SQLite, ${dataDir}/rosterdock.sqlite`;
  try {
    const url = new URL(databaseUrl);
    return `PostgreSQL, ${url.hostname || "local socket"}${url.port ? `:${url.port}` : ""}${url.pathname}`;
  } catch {
    return "PostgreSQL";
  }
}
