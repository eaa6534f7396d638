import { sql } from "../db/kysely.ts";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import type { Clock } from "../clock.ts";

/** Failures per account ('' for protocol errors) of one address, counted by the other nodes. */
export type AccountCounts = Map<string, number>;

/** Rows kept at most, whatever the attack: past it the oldest go first (as the in-memory scores forget the oldest addresses). */
const MAX_ROWS = 200_000;
/** Addresses read back at each refresh, those with the most failures first. */
const MAX_READ = 20_000;
/** The PostgreSQL notification channel on which a node tells the others that bans changed. */
const BANS_CHANNEL = "rosterdock_bans";

/**
 * Failed logins of every node on a shared database (PostgreSQL), so that a guesser spreading tries
 * over nodes is counted once: each node writes its failures here and reads the others'. Rows
 * expire with the window and are pruned by every node; the table never holds more than MAX_ROWS.
 */
export class FailureLedger {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    readonly nodeId: string,
    private readonly windowMs: number,
    /** The database's URL, for the connection of its own that `listen` holds. */
    private readonly url?: string,
  ) {}

  /** Tells every node (this one included) that bans changed: they read them at once, not at their next refresh. */
  async announceBans(): Promise<void> {
    await sql`SELECT pg_notify(${BANS_CHANNEL}, ${this.nodeId})`.execute(this.db);
  }

  /**
   * Calls `changed` whenever a node announces that bans changed, on a connection of its own
   * (LISTEN); returns how to stop. Should that connection fail, the periodic refresh still
   * reads the bans (`onError` is told).
   */
  async listen(changed: () => void, onError: (error: Error) => void): Promise<() => Promise<void>> {
    if (!this.url) return async () => undefined;
    const { default: pg } = await import("pg");
    const client = new pg.Client({ connectionString: this.url });
    client.on("error", onError);
    client.on("notification", (message) => {
      if (message.channel === BANS_CHANNEL && message.payload !== this.nodeId) changed();
    });
    await client.connect();
    await client.query(`LISTEN ${BANS_CHANNEL}`);
    return async () => {
      await client.end().catch(() => undefined);
    };
  }

  private cutoff(): string {
    return new Date(this.clock.now().getTime() - this.windowMs).toISOString();
  }

  /** Records this node's failure, and returns the other nodes' failures of that address in the window. */
  async record(address: string, account: string): Promise<AccountCounts> {
    await this.db.insertInto("login_failures").values({ address, account, node: this.nodeId, failed_at: this.clock.now().toISOString() }).execute();
    const rows = await this.db
      .selectFrom("login_failures")
      .select(["account", (eb) => eb.fn.countAll<number>().as("n")])
      .where("address", "=", address)
      .where("failed_at", ">", this.cutoff())
      .where("node", "!=", this.nodeId)
      .groupBy("account")
      .execute();
    return new Map(rows.map((r) => [r.account, Number(r.n)]));
  }

  /** The other nodes' failures in the window, per address (the most failing addresses first, bounded). */
  async others(): Promise<Map<string, AccountCounts>> {
    const rows = await this.db
      .selectFrom("login_failures")
      .select(["address", "account", (eb) => eb.fn.countAll<number>().as("n")])
      .where("failed_at", ">", this.cutoff())
      .where("node", "!=", this.nodeId)
      .groupBy(["address", "account"])
      .orderBy("n", "desc")
      .limit(MAX_READ)
      .execute();
    const byAddress = new Map<string, AccountCounts>();
    for (const row of rows) {
      let counts = byAddress.get(row.address);
      if (!counts) byAddress.set(row.address, (counts = new Map()));
      counts.set(row.account, Number(row.n));
    }
    return byAddress;
  }

  /** A login succeeded: the account's failures from that address are forgotten on every node. */
  async forget(address: string, account: string): Promise<void> {
    await this.db.deleteFrom("login_failures").where("address", "=", address).where("account", "=", account).execute();
  }

  /** `rosterdock bans clear`: the failures of one address, or all, go with the bans. */
  async clear(address?: string): Promise<void> {
    let query = this.db.deleteFrom("login_failures");
    if (address !== undefined) query = query.where("address", "=", address);
    await query.execute();
  }

  /** Drops rows past the window, and the oldest beyond MAX_ROWS. */
  async prune(): Promise<void> {
    await this.db.deleteFrom("login_failures").where("failed_at", "<=", this.cutoff()).execute();
    const last = await this.db.selectFrom("login_failures").select("id").orderBy("id", "desc").offset(MAX_ROWS).limit(1).executeTakeFirst();
    if (last) await this.db.deleteFrom("login_failures").where("id", "<=", last.id).execute();
  }
}
