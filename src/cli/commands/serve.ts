import type { Command } from "commander";
import type { CliContext } from "../cli-context.ts";
import { createRosterdock } from "../../service.ts";
import { startServer } from "../../service.ts";

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
