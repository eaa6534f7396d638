import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { sql, type Kysely } from "kysely";
import type { Database } from "../db/schema.ts";

export interface HttpAppDeps {
  db: Kysely<Database>;
  logger: Logger;
  /** Reports whether the SFTP front end is accepting connections. */
  sftpListening: () => boolean;
}

/** Builds the HTTP app without listening, so tests can drive it with real requests or `inject`. */
export function buildHttpApp(deps: HttpAppDeps): FastifyInstance {
  const app = Fastify({ loggerInstance: deps.logger.child({ component: "http" }) as FastifyBaseLogger });

  app.get("/healthz", async (_request, reply) => {
    let database = "ok";
    try {
      await sql`select 1`.execute(deps.db);
    } catch {
      database = "unavailable";
    }
    const sftp = deps.sftpListening() ? "ok" : "unavailable";
    const healthy = database === "ok" && sftp === "ok";
    return reply.code(healthy ? 200 : 503).send({ status: healthy ? "ok" : "degraded", database, sftp });
  });

  app.get("/", async (_request, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .send(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Rosterdock</title></head>` +
          `<body><h1>Rosterdock</h1><p>Roster intake server. The SFTP service receives districts' nightly exports; ` +
          `health is at <a href="/healthz">/healthz</a>.</p></body></html>`,
      ),
  );

  return app;
}
