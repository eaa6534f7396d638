import { isIP } from "node:net";
import type { Logger } from "pino";
import type { DescriptorBudget } from "./descriptor-budget.ts";

export interface ConnectionLimitSettings {
  loginTimeoutSeconds: number;
  idleTimeoutSeconds: number;
  maxUnauthenticatedPerAddress: number;
  maxUnauthenticated: number;
  maxConnectionsPerDistrict: number;
  maxConnectionsPerAddress: number;
  maxConnections: number;
  maxChannelsPerConnection: number;
}

/** The limit that refused a connection or channel, as logged (`limit`) and counted in /healthz. */
export type LimitName =
  | "descriptors"
  | "unauthenticated_per_address"
  | "unauthenticated"
  | "connections_per_district"
  | "connections_per_address"
  | "connections"
  | "channels_per_connection";

export type TimeoutStage = "login" | "idle";

export interface ConnectionReport {
  unauthenticated: number;
  authenticated: number;
  channels: number;
  /** Limits that some address, district or connection has reached right now. */
  atLimit: LimitName[];
  refused: Record<LimitName, number>;
  timedOut: Record<TimeoutStage, number>;
  limits: ConnectionLimitSettings;
}

/**
 * The key connections are counted under: the address itself, IPv4-mapped IPv6 as IPv4, and
 * other IPv6 addresses by their /64, since one host is routinely given a whole /64.
 */
export function addressKey(address: string): string {
  const plain = address.replace(/%.*$/, "");
  if (/^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(plain)) return plain.slice(7);
  if (isIP(plain) !== 6 || plain.includes(".")) return plain;
  const [head = "", tail] = plain.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(":")}::/64`;
}

/** Refusals of one kind from one source are logged once per this period, with the count in between. */
const REFUSAL_LOG_PERIOD_MS = 10_000;

class Counter {
  private readonly counts = new Map<string, number>();
  total = 0;

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  add(key: string, by: number): void {
    const next = this.get(key) + by;
    if (next > 0) this.counts.set(key, next);
    else this.counts.delete(key);
    this.total += by;
  }

  reaches(max: number): boolean {
    for (const count of this.counts.values()) if (count >= max) return true;
    return false;
  }
}

export interface DistrictRef {
  id: number;
  slug: string;
}

/**
 * Every SFTP connection's place in the caps, from TCP accept to close, and its timeouts.
 * Refusals are decided and logged here; the server only closes what it is told to.
 */
export class ConnectionLimits {
  private readonly unauthenticatedByAddress = new Counter();
  private readonly authenticatedByAddress = new Counter();
  private readonly authenticatedByDistrict = new Counter();
  private readonly tickets = new Set<ConnectionTicket>();
  private channelCount = 0;
  private readonly refused: Record<LimitName, number> = {
    descriptors: 0,
    unauthenticated_per_address: 0,
    unauthenticated: 0,
    connections_per_district: 0,
    connections_per_address: 0,
    connections: 0,
    channels_per_connection: 0,
  };
  private readonly timedOut: Record<TimeoutStage, number> = { login: 0, idle: 0 };
  private readonly refusalLog = new Map<string, { since: number; suppressed: number }>();

  constructor(
    readonly settings: Readonly<ConnectionLimitSettings>,
    readonly descriptors: DescriptorBudget,
    private readonly logger: Logger,
  ) {}

  /**
   * A TCP connection was accepted: a ticket, with the login timeout running, or undefined when
   * a cap refuses it (logged; the caller closes the socket before any SSH work).
   */
  admit(address: string, port: number, onTimeout: (stage: TimeoutStage, seconds: number) => void): ConnectionTicket | undefined {
    const key = addressKey(address);
    const { settings } = this;
    let refusal: [LimitName, number] | undefined;
    if (!this.descriptors.hasRoom("connection")) refusal = ["descriptors", this.descriptors.limits!.soft - this.descriptors.reserve];
    else if (this.unauthenticatedByAddress.get(key) >= settings.maxUnauthenticatedPerAddress) refusal = ["unauthenticated_per_address", settings.maxUnauthenticatedPerAddress];
    else if (this.unauthenticatedByAddress.total >= settings.maxUnauthenticated) refusal = ["unauthenticated", settings.maxUnauthenticated];
    if (refusal) {
      this.refuse(refusal[0], refusal[1], key, { ip: address, port });
      return undefined;
    }
    this.unauthenticatedByAddress.add(key, 1);
    this.descriptors.opened();
    const ticket = new ConnectionTicket(this, key, onTimeout);
    this.tickets.add(ticket);
    return ticket;
  }

  report(): ConnectionReport {
    const { settings } = this;
    const atLimit: LimitName[] = [];
    if (!this.descriptors.hasRoom("connection")) atLimit.push("descriptors");
    if (this.unauthenticatedByAddress.reaches(settings.maxUnauthenticatedPerAddress)) atLimit.push("unauthenticated_per_address");
    if (this.unauthenticatedByAddress.total >= settings.maxUnauthenticated) atLimit.push("unauthenticated");
    if (this.authenticatedByDistrict.reaches(settings.maxConnectionsPerDistrict)) atLimit.push("connections_per_district");
    if (this.authenticatedByAddress.reaches(settings.maxConnectionsPerAddress)) atLimit.push("connections_per_address");
    if (this.authenticatedByAddress.total >= settings.maxConnections) atLimit.push("connections");
    if ([...this.tickets].some((t) => t.channels >= settings.maxChannelsPerConnection)) atLimit.push("channels_per_connection");
    return {
      unauthenticated: this.unauthenticatedByAddress.total,
      authenticated: this.authenticatedByAddress.total,
      channels: this.channelCount,
      atLimit,
      refused: { ...this.refused },
      timedOut: { ...this.timedOut },
      limits: { ...settings },
    };
  }

  // ---- used by ConnectionTicket --------------------------------------------------------

  /** @internal Moves a ticket from the unauthenticated counts to the authenticated ones, if the caps allow. */
  authenticate(ticket: ConnectionTicket, district: DistrictRef, fields: Record<string, unknown>): boolean {
    const { settings } = this;
    const byDistrict = String(district.id);
    let refusal: [LimitName, number, string] | undefined;
    if (this.authenticatedByDistrict.get(byDistrict) >= settings.maxConnectionsPerDistrict) refusal = ["connections_per_district", settings.maxConnectionsPerDistrict, `district:${byDistrict}`];
    else if (this.authenticatedByAddress.get(ticket.addressKey) >= settings.maxConnectionsPerAddress) refusal = ["connections_per_address", settings.maxConnectionsPerAddress, ticket.addressKey];
    else if (this.authenticatedByAddress.total >= settings.maxConnections) refusal = ["connections", settings.maxConnections, ticket.addressKey];
    if (refusal) {
      this.refuse(refusal[0], refusal[1], refusal[2], { ...fields, district: district.slug });
      return false;
    }
    this.unauthenticatedByAddress.add(ticket.addressKey, -1);
    this.authenticatedByAddress.add(ticket.addressKey, 1);
    this.authenticatedByDistrict.add(byDistrict, 1);
    return true;
  }

  /** @internal */
  openChannel(ticket: ConnectionTicket, fields: Record<string, unknown>): boolean {
    if (ticket.channels >= this.settings.maxChannelsPerConnection) {
      this.refuse("channels_per_connection", this.settings.maxChannelsPerConnection, `channels:${ticket.addressKey}`, fields);
      return false;
    }
    this.channelCount++;
    return true;
  }

  /** @internal */
  closeChannels(count: number): void {
    this.channelCount -= count;
  }

  /** @internal */
  countTimeout(stage: TimeoutStage): void {
    this.timedOut[stage]++;
  }

  /** @internal */
  release(ticket: ConnectionTicket, districtId: number | undefined): void {
    this.tickets.delete(ticket);
    this.descriptors.closed();
    if (districtId === undefined) {
      this.unauthenticatedByAddress.add(ticket.addressKey, -1);
    } else {
      this.authenticatedByAddress.add(ticket.addressKey, -1);
      this.authenticatedByDistrict.add(String(districtId), -1);
    }
  }

  private refuse(limit: LimitName, max: number, source: string, fields: Record<string, unknown>): void {
    this.refused[limit]++;
    const key = `${limit} ${source}`;
    const now = Date.now();
    const last = this.refusalLog.get(key);
    if (last && now - last.since < REFUSAL_LOG_PERIOD_MS) {
      last.suppressed++;
      return;
    }
    if (this.refusalLog.size > 10_000) {
      for (const [k, v] of this.refusalLog) if (now - v.since >= REFUSAL_LOG_PERIOD_MS) this.refusalLog.delete(k);
    }
    this.refusalLog.set(key, { since: now, suppressed: 0 });
    this.logger.warn(
      { event: "sftp.connection.refused", limit, max, ...fields, ...(last ? { alsoRefusedSinceLastLog: last.suppressed } : {}) },
      `connection refused: ${REFUSAL_MESSAGES[limit]}`,
    );
  }
}

const REFUSAL_MESSAGES: Record<LimitName, string> = {
  descriptors: "the process is near its file descriptor limit",
  unauthenticated_per_address: "too many connections from this address are not logged in yet",
  unauthenticated: "too many connections are not logged in yet",
  connections_per_district: "the district has too many connections open",
  connections_per_address: "this address has too many logged-in connections open",
  connections: "too many logged-in connections are open",
  channels_per_connection: "the connection has too many SFTP sessions open",
};

/** One connection's place in the counts; released once when its socket closes. */
export class ConnectionTicket {
  channels = 0;
  private districtId: number | undefined;
  private released = false;
  private timer: NodeJS.Timeout | undefined;
  private lastActivity = 0;

  constructor(
    private readonly limits: ConnectionLimits,
    readonly addressKey: string,
    private readonly onTimeout: (stage: TimeoutStage, seconds: number) => void,
  ) {
    const seconds = limits.settings.loginTimeoutSeconds;
    this.timer = setTimeout(() => this.expire("login", seconds), seconds * 1000);
    this.timer.unref();
  }

  get authenticated(): boolean {
    return this.districtId !== undefined;
  }

  /** Logged in: counted against the district's and address's caps, then idle-timed. False when refused. */
  authenticate(district: DistrictRef, fields: Record<string, unknown>): boolean {
    if (this.released || this.districtId !== undefined) return false;
    if (!this.limits.authenticate(this, district, fields)) return false;
    this.districtId = district.id;
    clearTimeout(this.timer);
    this.touch();
    this.scheduleIdle(this.limits.settings.idleTimeoutSeconds * 1000);
    return true;
  }

  openChannel(fields: Record<string, unknown>): boolean {
    if (this.released || !this.limits.openChannel(this, fields)) return false;
    this.channels++;
    this.touch();
    return true;
  }

  closeChannel(): void {
    if (this.released || this.channels === 0) return;
    this.channels--;
    this.limits.closeChannels(1);
  }

  /** A request arrived: the idle clock starts again. Cheap, since it runs for every SFTP WRITE. */
  touch(): void {
    this.lastActivity = performance.now();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    clearTimeout(this.timer);
    this.limits.closeChannels(this.channels);
    this.limits.release(this, this.districtId);
  }

  // One timer per connection, re-armed only when it fires: resetting it on every request would cost more.
  private scheduleIdle(delayMs: number): void {
    this.timer = setTimeout(() => {
      const timeoutMs = this.limits.settings.idleTimeoutSeconds * 1000;
      const idleMs = performance.now() - this.lastActivity;
      if (idleMs >= timeoutMs) this.expire("idle", this.limits.settings.idleTimeoutSeconds);
      else this.scheduleIdle(timeoutMs - idleMs);
    }, delayMs);
    this.timer.unref();
  }

  private expire(stage: TimeoutStage, seconds: number): void {
    if (this.released) return;
    this.limits.countTimeout(stage);
    this.onTimeout(stage, seconds);
  }
}
