import { createServer, type AddressInfo, type Server as TcpServer, type Socket } from "node:net";
import ssh2 from "ssh2";
import type { AuthContext, AuthenticationType, ClientInfo, Connection, NegotiatedAlgorithms, ServerConfig } from "ssh2";
import type { Logger } from "pino";
import type { AccessRevoked, DistrictService, DistrictView, LoginResult } from "../districts/district-service.ts";
import type { DeliveryService } from "../deliveries/delivery-service.ts";
import type { LocalStorage } from "../storage/local-storage.ts";
import type { HostKey } from "./host-keys.ts";
import { Jail } from "./jail.ts";
import { isRosterdockError, listenError } from "../errors.ts";
import type { Defender, LoginAttempt, Refusal } from "../security/defender.ts";
import { SftpSession, type SessionLimits } from "./sftp-session.ts";
import { sshAlgorithms, type SshAlgorithms } from "./ssh-algorithms.ts";
import { ClientHello } from "./client-hello.ts";
import { HANDSHAKE_FAILURE_MESSAGES, handshakeCloseFailure, handshakeErrorFailure, type HandshakeFailure } from "./handshake-failure.ts";
import { ConnectionLimits, type ConnectionLimitSettings, type ConnectionReport, type ConnectionTicket, type TimeoutStage } from "./connection-limits.ts";
import { DescriptorBudget, readDescriptorLimits, type DescriptorReport } from "./descriptor-budget.ts";
import { DistrictFileGate } from "./district-file-gate.ts";
import { readProxyHeader, type ProxyHeaderRead } from "./proxy-header.ts";
import { isAddressAllowed } from "../districts/ip-allow-list.ts";

const { Server, utils } = ssh2;

export interface SftpServerOptions {
  host: string;
  port: number;
  hostKeys: readonly HostKey[];
  allowSshRsa: boolean;
  limits: SessionLimits;
  connectionLimits: ConnectionLimitSettings;
  /** File descriptors kept for HTTP and the database (see DescriptorBudget). */
  descriptorReserve: number;
  /** Wait before answering a failed login, to slow guessing. */
  failedLoginDelayMs?: number;
  /** Set: every connection comes from one of these proxies (addresses, CIDR ranges) and opens with a PROXY header. */
  proxyProtocol?: { trustedProxies: readonly string[] };
}

const BANNER = "Rosterdock SFTP";

/** Every SFTP request a client can send: each one restarts the idle timeout. */
const SFTP_REQUESTS = ["OPEN", "READ", "WRITE", "FSTAT", "FSETSTAT", "CLOSE", "OPENDIR", "READDIR", "LSTAT", "STAT", "REMOVE", "RMDIR", "REALPATH", "READLINK", "SETSTAT", "MKDIR", "RENAME", "SYMLINK", "EXTENDED"] as const;

/** One TCP connection, from accept to close, whether or not it ever becomes an SSH connection. */
interface Attempt {
  readonly socket: Socket;
  /** The client's address and port: the TCP peer's, or those in the PROXY header. */
  readonly address: string;
  readonly port: number;
  /** The proxy the connection came through, when it did. */
  readonly via: string | undefined;
  readonly hello: ClientHello;
  readonly ticket: ConnectionTicket;
  client?: Connection;
  ident?: string;
  /** The district's slug once logged in. */
  district?: string;
  negotiated?: NegotiatedAlgorithms;
  /** Set once the connection's handshake outcome was logged (or it succeeded). */
  settled: boolean;
}

/** A logged-in connection, and what its login was granted against (see DistrictService.accessStamps). */
interface LiveLogin {
  readonly client: Connection;
  readonly districtId: number;
  readonly slug: string;
  readonly address: string;
  readonly stamp: string | undefined;
}

/** Handshake failures that are the client breaking the protocol (scanners), not a hang-up or a host key refused. */
const PROTOCOL_ERRORS = new Set<HandshakeFailure["reason"]>([
  "bad_identification",
  "protocol_error",
  "key_exchange_failed",
  "no_matching_kex",
  "no_matching_host_key",
  "no_matching_cipher",
  "no_matching_mac",
  "no_matching_compression",
]);

/** Failures where the credential was right: no guessing, so they do not count against the address. */
const NOT_GUESSES = new Set<string>(["disabled", "address_not_allowed"]);

const AUTH_METHODS: AuthenticationType[] = ["password", "publickey", "keyboard-interactive"];

/** How often logged-in sessions are checked against their district (disabled or password rotated elsewhere). */
const REVALIDATE_MS = 5000;

/** The SSH/SFTP front end: authentication, then one jailed SftpSession per SFTP channel. */
export class SftpServer {
  private readonly ssh: InstanceType<typeof Server>;
  /** Accepts the TCP connections and hands them to ssh2, so that connections ssh2 never reports are seen too. */
  private readonly tcp: TcpServer;
  private readonly algorithms: SshAlgorithms;
  private readonly attempts = new Map<string, Attempt>();
  private readonly disposals = new Set<Promise<void>>();
  private readonly descriptors: DescriptorBudget;
  private readonly connections: ConnectionLimits;
  /** Logged-in connections per district, so a disable or a password rotation can end them. */
  private readonly live = new Map<number, Set<LiveLogin>>();
  private revalidateTimer: NodeJS.Timeout | undefined;
  /** Each district's file opens and closes, a few at a time, so that one district's flood queues behind itself. */
  private readonly fileGate = new DistrictFileGate();
  /** Sockets whose PROXY header is still awaited. */
  private readonly awaitingHeader = new Set<Socket>();
  private closing = false;

  constructor(
    private readonly options: SftpServerOptions,
    private readonly districts: DistrictService,
    private readonly deliveries: DeliveryService,
    private readonly storage: LocalStorage,
    private readonly logger: Logger,
    private readonly defender: Defender,
  ) {
    this.algorithms = sshAlgorithms({ allowSshRsa: options.allowSshRsa });
    this.descriptors = new DescriptorBudget(readDescriptorLimits(), options.descriptorReserve, logger);
    this.connections = new ConnectionLimits(options.connectionLimits, this.descriptors, logger);
    this.ssh = new Server(this.serverConfig(), (client, info) => this.onConnection(client, info));
    this.tcp = createServer((socket) => this.onSocket(socket));
  }

  private serverConfig(): ServerConfig {
    const offered = this.algorithms;
    // ssh2 offers every key it is given (an RSA key always with SHA-1 `ssh-rsa` too), so the list of
    // host key algorithms is kept by passing only the keys it names.
    const keys = this.options.hostKeys.filter((k) => offered.hostKey.includes(k.algorithm));
    return {
      hostKeys: keys.map((k) => k.privateKey),
      ident: "Rosterdock",
      // Protocol traces at log level trace: what a district's client negotiated and why it failed.
      debug: this.logger.isLevelEnabled("trace") ? (message: string) => this.logger.trace({ event: "ssh.debug" }, message) : undefined,
      banner: undefined,
      algorithms: {
        kex: [...offered.kex] as never,
        serverHostKey: [...offered.hostKey] as never,
        cipher: [...offered.cipher] as never,
        hmac: [...offered.mac] as never,
        compress: [...offered.compression] as never,
      },
    };
  }

  /** Connection counts and descriptor use, for /healthz. */
  report(): { connections: ConnectionReport; descriptors: DescriptorReport | undefined } {
    return { connections: this.connections.report(), descriptors: this.descriptors.report() };
  }

  async listen(): Promise<number> {
    await this.descriptors.start();
    await new Promise<void>((resolve, reject) => {
      this.tcp.once("error", (error: Error) => reject(listenError(error, "SFTP", this.options.host, this.options.port)));
      // A deep accept queue lets a flood be accepted and refused at once, instead of its SYNs crowding out a district's.
      this.tcp.listen({ port: this.options.port, host: this.options.host, backlog: 4096 }, () => {
        this.tcp.removeAllListeners("error");
        this.tcp.on("error", (error: Error) => this.logger.error({ event: "sftp.server.error", err: error }, "SFTP server error"));
        resolve();
      });
    });
    const port = (this.tcp.address() as AddressInfo).port;
    this.logger.info({ event: "sftp.listening", host: this.options.host, port }, "SFTP server listening");
    this.revalidateTimer = setInterval(() => {
      this.revalidate().catch((error: unknown) => this.logger.error({ event: "sftp.revalidate.failed", err: error }, "could not check open sessions against their districts"));
    }, REVALIDATE_MS);
    this.revalidateTimer.unref();
    return port;
  }

  /** Ends the district's logged-in connections (open uploads become partial uploads). */
  closeDistrictSessions(districtId: number, why: AccessRevoked): number {
    const logins = [...(this.live.get(districtId) ?? [])];
    for (const login of logins) {
      this.logger.warn({ event: "sftp.session.ended", district: login.slug, ip: login.address, reason: why }, why === "disabled" ? "session ended: the district was disabled" : "session ended: the district's password was rotated");
      login.client.end();
    }
    this.live.delete(districtId);
    return logins.length;
  }

  /** Catches disables and rotations made by the CLI or another server, which this process hears nothing of. */
  private async revalidate(): Promise<void> {
    if (this.live.size === 0) return;
    const stamps = await this.districts.accessStamps([...this.live.keys()]);
    for (const [districtId, logins] of this.live) {
      const stamp = stamps.get(districtId);
      const stale = [...logins].find((l) => l.stamp !== undefined && l.stamp !== stamp);
      if (stale) this.closeDistrictSessions(districtId, stamp?.startsWith("active:") ? "password_rotated" : "disabled");
    }
  }

  /** Stops accepting connections and ends those open; open uploads become partial uploads. */
  async close(): Promise<void> {
    if (this.revalidateTimer) clearInterval(this.revalidateTimer);
    const closed = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    this.descriptors.stop();
    this.closing = true;
    for (const socket of this.awaitingHeader) socket.destroy();
    for (const attempt of this.attempts.values()) {
      // Handshakes cut short by the shutdown itself are not the client's failure.
      attempt.settled = true;
      if (attempt.client) attempt.client.end();
      else attempt.socket.destroy();
    }
    await closed;
    await Promise.allSettled([...this.disposals]);
  }

  private onSocket(socket: Socket): void {
    const { remoteAddress, remotePort } = socket;
    // Already reset by the client.
    if (remoteAddress === undefined) return void socket.destroy();
    const proxy = this.options.proxyProtocol;
    if (!proxy) return this.admit(socket, remoteAddress, remotePort ?? 0, undefined);
    if (proxy.trustedProxies.length === 0 || !isAddressAllowed(proxy.trustedProxies, remoteAddress)) {
      // A scanner going around the load balancer is one line a minute, counting the rest.
      const refused = this.defender.refusalToLog(`proxy:${remoteAddress}`);
      if (refused === undefined) return void socket.destroy();
      return this.refuseProxied(socket, { reason: "proxy_untrusted", detail: `${remoteAddress} is not in ROSTERDOCK_SFTP_TRUSTED_PROXIES` }, { refused });
    }
    // The header comes first, so the caps, bans and logs below count the client, not the proxy.
    this.awaitingHeader.add(socket);
    const seconds = this.options.connectionLimits.loginTimeoutSeconds;
    void readProxyHeader(socket, seconds * 1000).then((read) => {
      this.awaitingHeader.delete(socket);
      if (this.closing) return void socket.destroy();
      if (read.state === "complete") {
        const client = read.header.command === "proxy" ? read.header.source : { address: remoteAddress, port: remotePort ?? 0 };
        return this.admit(socket, client.address, client.port, remoteAddress);
      }
      this.headerFailed(socket, read, seconds);
    });
  }

  private headerFailed(socket: Socket, read: Exclude<ProxyHeaderRead, { state: "complete" }>, seconds: number): void {
    switch (read.state) {
      case "timeout":
        // Counted with the other login timeouts in /healthz.
        this.connections.countTimeout("login");
        this.logger.info(
          { event: "sftp.connection.timed_out", stage: "login", seconds, phase: "proxy_header", ip: socket.remoteAddress, port: socket.remotePort, via: socket.remoteAddress, received: read.received },
          `closed a connection whose PROXY header did not arrive within ${seconds} s`,
        );
        return void socket.destroy();
      case "closed":
        return this.refuseProxied(socket, { reason: read.received === 0 ? "closed_before_identification" : "proxy_header_malformed", detail: read.received === 0 ? undefined : `closed after ${read.received} bytes of a PROXY header` });
      case "missing":
        return this.refuseProxied(socket, { reason: "proxy_header_missing", detail: read.detail });
      case "malformed":
        return this.refuseProxied(socket, { reason: "proxy_header_malformed", detail: read.detail });
    }
  }

  /**
   * Refused before there is a client address to hold it against: the TCP peer is, or claims to be,
   * a proxy, and counting its failures would ban every client behind it.
   */
  private refuseProxied(socket: Socket, failure: HandshakeFailure, extra: { refused?: number } = {}): void {
    this.logger.info({ event: "sftp.handshake_failed", ip: socket.remoteAddress, port: socket.remotePort, via: socket.remoteAddress, ...failure, ...extra }, HANDSHAKE_FAILURE_MESSAGES[failure.reason]);
    socket.on("error", () => undefined);
    socket.destroy();
  }

  private admit(socket: Socket, address: string, port: number, via: string | undefined): void {
    // Closed while its PROXY header was read: no `close` event is left to release a ticket.
    if (socket.destroyed) return;
    // A banned address costs no key exchange: dropped here, logged once a minute.
    if (this.defender.isBanned(address)) return this.dropBanned(socket, address);
    // Its last login was turned away unchecked (hashing full): paused, again before any key exchange.
    if (this.defender.isPausedForBusy(address)) return this.dropBanned(socket, address, "server_busy");
    // Over a cap: closed before ssh2 sees it, so a flood costs no key-exchange work.
    const ticket = this.connections.admit(address, port, (stage, seconds) => this.timedOut(attempt, stage, seconds));
    if (!ticket) return void socket.destroy();
    // ssh2 leaves Nagle on, which stalls SFTP's small acknowledgements (measured: 0.2-0.5x throughput).
    socket.setNoDelay(true);
    // ssh2 names the connection by its TCP peer (the proxy's address and port, unique per connection).
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const attempt: Attempt = { socket, address, port, via, hello: new ClientHello(), ticket, settled: false };
    this.attempts.set(key, attempt);
    socket.once("close", () => {
      this.attempts.delete(key);
      ticket.release();
      if (!attempt.settled) this.handshakeFailed(attempt, handshakeCloseFailure(attempt.hello, attempt.client !== undefined));
    });
    this.ssh.injectSocket(socket);
    // Listening beside ssh2 (after it, so its pause until crypto is ready still holds).
    const listen = (chunk: Buffer) => {
      if (attempt.hello.push(chunk)) socket.off("data", listen);
    };
    socket.on("data", listen);
  }

  private timedOut(attempt: Attempt, stage: TimeoutStage, seconds: number): void {
    const { socket, hello } = attempt;
    // Logged as a timeout, not again as a failed handshake when the socket closes.
    attempt.settled = true;
    const phase = stage === "idle" ? undefined : !hello.ident && !attempt.ident ? "identification" : !attempt.negotiated ? "key_exchange" : "authentication";
    this.logger.info(
      { event: "sftp.connection.timed_out", stage, seconds, phase, ip: attempt.address, port: attempt.port, via: attempt.via, client: attempt.ident ?? hello.ident, district: attempt.district },
      stage === "idle" ? `closed a logged-in connection idle for ${seconds} s` : `closed a connection not logged in within ${seconds} s`,
    );
    if (stage === "login") return void socket.destroy();
    attempt.client?.end();
    // end() waits for the client to close; a silent one must not keep the descriptor.
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  private dropBanned(socket: Socket, address: string, reason: "banned" | "server_busy" = "banned"): void {
    const dropped = this.defender.refusalToLog(address);
    if (dropped !== undefined) {
      const via = socket.remoteAddress === address ? undefined : socket.remoteAddress;
      if (reason === "banned") this.logger.warn({ event: "sftp.connection.refused", ip: address, via, reason, dropped }, "connection dropped: the address is banned (`rosterdock bans list`)");
      else this.logger.warn({ event: "sftp.connection.refused", ip: address, via, reason, dropped }, "connection dropped: a login from this address was just refused for want of hashing capacity; it may try again shortly");
    }
    socket.on("error", () => undefined);
    socket.destroy();
  }

  private handshakeFailed(attempt: Attempt, failure: HandshakeFailure): void {
    attempt.settled = true;
    const { hello } = attempt;
    if (PROTOCOL_ERRORS.has(failure.reason)) this.defender.recordProtocolError(attempt.address, failure.reason);
    this.logger.info(
      { event: "sftp.handshake_failed", ip: attempt.address, port: attempt.port, via: attempt.via, client: attempt.ident ?? hello.ident, ...failure },
      HANDSHAKE_FAILURE_MESSAGES[failure.reason],
    );
  }

  private onConnection(client: Connection, info: ClientInfo): void {
    const attempt = this.attempts.get(`${info.ip}:${info.port}`);
    if (!attempt) {
      client.end();
      return;
    }
    attempt.client = client;
    attempt.ident = info.header.identRaw;
    const address = attempt.address;
    const clientVersion = info.header.identRaw;
    let district: DistrictView | undefined;
    let login: LiveLogin | undefined;
    const sessions = new Set<SftpSession>();
    const state = { keyFailureCounted: false };

    client.on("authentication", (ctx) => {
      this.authenticate(ctx, address, state).then(
        async (result) => {
          if (result === undefined || !result.ok) return;
          const stamp = (await this.districts.accessStamps([result.district.id])).get(result.district.id);
          district = result.district;
          login = { client, districtId: district.id, slug: district.slug, address, stamp };
          ctx.accept();
        },
        (error: unknown) => {
          this.logger.error({ event: "sftp.login.error", err: error, ip: address }, "login check failed");
          ctx.reject();
        },
      );
    });

    client.on("ready", () => {
      if (!district || !login) return client.end();
      const current = district;
      const { ticket } = attempt;
      const where = { ip: address, port: attempt.port, district: current.slug };
      if (!ticket.authenticate(current, where)) {
        // Refused after the password was checked, so the client reads "resource shortage", not a wrong password.
        client.on("session", (_accept, reject) => {
          reject();
          client.end();
        });
        setTimeout(() => attempt.socket.destroy(), 5000).unref();
        return;
      }
      attempt.district = current.slug;
      const logins = this.live.get(current.id) ?? new Set<LiveLogin>();
      logins.add(login);
      this.live.set(current.id, logins);
      const negotiated = attempt.negotiated;
      const ssh = negotiated && { kex: negotiated.kex, hostKey: negotiated.serverHostKey, cipher: negotiated.cs.cipher, mac: negotiated.cs.mac || undefined, compression: negotiated.cs.compress };
      this.logger.info({ event: "sftp.login.succeeded", district: current.slug, ip: address, via: attempt.via, client: clientVersion, ssh }, "login succeeded");
      client.on("session", (acceptSession, rejectSession) => {
        if (!ticket.openChannel(where)) return rejectSession();
        const session = acceptSession();
        let sftpSession: SftpSession | undefined;
        session.once("close", () => {
          ticket.closeChannel();
          // A channel's open files go with it, so closing channels cannot pile up open files under the cap.
          if (sftpSession) this.dispose(sftpSession, sessions);
        });
        session.on("sftp", (acceptSftp) => {
          // Accepted synchronously: the client's first SFTP packet is already on its way.
          let home: string;
          try {
            home = this.storage.homeDir(current.id);
          } catch (error) {
            this.logger.error({ err: error }, "could not open the district's space");
            return client.end();
          }
          const sftp = acceptSftp();
          sftpSession = new SftpSession(
            sftp,
            new Jail(home),
            { districtId: current.id, districtSlug: current.slug, clientIp: address, clientVersion },
            this.storage,
            this.deliveries,
            { ...this.options.limits, hasDescriptorRoom: () => this.descriptors.hasRoom("file"), fileTurn: (work) => this.fileGate.run(current.id, work) },
            this.logger.child({ district: current.slug }),
          );
          sessions.add(sftpSession);
          // Only requests the session answers: ssh2 answers "unsupported" itself only when nobody listens.
          const touch = () => ticket.touch();
          for (const request of SFTP_REQUESTS) if (sftp.listenerCount(request) > 0) sftp.on(request, touch);
        });
        // Only the SFTP subsystem: no shell, no commands, no forwarding.
        session.on("exec", (_accept, reject) => reject());
        session.on("shell", (_accept, reject) => reject());
        session.on("pty", (_accept, reject) => reject?.());
        session.on("env", (_accept, reject) => reject?.());
      });
    });

    client.on("handshake", (negotiated) => {
      if (attempt.negotiated) return; // a later re-key
      attempt.negotiated = negotiated;
      attempt.settled = true;
    });
    client.on("error", (error: Error) => {
      if (!attempt.settled) return this.handshakeFailed(attempt, handshakeErrorFailure(error, attempt.hello, true, this.algorithms));
      // Broken SSH after the handshake but before any login: a protocol error against the address.
      if (!district && (error as Error & { level?: string }).level !== "socket") this.defender.recordProtocolError(address, "protocol_error");
      this.logger.debug({ event: "sftp.connection.error", ip: address, err: error.message }, "connection error");
    });
    client.on("close", () => {
      if (login) {
        const logins = this.live.get(login.districtId);
        logins?.delete(login);
        if (logins?.size === 0) this.live.delete(login.districtId);
      }
      for (const session of sessions) this.dispose(session, sessions);
    });
  }

  private dispose(session: SftpSession, sessions: Set<SftpSession>): void {
    sessions.delete(session);
    const disposal = session.dispose().finally(() => this.disposals.delete(disposal));
    this.disposals.add(disposal);
  }

  /** Resolves to the login's result, or undefined when the context was answered some other way. */
  private async authenticate(ctx: AuthContext, address: string, state: { keyFailureCounted: boolean }): Promise<LoginResult | undefined> {
    const username = ctx.username;
    switch (ctx.method) {
      case "password": {
        const password = ctx.password;
        return this.check(ctx, address, (attempt) => this.passwordLogin(ctx, attempt, username, password, address));
      }
      case "keyboard-interactive": {
        // Prompted before the check is reserved: a client slow to answer holds no place in the count.
        const answers = await new Promise<string[]>((resolve) => ctx.prompt([{ prompt: "Password: ", echo: false }], BANNER, resolve));
        return this.check(ctx, address, (attempt) => this.passwordLogin(ctx, attempt, username, answers[0] ?? "", address));
      }
      case "publickey":
        return this.check(ctx, address, async (attempt) => {
          const registered = await this.districts.publicKeys(username);
          const match = registered?.keys.find((text) => {
            const parsed = utils.parseKey(text);
            return !(parsed instanceof Error) && parsed.getPublicSSH().equals(ctx.key.data);
          });
          if (!registered || !match) {
            // A client offers each key of its agent in turn: one wrong key counts per connection, so
            // a district whose password follows its keys is not banned by its own agent.
            if (state.keyFailureCounted) attempt.release();
            else attempt.fail("bad_key");
            state.keyFailureCounted = true;
            this.logger.warn({ event: "sftp.login.failed", username, ip: address, method: ctx.method, reason: "bad_key" }, "login failed");
            ctx.reject(AUTH_METHODS);
            return undefined;
          }
          if (!ctx.signature) {
            // The client asks whether this key would do; it signs next.
            attempt.release();
            ctx.accept();
            return undefined;
          }
          const parsed = utils.parseKey(match);
          const valid = !(parsed instanceof Error) && ctx.blob !== undefined && parsed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
          const result: LoginResult = valid ? this.districts.admit(registered.district, address) : { ok: false, reason: "bad_key" };
          return this.finish(ctx, attempt, username, address, result);
        });
      default:
        ctx.reject(AUTH_METHODS);
        return undefined;
    }
  }

  private async passwordLogin(ctx: AuthContext, attempt: LoginAttempt, username: string, password: string, address: string): Promise<LoginResult | undefined> {
    return this.finish(ctx, attempt, username, address, await this.districts.loginWithPassword(username, password, address));
  }

  /** Reserves the check with the defender, or refuses at once (banned, at the limit, hashing queue full). */
  private async check(ctx: AuthContext, address: string, run: (attempt: LoginAttempt) => Promise<LoginResult | undefined>): Promise<LoginResult | undefined> {
    const started = this.defender.begin(address, ctx.username, "ssh");
    if (!started.ok) return this.refuse(ctx, address, started.refusal.reason, started.refusal);
    try {
      return await run(started.attempt);
    } catch (error) {
      started.attempt.release();
      if (isRosterdockError(error) && error.code === "ERR_BUSY") {
        this.defender.recordBusy(address);
        return this.refuse(ctx, address, "server_busy");
      }
      throw error;
    }
  }

  private refuse(ctx: AuthContext, address: string, reason: "banned" | "too_many_failures" | "server_busy", refusal?: Refusal): undefined {
    this.logger.warn({ event: "sftp.login.failed", username: ctx.username, ip: address, method: ctx.method, reason, retryAfterSeconds: refusal?.retryAfterSeconds }, "login refused without a check");
    ctx.reject(AUTH_METHODS);
    return undefined;
  }

  private async finish(ctx: AuthContext, attempt: LoginAttempt, username: string, address: string, result: LoginResult): Promise<LoginResult | undefined> {
    if (result.ok) {
      attempt.succeed();
      return result;
    }
    if (NOT_GUESSES.has(result.reason)) attempt.release();
    else attempt.fail(result.reason);
    this.logger.warn({ event: "sftp.login.failed", username, ip: address, method: ctx.method, reason: result.reason }, "login failed");
    await new Promise((resolve) => setTimeout(resolve, this.options.failedLoginDelayMs ?? 500));
    ctx.reject(AUTH_METHODS);
    return undefined;
  }
}
