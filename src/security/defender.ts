import type { Logger } from "pino";
import type { Clock } from "../clock.ts";
import type { AuditLog } from "../audit/audit-log.ts";
import { addressKey } from "./address-key.ts";
import type { Ban, BanStore } from "./ban-store.ts";
import type { AccountCounts, FailureLedger } from "./failure-ledger.ts";

export interface DefenderOptions {
  /** Failed attempts at one account from one address, within the window, that ban that address for that account. */
  maxFailures: number;
  /** Accounts one address may fail at within the window; at this many the address is banned for every account. */
  maxAccounts: number;
  windowMs: number;
  /** A first ban's length; each repeat doubles it, up to a day. */
  banMs: number;
  /** How often bans are read again from the database (made by the CLI or another server). */
  refreshMs: number;
  /**
   * Several nodes on one database (PostgreSQL): failures are also written there and the other
   * nodes' are read back, so that limits count every node's failures (see `Defender`).
   */
  shared?: FailureLedger;
}

/** A district's account banned from some addresses after repeated failed logins. */
export interface UnderAttack {
  since: string;
  until: string;
  addresses: string[];
  failures: number;
}

/** Where an attempt came in: SSH logins, or HTTP (OAuth client secrets and bearer tokens). */
export type Channel = "ssh" | "http";

export interface Refusal {
  reason: "banned" | "too_many_failures";
  retryAfterSeconds: number;
}

export interface DefenderHooks {
  /** A ban was recorded; `accountAlreadyBanned` when the account was already banned from another address. */
  onBan?(ban: Ban, context: { channel: Channel; accountAlreadyBanned: boolean }): void | Promise<void>;
}

interface AccountScore {
  /** When each failure counted in the window happened (ms); never longer than maxFailures. */
  failures: number[];
  inflight: number;
}

interface AddressScore {
  accounts: Map<string, AccountScore>;
  /** Protocol errors before authentication, which name no account. */
  protocol: number[];
  inflight: number;
}

/** One credential check under way: end it with exactly one of succeed, fail or release. */
export class LoginAttempt {
  private done = false;

  constructor(
    private readonly defender: Defender,
    readonly address: string,
    readonly account: string,
    readonly channel: Channel,
  ) {}

  succeed(): void {
    if (this.end()) this.defender.settle(this, "succeeded");
  }

  fail(reason: string): void {
    if (this.end()) this.defender.settle(this, "failed", reason);
  }

  /** Neither success nor failure: the check did not happen (the server was busy, the client left). */
  release(): void {
    if (this.end()) this.defender.settle(this, "released");
  }

  private end(): boolean {
    const first = !this.done;
    this.done = true;
    return first;
  }
}

const MAX_ADDRESSES = 50_000;

/**
 * Counts failed logins and bans the addresses they come from, for SSH and HTTP alike.
 *
 * Scores count the checks still under way, so parallel attempts cannot pass the limit: with a
 * limit of 10, the 11th of 250 simultaneous tries is refused before any password is hashed. An
 * address that fails 10 times at one account is banned for that account only, so districts that
 * share a hosting provider's address do not lock each other out; one that fails at 5 accounts (or
 * 10 × 5 times in all, protocol errors included) is banned for every account, and its connections
 * are dropped at accept. Bans live in the database and are cached here, so `isBanned` answers
 * synchronously.
 *
 * Several nodes (`options.shared`): each failure is also written to the database, and a node counts
 * the other nodes' failures of an address as last read (after each of its own failures at that
 * address, and at every refresh) besides its own and its checks under way; a ban is decided on that
 * sum by whichever node reaches the limit, and announced to the others (PostgreSQL NOTIFY), which
 * read it at once (or at their next refresh, should the notification be lost).
 */
/** How long an address a district logged in from is ranked ahead of unknown ones, and how many are remembered. */
const TRUSTED_FOR_MS = 24 * 60 * 60 * 1000;
const MAX_TRUSTED_ADDRESSES = 10_000;
/** See Defender.recordBusy. */
const BUSY_PAUSE_MS = 1_000;
const BUSY_PAUSE_MAX_MS = 60_000;
const BUSY_REPEAT_MS = 10_000;

export class Defender {
  private readonly scores = new Map<string, AddressScore>();
  /** Address key → when a login from it last succeeded. */
  readonly #succeeded = new Map<string, number>();
  /** Addresses whose SSH connections are paused after a login refused unchecked (see recordBusy). */
  readonly #busy = new Map<string, { until: number; pauseMs: number }>();
  /** `address|account` ('' for the whole address) → the ban in force. */
  private bans = new Map<string, Ban>();
  private readonly pending = new Map<string, Promise<void>>();
  private readonly refusalsLogged = new Map<string, { at: number; count: number }>();
  /** Several nodes: the other nodes' failures in the window, per address, as last read. */
  #others = new Map<string, AccountCounts>();
  #stopListening: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: BanStore,
    private readonly options: DefenderOptions,
    private readonly clock: Clock,
    private readonly audit: AuditLog,
    private readonly logger: Logger,
    private readonly hooks: DefenderHooks = {},
  ) {}

  /** Loads the bans in force and keeps reading them (the server calls this; one-shot CLI commands need not). */
  async start(): Promise<void> {
    await this.refresh();
    // Several nodes: a ban decided (or lifted) elsewhere is read at once, not at the next refresh.
    let queued = false;
    // Announcements in a burst (a botnet banned address after address) cost one read.
    const changed = () => {
      if (queued) return;
      queued = true;
      setTimeout(() => {
        queued = false;
        this.refresh().catch((error: unknown) => this.logger.error({ event: "security.bans.refresh_failed", err: error }, "could not read the bans"));
      }, 50).unref();
    };
    this.#stopListening = await this.options.shared?.listen(changed,
      (error) => this.logger.warn({ event: "security.bans.listen_failed", err: error }, "stopped listening for other nodes' bans; reading them every few seconds"),
    );
    this.timer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.logger.error({ event: "security.bans.refresh_failed", err: error }, "could not read the bans"));
    }, this.options.refreshMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.settled();
    await this.#stopListening?.();
    this.#stopListening = undefined;
  }

  /** Whether the address is banned for every account: its connections are dropped before any SSH work. */
  isBanned(address: string | undefined): boolean {
    return this.banFor(addressKey(address), null) !== undefined;
  }

  /**
   * How many refusals of this address went unlogged, when it is time to log them (once a minute
   * per address), else undefined: a banned scanner's thousands of connections are one line a minute.
   */
  refusalToLog(address: string | undefined): number | undefined {
    const key = addressKey(address);
    const now = this.now();
    const entry = this.refusalsLogged.get(key);
    if (entry && now - entry.at < 60_000) {
      entry.count++;
      return undefined;
    }
    if (this.refusalsLogged.size > MAX_ADDRESSES) this.refusalsLogged.clear();
    this.refusalsLogged.set(key, { at: now, count: 0 });
    return (entry?.count ?? 0) + 1;
  }

  /** Reserves a credential check, or refuses it without any check when the address is banned or at its limit. */
  begin(rawAddress: string | undefined, account: string, channel: Channel): { ok: true; attempt: LoginAttempt } | { ok: false; refusal: Refusal } {
    const address = addressKey(rawAddress);
    const now = this.now();
    const ban = this.banFor(address, account);
    if (ban) return { ok: false, refusal: { reason: "banned", retryAfterSeconds: Math.max(1, Math.ceil((Date.parse(ban.bannedUntil) - now) / 1000)) } };
    const score = this.score(address, now);
    const current = score.accounts.get(account);
    const others = this.#others.get(address);
    const elsewhere = others?.get(account) ?? 0;
    const accounts = others ? new Set([...score.accounts.keys(), ...[...others.keys()].filter((a) => a !== "")]).size : score.accounts.size;
    const tooMany =
      (current?.failures.length ?? 0) + (current?.inflight ?? 0) + elsewhere >= this.options.maxFailures ||
      this.total(score) + sum(others) >= this.addressLimit ||
      (!current && elsewhere === 0 && accounts >= this.options.maxAccounts);
    if (tooMany) {
      const oldest = Math.min(...(current?.failures ?? []), ...score.protocol, now);
      return { ok: false, refusal: { reason: "too_many_failures", retryAfterSeconds: Math.max(1, Math.ceil((oldest + this.options.windowMs - now) / 1000)) } };
    }
    const entry = current ?? { failures: [], inflight: 0 };
    score.accounts.set(account, entry);
    entry.inflight++;
    score.inflight++;
    return { ok: true, attempt: new LoginAttempt(this, address, account, channel) };
  }

  /** A protocol error before authentication (garbage instead of SSH, no common algorithm): counts against the address. */
  recordProtocolError(rawAddress: string | undefined, reason: string): void {
    const address = addressKey(rawAddress);
    const now = this.now();
    const score = this.score(address, now);
    if (score.protocol.length < this.addressLimit) score.protocol.push(now);
    if (this.failureTotal(score) >= this.addressLimit) this.addBan(address, null, `protocol errors (${reason})`, this.failureTotal(score), "ssh");
    this.#share(address, "", reason, "ssh");
  }

  /**
   * How the hash pool ranks an address's checks (lower first, kept first when its queue is full):
   * an address with recent failures last, one a district logged in from recently first. At the
   * start of a flood no flooding address has failed yet; the districts' own addresses still win.
   */
  rank(rawAddress: string | undefined): number {
    if (this.failures(rawAddress) > 0) return 1;
    const succeeded = this.#succeeded.get(addressKey(rawAddress));
    return succeeded !== undefined && this.now() - succeeded < TRUSTED_FOR_MS ? -1 : 0;
  }

  /**
   * An SSH login of the address was turned away unchecked (hashing queue full). Its next
   * connections are then dropped before any key exchange for a while: 1 s, doubling each time it
   * happens again within 10 s of the last pause's end, at most a minute. A flood refused at the
   * queue would otherwise still cost a key exchange per try. Addresses a district logged in from
   * within a day are never paused (the hash pool serves them first).
   */
  recordBusy(rawAddress: string | undefined): void {
    const key = addressKey(rawAddress);
    if (this.rank(rawAddress) < 0) return;
    const now = this.now();
    const entry = this.#busy.get(key);
    // Connections admitted before the pause began are refused too: they do not lengthen it.
    if (entry !== undefined && now < entry.until) return;
    const pauseMs = entry !== undefined && now < entry.until + BUSY_REPEAT_MS ? Math.min(entry.pauseMs * 2, BUSY_PAUSE_MAX_MS) : BUSY_PAUSE_MS;
    if (this.#busy.size > MAX_ADDRESSES) this.#busy.clear();
    this.#busy.set(key, { until: now + pauseMs, pauseMs });
  }

  /** Whether the address's connections are paused after a login refused unchecked (see recordBusy). */
  isPausedForBusy(rawAddress: string | undefined): boolean {
    const entry = this.#busy.get(addressKey(rawAddress));
    return entry !== undefined && this.now() < entry.until;
  }

  /** Failures counted against the address in the window: the hash pool serves addresses without any first. */
  failures(rawAddress: string | undefined): number {
    const key = addressKey(rawAddress);
    const score = this.scores.get(key);
    return (score ? this.failureTotal(this.pruned(score, this.now())) : 0) + sum(this.#others.get(key));
  }

  /** @internal Called by LoginAttempt. */
  settle(attempt: LoginAttempt, outcome: "succeeded" | "failed" | "released", reason?: string): void {
    const now = this.now();
    const score = this.score(attempt.address, now);
    const entry = score.accounts.get(attempt.account) ?? { failures: [], inflight: 1 };
    score.accounts.set(attempt.account, entry);
    entry.inflight = Math.max(0, entry.inflight - 1);
    score.inflight = Math.max(0, score.inflight - 1);
    if (outcome === "succeeded") {
      const hadFailed = entry.failures.length > 0 || (this.#others.get(attempt.address)?.get(attempt.account) ?? 0) > 0;
      entry.failures.length = 0;
      this.#rememberSuccess(attempt.address, now);
      if (hadFailed && this.options.shared) {
        this.#others.get(attempt.address)?.delete(attempt.account);
        this.#track(this.options.shared.forget(attempt.address, attempt.account));
      }
    }
    if (outcome !== "failed") {
      if (entry.failures.length === 0 && entry.inflight === 0) score.accounts.delete(attempt.account);
      return;
    }
    entry.failures.push(now);
    if (entry.failures.length >= this.options.maxFailures) {
      this.addBan(attempt.address, attempt.account, `${entry.failures.length} failed attempts (last: ${reason ?? "failed"})`, entry.failures.length, attempt.channel);
    }
    const failedAccounts = [...score.accounts.values()].filter((a) => a.failures.length > 0).length;
    if (failedAccounts >= this.options.maxAccounts || this.failureTotal(score) >= this.addressLimit) {
      this.addBan(attempt.address, null, `failed attempts at ${failedAccounts} accounts`, this.failureTotal(score), attempt.channel);
    }
    this.#share(attempt.address, attempt.account, reason ?? "failed", attempt.channel);
  }

  /**
   * Several nodes: writes the failure for the others, reads theirs for this address, and bans
   * when every node's failures together reach a limit that this node's alone did not.
   */
  #share(address: string, account: string, reason: string, channel: Channel): void {
    const shared = this.options.shared;
    if (!shared) return;
    this.#track(
      shared.record(address, account).then((others) => {
        this.#others.set(address, others);
        const score = this.score(address, this.now());
        const local = (name: string) => (name === "" ? score.protocol.length : (score.accounts.get(name)?.failures.length ?? 0));
        if (account !== "") {
          const together = local(account) + (others.get(account) ?? 0);
          if (together >= this.options.maxFailures) this.addBan(address, account, `${together} failed attempts on all nodes (last: ${reason})`, together, channel);
        }
        const failedAccounts = new Set([...[...score.accounts].filter(([, a]) => a.failures.length > 0).map(([name]) => name), ...[...others.keys()].filter((a) => a !== "")]).size;
        const total = this.failureTotal(score) + sum(others);
        if (failedAccounts >= this.options.maxAccounts || total >= this.addressLimit) {
          this.addBan(address, null, `failed attempts at ${failedAccounts} accounts on all nodes`, total, channel);
        }
      }),
    );
  }

  /** A write to the shared ledger, waited for by `stop` and `settled`, logged if it fails. */
  #track(work: Promise<void>): void {
    const key = `ledger:${this.#ledgerWrites++}`;
    const tracked = work
      .catch((error: unknown) => this.logger.error({ event: "security.failures.share_failed", err: error }, "could not share a failed login with the other nodes"))
      .finally(() => this.pending.delete(key));
    this.pending.set(key, tracked);
  }

  #ledgerWrites = 0;

  #rememberSuccess(address: string, now: number): void {
    const key = addressKey(address);
    this.#succeeded.delete(key);
    this.#succeeded.set(key, now);
    // Oldest first (insertion order): bounded however many addresses log in.
    if (this.#succeeded.size > MAX_TRUSTED_ADDRESSES) this.#succeeded.delete(this.#succeeded.keys().next().value!);
  }

  /** Bans in force (of one address, or its /64, when given). */
  list(address?: string): Promise<Ban[]> {
    return this.store.active(address === undefined ? undefined : addressKey(address));
  }

  /** Lifts bans, every one or those of one address, and forgets the failures that led to them. */
  async clear(address: string | undefined, actor: string): Promise<number> {
    const key = address === undefined ? undefined : addressKey(address);
    await Promise.allSettled([...this.pending.values()]);
    const lifted = await this.store.clear(key);
    await this.options.shared?.clear(key);
    await this.options.shared?.announceBans();
    if (key === undefined) this.#others.clear();
    else this.#others.delete(key);
    for (const banKey of [...this.bans.keys()]) if (key === undefined || banKey.startsWith(`${key}|`)) this.bans.delete(banKey);
    if (key === undefined) this.scores.clear();
    else this.scores.delete(key);
    await this.audit.record({ actor, action: "bans.cleared", details: { address: key ?? null, lifted } });
    this.logger.info({ event: "security.bans.cleared", address: key ?? null, lifted, actor }, "bans lifted");
    return lifted;
  }

  /** Whether an account (a district's SFTP username) is under attack: banned from at least one address. */
  async underAttack(account: string): Promise<UnderAttack | null> {
    const bans = await this.store.activeOnAccount(account);
    if (bans.length === 0) return null;
    return {
      since: bans[0]!.bannedAt,
      until: bans.map((b) => b.bannedUntil).sort().at(-1)!,
      addresses: bans.map((b) => b.address),
      failures: bans.reduce((sum, b) => sum + b.failures, 0),
    };
  }

  /** Resolves once every ban decided so far is in the database. */
  async settled(): Promise<void> {
    // A shared failure's write may decide a ban, itself pending: until nothing is left.
    while (this.pending.size > 0) await Promise.allSettled([...this.pending.values()]);
  }

  /** Reads the bans in force; one lifted elsewhere (`rosterdock bans clear`) takes its failures along. */
  async refresh(): Promise<void> {
    if (this.options.shared) {
      await this.options.shared.prune();
      this.#others = await this.options.shared.others();
    }
    const fresh = new Map((await this.store.active()).map((b) => [banKey(b.address, b.account), b]));
    const now = this.now();
    for (const [key, ban] of this.bans) {
      if (this.pending.has(key) && !fresh.has(key)) fresh.set(key, ban);
      else if (!fresh.has(key) && Date.parse(ban.bannedUntil) > now) {
        if (ban.account === null) this.scores.delete(ban.address);
        else this.scores.get(ban.address)?.accounts.delete(ban.account);
      }
    }
    this.bans = fresh;
  }

  private get addressLimit(): number {
    return this.options.maxFailures * this.options.maxAccounts;
  }

  private now(): number {
    return this.clock.now().getTime();
  }

  private banFor(address: string, account: string | null): Ban | undefined {
    const now = this.now();
    for (const key of account === null ? [banKey(address, null)] : [banKey(address, null), banKey(address, account)]) {
      const ban = this.bans.get(key);
      if (ban && Date.parse(ban.bannedUntil) > now) return ban;
    }
    return undefined;
  }

  private addBan(address: string, account: string | null, reason: string, failures: number, channel: Channel): void {
    const key = banKey(address, account);
    if (this.pending.has(key) || this.banFor(address, account)) return;
    const now = new Date(this.now());
    // In force at once, before the database has it: the next attempt is already refused.
    this.bans.set(key, { address, account, reason, failures, strikes: 1, bannedAt: now.toISOString(), bannedUntil: new Date(now.getTime() + this.options.banMs).toISOString() });
    const saved = this.store
      .ban({ address, account, reason, failures, baseMs: this.options.banMs })
      .then(async ({ ban, accountAlreadyBanned }) => {
        this.bans.set(key, ban);
        await this.options.shared?.announceBans();
        this.logger.warn(
          { event: "security.ban.added", ip: address, account, channel, reason, failures, strikes: ban.strikes, bannedUntil: ban.bannedUntil },
          account === null ? "address banned for every account" : "address banned for one account",
        );
        await this.hooks.onBan?.(ban, { channel, accountAlreadyBanned });
      })
      .catch((error: unknown) => this.logger.error({ event: "security.ban.failed", ip: address, account, err: error }, "could not record a ban"))
      .finally(() => this.pending.delete(key));
    this.pending.set(key, saved);
  }

  private score(address: string, now: number): AddressScore {
    let score = this.scores.get(address);
    if (!score) {
      if (this.scores.size >= MAX_ADDRESSES) this.prune(now);
      score = { accounts: new Map(), protocol: [], inflight: 0 };
      this.scores.set(address, score);
      return score;
    }
    return this.pruned(score, now);
  }

  /** Drops failures older than the window, and accounts left with nothing. */
  private pruned(score: AddressScore, now: number): AddressScore {
    const cutoff = now - this.options.windowMs;
    for (const [account, entry] of score.accounts) {
      while (entry.failures.length > 0 && entry.failures[0]! <= cutoff) entry.failures.shift();
      if (entry.failures.length === 0 && entry.inflight === 0) score.accounts.delete(account);
    }
    while (score.protocol.length > 0 && score.protocol[0]! <= cutoff) score.protocol.shift();
    return score;
  }

  private failureTotal(score: AddressScore): number {
    let total = score.protocol.length;
    for (const entry of score.accounts.values()) total += entry.failures.length;
    return total;
  }

  private total(score: AddressScore): number {
    return this.failureTotal(score) + score.inflight;
  }

  private prune(now: number): void {
    for (const [address, score] of this.scores) {
      if (this.total(this.pruned(score, now)) === 0) this.scores.delete(address);
    }
    // Still full of addresses with recent failures (a botnet): forget the oldest half rather than grow.
    if (this.scores.size >= MAX_ADDRESSES) [...this.scores.keys()].slice(0, MAX_ADDRESSES / 2).forEach((a) => this.scores.delete(a));
  }
}

function sum(counts: AccountCounts | undefined): number {
  let total = 0;
  for (const n of counts?.values() ?? []) total += n;
  return total;
}

function banKey(address: string, account: string | null): string {
  return `${address}|${account ?? ""}`;
}
