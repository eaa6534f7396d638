import type { Kysely } from "kysely";
import type { SessionStore } from "@fastify/session";
import type * as Fastify from "fastify";
import type { Database } from "../db/schema.ts";
import type { Clock } from "../clock.ts";

/** How long a console session lasts without use. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/**
 * Console sessions kept in the database (table `console_sessions`), so a restart keeps them and
 * disabling an operator (which deletes their rows) ends them at once.
 */
export class DatabaseSessionStore implements SessionStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  set(sessionId: string, session: Fastify.Session, callback: (error?: unknown) => void): void {
    const now = this.clock.now();
    const expires = session.cookie.expires instanceof Date ? session.cookie.expires : new Date(now.getTime() + SESSION_TTL_MS);
    const data = JSON.stringify(session);
    const operatorId = session.operatorId ?? null;
    this.db
      .insertInto("console_sessions")
      .values({ id: sessionId, operator_id: operatorId, data, expires_at: expires.toISOString(), updated_at: now.toISOString() })
      .onConflict((oc) => oc.column("id").doUpdateSet({ operator_id: operatorId, data, expires_at: expires.toISOString(), updated_at: now.toISOString() }))
      .execute()
      .then(() => callback(), callback);
  }

  get(sessionId: string, callback: (error: unknown, session?: Fastify.Session | null) => void): void {
    this.db
      .selectFrom("console_sessions")
      .select(["data", "expires_at"])
      .where("id", "=", sessionId)
      .executeTakeFirst()
      .then((row) => {
        if (!row || row.expires_at <= this.clock.now().toISOString()) return callback(null, null);
        callback(null, JSON.parse(row.data) as Fastify.Session);
      }, callback);
  }

  destroy(sessionId: string, callback: (error?: unknown) => void): void {
    this.db
      .deleteFrom("console_sessions")
      .where("id", "=", sessionId)
      .execute()
      .then(() => callback(), callback);
  }

  /** Deletes expired sessions; the server calls it now and then. */
  async prune(): Promise<void> {
    await this.db.deleteFrom("console_sessions").where("expires_at", "<=", this.clock.now().toISOString()).execute();
  }
}

declare module "fastify" {
  interface Session {
    /** The signed-in operator; absent before sign-in. */
    operatorId?: number;
  }
}
