import type { AddressInfo } from "node:net";
import ssh2 from "ssh2";
import type { AuthContext, Connection, ServerConfig } from "ssh2";
import type { Logger } from "pino";
import type { DistrictService, DistrictView, LoginResult } from "../districts/district-service.ts";
import type { DeliveryService } from "../deliveries/delivery-service.ts";
import type { LocalStorage } from "../storage/local-storage.ts";
import type { HostKey } from "./host-keys.ts";
import { Jail } from "./jail.ts";
import { LoginThrottle } from "./login-throttle.ts";
import { listenError } from "../errors.ts";
import { SftpSession, type SessionLimits } from "./sftp-session.ts";

const { Server, utils } = ssh2;

export interface SftpServerOptions {
  host: string;
  port: number;
  hostKeys: readonly HostKey[];
  allowSshRsa: boolean;
  limits: SessionLimits;
  /** Wait before answering a failed login, to slow guessing. */
  failedLoginDelayMs?: number;
}

const BANNER = "Rosterdock SFTP";

/** The SSH/SFTP front end: authentication, then one jailed SftpSession per SFTP channel. */
export class SftpServer {
  private readonly server: InstanceType<typeof Server>;
  private readonly clients = new Set<Connection>();
  private readonly disposals = new Set<Promise<void>>();
  private readonly throttle = new LoginThrottle();

  constructor(
    private readonly options: SftpServerOptions,
    private readonly districts: DistrictService,
    private readonly deliveries: DeliveryService,
    private readonly storage: LocalStorage,
    private readonly logger: Logger,
  ) {
    this.server = new Server(this.serverConfig(), (client, info) => this.onConnection(client, info));
  }

  private serverConfig(): ServerConfig {
    // ssh2 always offers SHA-1 `ssh-rsa` for an RSA key, so turning it off means leaving RSA out.
    const keys = this.options.hostKeys.filter((k) => this.options.allowSshRsa || k.algorithm !== "ssh-rsa");
    const rsa = this.options.allowSshRsa ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [];
    return {
      hostKeys: keys.map((k) => k.privateKey),
      ident: "Rosterdock",
      // Protocol traces at log level trace: what a district's client negotiated and why it failed.
      debug: this.logger.isLevelEnabled("trace") ? (message: string) => this.logger.trace({ event: "ssh.debug" }, message) : undefined,
      banner: undefined,
      algorithms: {
        serverHostKey: ["ssh-ed25519", "ecdsa-sha2-nistp256", ...rsa] as never,
        kex: [
          "curve25519-sha256",
          "curve25519-sha256@libssh.org",
          "ecdh-sha2-nistp256",
          "ecdh-sha2-nistp384",
          "ecdh-sha2-nistp521",
          "diffie-hellman-group-exchange-sha256",
          "diffie-hellman-group14-sha256",
          "diffie-hellman-group16-sha512",
          ...(this.options.allowSshRsa ? ["diffie-hellman-group14-sha1"] : []),
        ] as never,
        cipher: [
          "aes128-gcm@openssh.com",
          "aes256-gcm@openssh.com",
          "chacha20-poly1305@openssh.com",
          "aes128-ctr",
          "aes192-ctr",
          "aes256-ctr",
        ] as never,
        hmac: ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"] as never,
      },
    };
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", (error: Error) => reject(listenError(error, "SFTP", this.options.host, this.options.port)));
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.removeAllListeners("error");
        this.server.on("error", (error: Error) => this.logger.error({ event: "sftp.server.error", err: error }, "SFTP server error"));
        resolve();
      });
    });
    const port = (this.server.address() as AddressInfo).port;
    this.logger.info({ event: "sftp.listening", host: this.options.host, port }, "SFTP server listening");
    return port;
  }

  /** Stops accepting connections and ends those open; open uploads become partial uploads. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const client of this.clients) client.end();
    await closed;
    await Promise.allSettled([...this.disposals]);
  }

  private onConnection(client: Connection, info: { ip: string; header: { identRaw: string } }): void {
    // ssh2 leaves Nagle on, which stalls SFTP's small acknowledgements (measured: 0.2-0.5x throughput).
    (client as Connection & { setNoDelay(on: boolean): void }).setNoDelay(true);
    this.clients.add(client);
    const address = info.ip;
    const clientVersion = info.header.identRaw;
    let district: DistrictView | undefined;
    const sessions = new Set<SftpSession>();

    client.on("authentication", (ctx) => {
      this.authenticate(ctx, address).then(
        (result) => {
          if (result === undefined) return;
          if (result.ok) {
            district = result.district;
            ctx.accept();
          }
        },
        (error: unknown) => {
          this.logger.error({ event: "sftp.login.error", err: error, ip: address }, "login check failed");
          ctx.reject();
        },
      );
    });

    client.on("ready", () => {
      if (!district) return client.end();
      const current = district;
      this.logger.info({ event: "sftp.login.succeeded", district: current.slug, ip: address, client: clientVersion }, "login succeeded");
      client.on("session", (acceptSession) => {
        const session = acceptSession();
        session.on("sftp", (acceptSftp) => {
          // Accepted synchronously: the client's first SFTP packet is already on its way.
          let home: string;
          try {
            home = this.storage.homeDir(current.id);
          } catch (error) {
            this.logger.error({ err: error }, "could not open the district's space");
            return client.end();
          }
          sessions.add(
            new SftpSession(
              acceptSftp(),
              new Jail(home),
              { districtId: current.id, districtSlug: current.slug, clientIp: address, clientVersion },
              this.storage,
              this.deliveries,
              this.options.limits,
              this.logger.child({ district: current.slug }),
            ),
          );
        });
        // Only the SFTP subsystem: no shell, no commands, no forwarding.
        session.on("exec", (_accept, reject) => reject());
        session.on("shell", (_accept, reject) => reject());
        session.on("pty", (_accept, reject) => reject?.());
        session.on("env", (_accept, reject) => reject?.());
      });
    });

    client.on("error", (error: Error) => this.logger.debug({ event: "sftp.connection.error", ip: address, err: error.message }, "connection error"));
    client.on("close", () => {
      this.clients.delete(client);
      for (const session of sessions) {
        const disposal = session.dispose().finally(() => this.disposals.delete(disposal));
        this.disposals.add(disposal);
      }
    });
  }

  /** Resolves to the login's result, or undefined when the context was answered some other way. */
  private async authenticate(ctx: AuthContext, address: string): Promise<LoginResult | undefined> {
    const username = ctx.username;
    const methods = ["password", "publickey", "keyboard-interactive"] as const;
    if (ctx.method !== "none" && this.throttle.isBlocked(address)) {
      return this.finish(ctx, username, address, { ok: false, reason: "too_many_failures" });
    }
    switch (ctx.method) {
      case "password":
        return this.finish(ctx, username, address, await this.districts.loginWithPassword(username, ctx.password, address));
      case "keyboard-interactive": {
        const answers = await new Promise<string[]>((resolve) => ctx.prompt([{ prompt: "Password: ", echo: false }], BANNER, resolve));
        return this.finish(ctx, username, address, await this.districts.loginWithPassword(username, answers[0] ?? "", address));
      }
      case "publickey": {
        const registered = await this.districts.publicKeys(username);
        const match = registered?.keys.find((text) => {
          const parsed = utils.parseKey(text);
          return !(parsed instanceof Error) && parsed.getPublicSSH().equals(ctx.key.data);
        });
        if (!registered || !match) {
          ctx.reject([...methods]);
          return undefined;
        }
        if (!ctx.signature) {
          // The client asks whether this key would do; it signs next.
          ctx.accept();
          return undefined;
        }
        const parsed = utils.parseKey(match);
        const valid = !(parsed instanceof Error) && ctx.blob !== undefined && parsed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
        const result: LoginResult = valid ? this.districts.admit(registered.district, address) : { ok: false, reason: "bad_key" };
        return this.finish(ctx, username, address, result);
      }
      default:
        ctx.reject([...methods]);
        return undefined;
    }
  }

  private async finish(ctx: AuthContext, username: string, address: string, result: LoginResult): Promise<LoginResult | undefined> {
    if (result.ok) {
      this.throttle.recordSuccess(address);
      return result;
    }
    if (result.reason !== "too_many_failures") this.throttle.recordFailure(address);
    this.logger.warn({ event: "sftp.login.failed", username, ip: address, method: ctx.method, reason: result.reason }, "login failed");
    await new Promise((resolve) => setTimeout(resolve, this.options.failedLoginDelayMs ?? 500));
    ctx.reject(["password", "publickey", "keyboard-interactive"]);
    return undefined;
  }
}
