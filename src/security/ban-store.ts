import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import type { Clock } from "../clock.ts";
import { isUniqueViolation } from "../db/dialect-info.ts";

/** A ban as operators see it (`rosterdock bans list --json`, `GET /api/v1/bans`). */
export interface Ban {
  /** An IPv4 address, or an IPv6 /64 (`2001:db8:1:2::/64`). */
  address: string;
  /** The account guessed at from that address; null when the address is banned for every account. */
  account: string | null;
  reason: string;
  /** Failed attempts that led to the ban. */
  failures: number;
  /** How many times this address (and account) was banned, counting this one; each doubles the length. */
  strikes: number;
  bannedAt: string;
  bannedUntil: string;
}

const DAY_MS = 24 * 3600 * 1000;
/** A repeat offender's escalation is forgotten a day after its last ban ended. */
const STRIKES_FORGOTTEN_MS = DAY_MS;

/** The bans in the database: shared by every server on it, and kept across restarts. */
export class BanStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
  ) {}

  /**
   * Bans `address` (and `account`, unless null) for `baseMs`, doubled for each earlier ban not yet
   * forgotten, at most a day. Also says whether the account was already banned from elsewhere.
   */
  async ban(input: { address: string; account: string | null; reason: string; failures: number; baseMs: number }): Promise<{ ban: Ban; accountAlreadyBanned: boolean }> {
    const now = this.clock.now();
    const account = input.account ?? "";
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.db.transaction().execute(async (trx) => {
          const previous = await trx.selectFrom("login_bans").selectAll().where("address", "=", input.address).where("account", "=", account).executeTakeFirst();
          const remembered = previous !== undefined && Date.parse(previous.banned_until) > now.getTime() - STRIKES_FORGOTTEN_MS;
          const strikes = remembered ? previous.strikes + 1 : 1;
          const until = new Date(now.getTime() + Math.min(input.baseMs * 2 ** (strikes - 1), DAY_MS));
          const row = { reason: input.reason, failures: input.failures, strikes, banned_at: now.toISOString(), banned_until: until.toISOString() };
          const alreadyBanned =
            account !== "" &&
            (await trx
              .selectFrom("login_bans")
              .select("id")
              .where("account", "=", account)
              .where("address", "!=", input.address)
              .where("banned_until", ">", now.toISOString())
              .executeTakeFirst()) !== undefined;
          if (previous) await trx.updateTable("login_bans").set(row).where("id", "=", previous.id).execute();
          else await trx.insertInto("login_bans").values({ address: input.address, account, ...row }).execute();
          return { ban: toBan({ address: input.address, account, ...row }), accountAlreadyBanned: alreadyBanned };
        });
      } catch (error) {
        // Another server banned the same pair at the same moment (PostgreSQL): count it once more.
        if (!isUniqueViolation(error) || attempt > 0) throw error;
      }
    }
  }

  /** Bans in force now, longest-running first; for one address (or /64) when given. */
  async active(address?: string): Promise<Ban[]> {
    let query = this.db.selectFrom("login_bans").selectAll().where("banned_until", ">", this.clock.now().toISOString()).orderBy("banned_at").orderBy("id");
    if (address !== undefined) query = query.where("address", "=", address);
    return (await query.execute()).map(toBan);
  }

  /** Bans in force on one account, from any address. */
  async activeOnAccount(account: string): Promise<Ban[]> {
    const rows = await this.db.selectFrom("login_bans").selectAll().where("account", "=", account).where("banned_until", ">", this.clock.now().toISOString()).orderBy("banned_at").execute();
    return rows.map(toBan);
  }

  /** Lifts bans (every one, or those of one address) and forgets their strikes; returns how many were in force. */
  async clear(address?: string): Promise<number> {
    const lifted = (await this.active(address)).length;
    let query = this.db.deleteFrom("login_bans");
    if (address !== undefined) query = query.where("address", "=", address);
    await query.execute();
    return lifted;
  }
}

function toBan(row: { address: string; account: string; reason: string; failures: number; strikes: number; banned_at: string; banned_until: string }): Ban {
  return {
    address: row.address,
    account: row.account === "" ? null : row.account,
    reason: row.reason,
    failures: row.failures,
    strikes: row.strikes,
    bannedAt: row.banned_at,
    bannedUntil: row.banned_until,
  };
}
