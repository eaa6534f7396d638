import type { Kysely } from "kysely";
import type { Config } from "../config.ts";
import type { Database } from "../db/schema.ts";
import { isoNow, type Clock } from "../clock.ts";
import { randomToken } from "../security/secrets.ts";

/** Where districts and apps reach the server, and who said so. */
export interface ServerAddress {
  sftpHost: string;
  sftpPort: number;
  publicUrl: string;
  /**
   * `server`: as `rosterdock serve` published it when it last started (the port it really bound);
   * `environment`: this process's own configuration, because no server has started on this database yet.
   */
  source: "server" | "environment";
  /** When the server published it; null for `environment`. */
  publishedAt: string | null;
}

const ADDRESS_KEY = "server.address";
const SESSION_SECRET_KEY = "console.session_secret";

/** Facts the running server publishes in the database, for CLI commands run from other shells. */
export class ServerSettings {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  /** Called by the server once it listens: with port 0 in the configuration, `sftpPort` is the bound one. */
  async publishAddress(address: Pick<ServerAddress, "sftpHost" | "sftpPort" | "publicUrl">): Promise<void> {
    const value = JSON.stringify({ sftpHost: address.sftpHost, sftpPort: address.sftpPort, publicUrl: address.publicUrl });
    const now = isoNow(this.clock);
    await this.db
      .insertInto("server_settings")
      .values({ key: ADDRESS_KEY, value, updated_at: now })
      .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: now }))
      .execute();
  }

  /**
   * The key that signs console session cookies: made once and kept, so sessions outlive a
   * restart and every server on the database accepts them.
   */
  async consoleSessionSecret(): Promise<string> {
    const now = isoNow(this.clock);
    await this.db
      .insertInto("server_settings")
      .values({ key: SESSION_SECRET_KEY, value: JSON.stringify(randomToken(48)), updated_at: now })
      .onConflict((oc) => oc.column("key").doNothing())
      .execute();
    const row = await this.db.selectFrom("server_settings").select("value").where("key", "=", SESSION_SECRET_KEY).executeTakeFirstOrThrow();
    return JSON.parse(row.value) as string;
  }

  /** The published address when a server has started on this database, else the configuration's. */
  async address(config: Pick<Config, "publicHost" | "sftpPort" | "publicUrl"> & Partial<Pick<Config, "publicSftpPort">>): Promise<ServerAddress> {
    const row = await this.db.selectFrom("server_settings").select(["value", "updated_at"]).where("key", "=", ADDRESS_KEY).executeTakeFirst();
    const published = row ? parseAddress(row.value) : undefined;
    if (published && row) return { ...published, source: "server", publishedAt: row.updated_at };
    return { sftpHost: config.publicHost, sftpPort: config.publicSftpPort ?? config.sftpPort, publicUrl: config.publicUrl, source: "environment", publishedAt: null };
  }
}

function parseAddress(value: string): Pick<ServerAddress, "sftpHost" | "sftpPort" | "publicUrl"> | undefined {
  try {
    const parsed = JSON.parse(value) as Record<string, unknown>;
    const { sftpHost, sftpPort, publicUrl } = parsed;
    if (typeof sftpHost === "string" && typeof sftpPort === "number" && Number.isInteger(sftpPort) && sftpPort > 0 && typeof publicUrl === "string") {
      return { sftpHost, sftpPort, publicUrl };
    }
  } catch {
    // A value this version cannot read is as good as none: the configuration speaks instead.
  }
  return undefined;
}

/**
 * The URL users reach the server at. A port 0 in it (the default URL while the HTTP port is 0,
 * "pick a free port") cannot be reached: the bound port takes its place.
 */
export function reachableUrl(publicUrl: string, boundHttpPort: number): string {
  const url = new URL(publicUrl);
  if (url.port !== "0") return publicUrl;
  url.port = String(boundHttpPort);
  return url.toString().replace(/\/$/, "");
}
