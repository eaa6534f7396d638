import type { Config } from "../config.ts";
import { loadConfig } from "../config.ts";
import { createLogger } from "../logger.ts";
import { createRosterdock, type Rosterdock } from "../service.ts";

/** What every command gets: configuration from the environment and a way to open Rosterdock. */
export class CliContext {
  private cachedConfig: Config | undefined;

  get config(): Config {
    return (this.cachedConfig ??= loadConfig());
  }

  /** The operator running the command, as recorded in the audit trail. */
  get actor(): string {
    return `cli:${process.env.USER ?? process.env.LOGNAME ?? "unknown"}`;
  }

  /** Opens Rosterdock for one command, then closes it. One-shot commands log warnings only. */
  async with<T>(work: (rd: Rosterdock) => Promise<T>, logLevel = "warn"): Promise<T> {
    const rd = await createRosterdock(this.config, { logger: createLogger(this.config.logLevel === "silent" ? "silent" : logLevel) });
    try {
      return await work(rd);
    } finally {
      await rd.close();
    }
  }
}
