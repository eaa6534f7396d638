import { hostname } from "node:os";
import { resolve } from "node:path";
import { RosterdockError, isRosterdockError } from "./errors.ts";
import { parseCidr } from "./districts/ip-allow-list.ts";

/** The whole server configuration: read once from the environment, validated, then frozen. */
export interface Config {
  readonly dataDir: string;
  readonly host: string;
  readonly sftpPort: number;
  readonly httpPort: number;
  readonly publicHost: string;
  readonly publicSftpPort: number | undefined;
  readonly publicUrl: string;
  readonly quietSeconds: number;
  readonly databaseUrl: string | undefined;
  readonly jobLeaseSeconds: number;
  readonly allowSshRsa: boolean;
  readonly logLevel: string;
  readonly loginMaxFailures: number;
  readonly loginMaxAccounts: number;
  readonly loginWindowSeconds: number;
  readonly banMinutes: number;
  readonly authRatePerMinute: number;
  readonly hashThreads: number;
  readonly hashQueue: number;
  readonly maxUploadBytes: number;
  readonly maxFilesPerDistrict: number;
  readonly maxOutstandingWriteBytes: number;
  readonly maxFoldersPerDistrict: number;
  readonly maxFolderDepth: number;
  readonly maxNameBytes: number;
  readonly maxPathBytes: number;
  readonly archiveQuotaBytes: number;
  readonly holdDeletePercent: number;
  readonly holdDeleteMinRows: number;
  readonly holdChangePercent: number;
  readonly holdChangeMinRows: number;
  readonly digestRevisitLimit: number;
  readonly tombstoneDays: number;
  readonly sftpLoginTimeoutSeconds: number;
  readonly sftpIdleTimeoutSeconds: number;
  readonly sftpMaxUnauthenticatedPerAddress: number;
  readonly sftpMaxUnauthenticated: number;
  readonly sftpMaxConnectionsPerDistrict: number;
  readonly sftpMaxConnectionsPerAddress: number;
  readonly sftpMaxConnections: number;
  readonly sftpMaxChannelsPerConnection: number;
  readonly sftpProxyProtocol: boolean;
  readonly sftpTrustedProxies: readonly string[];
  readonly descriptorReserve: number;
  readonly handoffDays: number;
  readonly chromiumPath: string;
}

interface Setting<K extends keyof Config> {
  key: K;
  env: string;
  description: string;
  defaultText: string;
  /** Settings this one's default is derived from: when one of them is invalid, only that one is reported. */
  derivesFrom?: ReadonlyArray<keyof Config>;
  parse(raw: string | undefined, partial: Partial<Config>): Config[K];
}

class SettingError extends Error {}

function wholeNumber(min: number, max: number, fallback: number) {
  return (raw: string | undefined): number => {
    if (raw === undefined || raw.trim() === "") return fallback;
    if (!/^\d+$/.test(raw.trim())) throw new SettingError(`must be a whole number, got "${raw}"`);
    const value = Number(raw.trim());
    if (value < min || value > max) throw new SettingError(`must be between ${min} and ${max}, got ${value}`);
    return value;
  };
}

/** Seconds, fractions allowed ("0.2"): tests close deliveries within a fraction of a second. */
function seconds(min: number, max: number, fallback: number) {
  return (raw: string | undefined): number => {
    if (raw === undefined || raw.trim() === "") return fallback;
    if (!/^\d+(\.\d+)?$/.test(raw.trim())) throw new SettingError(`must be a number of seconds, got "${raw}"`);
    const value = Number(raw.trim());
    if (value < min || value > max) throw new SettingError(`must be between ${min} and ${max}, got ${value}`);
    return value;
  };
}

function port(fallback: number) {
  return wholeNumber(0, 65535, fallback);
}

function boolean(fallback: boolean) {
  return (raw: string | undefined): boolean => {
    if (raw === undefined || raw.trim() === "") return fallback;
    const value = raw.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(value)) return true;
    if (["0", "false", "no", "off"].includes(value)) return false;
    throw new SettingError(`must be true or false, got "${raw}"`);
  };
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** Ordered: later settings may derive their default from earlier ones. Also drives the README table. */
export const SETTINGS: ReadonlyArray<Setting<keyof Config>> = [
  {
    key: "dataDir",
    env: "ROSTERDOCK_DATA_DIR",
    description: "Folder for the SQLite database and spooled uploads.",
    defaultText: "`./data`",
    parse: (raw) => resolve(raw?.trim() || "./data"),
  },
  {
    key: "host",
    env: "ROSTERDOCK_HOST",
    description: "Address the SFTP and HTTP servers bind to.",
    defaultText: "`0.0.0.0`",
    parse: (raw) => raw?.trim() || "0.0.0.0",
  },
  {
    key: "sftpPort",
    env: "ROSTERDOCK_SFTP_PORT",
    description: "SFTP port districts connect to (0 picks a free port).",
    defaultText: "`2222`",
    parse: port(2222),
  },
  {
    key: "httpPort",
    env: "ROSTERDOCK_HTTP_PORT",
    description: "HTTP port of the health endpoint, console and APIs (0 picks a free port).",
    defaultText: "`8080`",
    parse: port(8080),
  },
  {
    key: "publicHost",
    env: "ROSTERDOCK_PUBLIC_HOST",
    description: "Host name districts are told to connect to.",
    defaultText: "the machine's host name",
    parse: (raw) => {
      const value = raw?.trim() || hostname();
      if (!/^[A-Za-z0-9.:\-[\]]+$/.test(value)) throw new SettingError(`must be a host name or IP address, got "${raw}"`);
      return value;
    },
  },
  {
    key: "publicSftpPort",
    env: "ROSTERDOCK_PUBLIC_SFTP_PORT",
    description: "SFTP port districts are told to connect to, when it is not the one this server binds: a load balancer's (docs/deployment.md).",
    defaultText: "the bound SFTP port",
    parse: (raw) => (raw === undefined || raw.trim() === "" ? undefined : wholeNumber(1, 65535, 0)(raw)),
  },
  {
    key: "publicUrl",
    env: "ROSTERDOCK_PUBLIC_URL",
    description: "Base URL of the console and APIs as users reach it.",
    defaultText: "`http://PUBLIC_HOST:HTTP_PORT`",
    derivesFrom: ["publicHost", "httpPort"],
    parse: (raw, partial) => {
      const value = raw?.trim() || `http://${partial.publicHost}:${partial.httpPort}`;
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        throw new SettingError(`must be an http(s) URL, got "${raw}"`);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new SettingError(`must be an http(s) URL, got "${raw}"`);
      return url.toString().replace(/\/$/, "");
    },
  },
  {
    key: "quietSeconds",
    env: "ROSTERDOCK_QUIET_SECONDS",
    description: "A delivery closes after this many seconds without a new upload (fractions allowed); its files then leave the district's folder.",
    defaultText: "`300`",
    parse: seconds(0.05, 7 * 24 * 3600, 300),
  },
  {
    key: "databaseUrl",
    env: "ROSTERDOCK_DATABASE_URL",
    description: "PostgreSQL URL (`postgres://…`); unset keeps SQLite in the data folder. Every feature works on PostgreSQL: intake (closed uploads stored in the database), syncs (staged through COPY, applied in one transaction), the OneRoster API, the change feed and the console, and several nodes may share the database (docs/deployment.md). OneRoster sorts text byte by byte, as on SQLite: a database created with the C locale (`CREATE DATABASE … LOCALE 'C' TEMPLATE template0`) reads sorted pages off its indexes, another sorts them.",
    defaultText: "unset (SQLite)",
    parse: (raw) => {
      const value = raw?.trim();
      if (!value) return undefined;
      if (!/^postgres(ql)?:\/\//.test(value)) throw new SettingError("must start with postgres:// or postgresql://");
      return value;
    },
  },
  {
    key: "jobLeaseSeconds",
    env: "ROSTERDOCK_JOB_LEASE_SECONDS",
    description:
      "PostgreSQL with several nodes: a running job (a sync, a webhook) is its node's for this long, renewed every third of it while the node lives; once a node stops renewing (it died), another node takes the job over, with the same sync id.",
    defaultText: "`30`",
    parse: seconds(0.3, 3600, 30),
  },
  {
    key: "allowSshRsa",
    env: "ROSTERDOCK_ALLOW_SSH_RSA",
    description: "Offer the RSA host key, signing with SHA-1 `ssh-rsa` as old Java SSH clients (PowerSchool) need; `false` leaves RSA and the SHA-1 key exchange `diffie-hellman-group14-sha1` out (Ed25519, ECDSA and the SHA-2 key exchanges remain).",
    defaultText: "`true`",
    parse: boolean(true),
  },
  {
    key: "logLevel",
    env: "ROSTERDOCK_LOG_LEVEL",
    description: "Log level: fatal, error, warn, info, debug, trace or silent.",
    defaultText: "`info`",
    parse: (raw) => {
      const value = raw?.trim().toLowerCase() || "info";
      if (!LOG_LEVELS.includes(value)) throw new SettingError(`must be one of ${LOG_LEVELS.join(", ")}, got "${raw}"`);
      return value;
    },
  },
  {
    key: "loginMaxFailures",
    env: "ROSTERDOCK_LOGIN_MAX_FAILURES",
    description: "Failed logins at one account from one address (SFTP, OAuth client or API token) within the window that ban that address for that account; other accounts behind the address are unaffected. Checks under way count, so parallel tries cannot pass it.",
    defaultText: "`10`",
    parse: wholeNumber(1, 10_000, 10),
  },
  {
    key: "loginMaxAccounts",
    env: "ROSTERDOCK_LOGIN_MAX_ACCOUNTS",
    description: "Accounts (known or not) one address may fail at within the window; at this many, or at `MAX_FAILURES` × this many failures in all (protocol errors included), the address is banned for every account and its connections are dropped at once.",
    defaultText: "`5`",
    parse: wholeNumber(1, 10_000, 5),
  },
  {
    key: "loginWindowSeconds",
    env: "ROSTERDOCK_LOGIN_WINDOW_SECONDS",
    description: "How long a failed login counts against its address.",
    defaultText: "`600`",
    parse: wholeNumber(1, 7 * 24 * 3600, 600),
  },
  {
    key: "banMinutes",
    env: "ROSTERDOCK_BAN_MINUTES",
    description: "Length of a first ban; each repeat within a day of the last one doubles it, up to a day. `rosterdock bans clear` lifts bans.",
    defaultText: "`30`",
    parse: wholeNumber(1, 24 * 60, 30),
  },
  {
    key: "authRatePerMinute",
    env: "ROSTERDOCK_AUTH_RATE_PER_MINUTE",
    description: "Per address, `POST /oauth/token` requests, failed bearer-token checks and visits to unknown credentials links allowed per minute (answered 429 past it).",
    defaultText: "`30`",
    parse: wholeNumber(1, 1_000_000, 30),
  },
  {
    key: "hashThreads",
    env: "ROSTERDOCK_HASH_THREADS",
    description: "Threads that hash and check passwords, client secrets and tokens (scrypt), apart from the file system's and at a lower CPU priority.",
    defaultText: "`1`",
    parse: wholeNumber(1, 64, 1),
  },
  {
    key: "hashQueue",
    env: "ROSTERDOCK_HASH_QUEUE",
    description: "Credential checks that may wait for a hashing thread; past it new ones are refused at once (SFTP login refused, HTTP 503), the most insistent address first.",
    defaultText: "`64`",
    parse: wholeNumber(1, 100_000, 64),
  },
  {
    key: "maxUploadBytes",
    env: "ROSTERDOCK_MAX_UPLOAD_BYTES",
    description: "Largest file a district may upload.",
    defaultText: "`4294967296` (4 GiB)",
    parse: wholeNumber(1, Number.MAX_SAFE_INTEGER, 4 * 1024 ** 3),
  },
  {
    key: "maxFilesPerDistrict",
    env: "ROSTERDOCK_MAX_FILES_PER_DISTRICT",
    description: "Most files waiting in a district's SFTP folder at once; further uploads are refused. Received files leave the folder when their delivery closes (the archive does not count).",
    defaultText: "`1000`",
    parse: wholeNumber(1, 1_000_000, 1000),
  },
  {
    key: "maxOutstandingWriteBytes",
    env: "ROSTERDOCK_MAX_OUTSTANDING_WRITE_BYTES",
    description: "Per SFTP session, bytes of received upload data held before it is written to disk (the server writes before it reads more).",
    defaultText: "`8388608` (8 MiB)",
    parse: wholeNumber(64 * 1024, 1024 ** 3, 8 * 1024 * 1024),
  },
  {
    key: "maxFoldersPerDistrict",
    env: "ROSTERDOCK_MAX_FOLDERS_PER_DISTRICT",
    description: "Most folders a district may create in its SFTP space (`0`: none, files go to `/`); further `mkdir`s are refused.",
    defaultText: "`100`",
    parse: wholeNumber(0, 100_000, 100),
  },
  {
    key: "maxFolderDepth",
    env: "ROSTERDOCK_MAX_FOLDER_DEPTH",
    description: "Deepest folder a district may create (`/a/b` is 2 deep).",
    defaultText: "`8`",
    parse: wholeNumber(0, 32, 8),
  },
  {
    key: "maxNameBytes",
    env: "ROSTERDOCK_MAX_NAME_BYTES",
    description: "Longest file or folder name, in UTF-8 bytes; longer names are refused with a message saying so.",
    defaultText: "`255`",
    parse: wholeNumber(1, 255, 255),
  },
  {
    key: "maxPathBytes",
    env: "ROSTERDOCK_MAX_PATH_BYTES",
    description: "Longest path (`/folder/name.csv`), in UTF-8 bytes.",
    defaultText: "`1024`",
    parse: wholeNumber(1, 4096, 1024),
  },
  {
    key: "archiveQuotaBytes",
    env: "ROSTERDOCK_ARCHIVE_QUOTA_BYTES",
    description:
      "Most bytes a district's archive (`districts/<id>/archive`, every file ever received) may hold; past it the district's uploads are refused and `district show` flags it until an operator prunes old nights.",
    defaultText: "`53687091200` (50 GiB)",
    parse: wholeNumber(1, Number.MAX_SAFE_INTEGER, 50 * 1024 ** 3),
  },
  {
    key: "holdDeletePercent",
    env: "ROSTERDOCK_HOLD_DELETE_PERCENT",
    description: "Hold a sync that would delete more than this percentage of an entity's live rows… (per district: `rosterdock district safeguards`)",
    defaultText: "`10`",
    parse: wholeNumber(0, 100, 10),
  },
  {
    key: "holdDeleteMinRows",
    env: "ROSTERDOCK_HOLD_DELETE_MIN_ROWS",
    description: "…and at least this many rows.",
    defaultText: "`20`",
    parse: wholeNumber(0, Number.MAX_SAFE_INTEGER, 20),
  },
  {
    key: "holdChangePercent",
    env: "ROSTERDOCK_HOLD_CHANGE_PERCENT",
    description: "Hold a sync that would update or delete more than this percentage of an entity's live rows…",
    defaultText: "`50`",
    parse: wholeNumber(0, 100, 50),
  },
  {
    key: "holdChangeMinRows",
    env: "ROSTERDOCK_HOLD_CHANGE_MIN_ROWS",
    description: "…and at least this many rows. A district's first sync is never held for size.",
    defaultText: "`20`",
    parse: wholeNumber(0, Number.MAX_SAFE_INTEGER, 20),
  },
  {
    key: "digestRevisitLimit",
    env: "ROSTERDOCK_DIGEST_REVISIT_LIMIT",
    description:
      "A second night read against line digests looks again at last night's lines that did not come back, and (in memory) at unchanged lines that became duplicates or lost their school, class or student; above this many of either it reads the delivery in full instead (same result, bounded memory and time).",
    defaultText: "`200000`",
    parse: wholeNumber(1, 10_000_000, 200_000),
  },
  {
    key: "tombstoneDays",
    env: "ROSTERDOCK_TOMBSTONE_DAYS",
    description:
      "Records a sync or a rollback removed stay readable through OneRoster for this many days, with `status` `tobedeleted`, so that clients reading `dateLastModified>…` learn of them; then they are purged (at the district's next apply and by the server within the hour). See docs/oneroster.md.",
    defaultText: "`30`",
    parse: wholeNumber(1, 3650, 30),
  },
  {
    key: "sftpLoginTimeoutSeconds",
    env: "ROSTERDOCK_SFTP_LOGIN_TIMEOUT_SECONDS",
    description: "An SFTP connection must send its SSH identification, agree keys and log in within this many seconds, or it is closed (`sftp.connection.timed_out`, `stage` `login`).",
    defaultText: "`30`",
    parse: wholeNumber(1, 3600, 30),
  },
  {
    key: "sftpIdleTimeoutSeconds",
    env: "ROSTERDOCK_SFTP_IDLE_TIMEOUT_SECONDS",
    description: "A logged-in SFTP connection that sends no SFTP request for this many seconds is closed (`stage` `idle`); SSH keepalives do not count.",
    defaultText: "`600` (10 minutes)",
    parse: wholeNumber(1, 7 * 24 * 3600, 600),
  },
  {
    key: "sftpMaxUnauthenticatedPerAddress",
    env: "ROSTERDOCK_SFTP_MAX_UNAUTHENTICATED_PER_ADDRESS",
    description: "Most SFTP connections from one address (IPv6: one /64) not yet logged in; more are closed at once, before any key exchange (`sftp.connection.refused`).",
    defaultText: "`20`",
    parse: wholeNumber(1, 1_000_000, 20),
  },
  {
    key: "sftpMaxUnauthenticated",
    env: "ROSTERDOCK_SFTP_MAX_UNAUTHENTICATED",
    description: "Most SFTP connections not yet logged in, from all addresses together.",
    defaultText: "`500`",
    parse: wholeNumber(1, 1_000_000, 500),
  },
  {
    key: "sftpMaxConnectionsPerDistrict",
    env: "ROSTERDOCK_SFTP_MAX_CONNECTIONS_PER_DISTRICT",
    description: "Most logged-in SFTP connections of one district at once; a further login sees its session channel refused (\"resource shortage\").",
    defaultText: "`20`",
    parse: wholeNumber(1, 1_000_000, 20),
  },
  {
    key: "sftpMaxConnectionsPerAddress",
    env: "ROSTERDOCK_SFTP_MAX_CONNECTIONS_PER_ADDRESS",
    description: "Most logged-in SFTP connections from one address (IPv6: one /64), all districts together: high, since a vendor sends many districts' exports from a few addresses.",
    defaultText: "`200`",
    parse: wholeNumber(1, 1_000_000, 200),
  },
  {
    key: "sftpMaxConnections",
    env: "ROSTERDOCK_SFTP_MAX_CONNECTIONS",
    description: "Most logged-in SFTP connections in all.",
    defaultText: "`1000`",
    parse: wholeNumber(1, 1_000_000, 1000),
  },
  {
    key: "sftpMaxChannelsPerConnection",
    env: "ROSTERDOCK_SFTP_MAX_CHANNELS_PER_CONNECTION",
    description: "Most SFTP sessions (SSH session channels) open on one connection; each may hold 64 open files.",
    defaultText: "`4`",
    parse: wholeNumber(1, 1000, 4),
  },
  {
    key: "sftpProxyProtocol",
    env: "ROSTERDOCK_SFTP_PROXY_PROTOCOL",
    description:
      "Behind a TCP load balancer (HAProxy `send-proxy-v2`): every SFTP connection must begin with a PROXY protocol v1 or v2 header from a trusted proxy, and allow-lists, bans, connection caps and logs then see the client's address in it. A connection without one, or from another address, is refused (`sftp.handshake_failed`). See docs/deployment.md.",
    defaultText: "`false`",
    parse: boolean(false),
  },
  {
    key: "sftpTrustedProxies",
    env: "ROSTERDOCK_SFTP_TRUSTED_PROXIES",
    description: "Comma-separated addresses or CIDR ranges of the proxies allowed to send PROXY headers (e.g. `10.0.0.5,10.0.1.0/28`); required when `ROSTERDOCK_SFTP_PROXY_PROTOCOL` is true.",
    defaultText: "none",
    derivesFrom: ["sftpProxyProtocol"],
    parse: (raw, partial) => {
      const items = (raw ?? "").split(",").map((item) => item.trim()).filter((item) => item !== "");
      const list = items.map((item) => {
        try {
          return parseCidr(item);
        } catch (error) {
          if (isRosterdockError(error)) throw new SettingError(`must list IP addresses or CIDR ranges, got "${item}"`);
          throw error;
        }
      });
      if (partial.sftpProxyProtocol && list.length === 0) throw new SettingError("must name the proxies' addresses when ROSTERDOCK_SFTP_PROXY_PROTOCOL is true");
      return Object.freeze(list);
    },
  },
  {
    key: "descriptorReserve",
    env: "ROSTERDOCK_DESCRIPTOR_RESERVE",
    description:
      "File descriptors kept for HTTP, the database and syncs: when fewer than this many remain below the process's limit (raised to the hard limit by `bin/rosterdock`), new SFTP connections are refused, and below half of it, new SFTP file opens (Linux).",
    defaultText: "`256`",
    parse: wholeNumber(16, 1_000_000, 256),
  },
  {
    key: "handoffDays",
    env: "ROSTERDOCK_HANDOFF_DAYS",
    description:
      "Days a one-time credentials link (`credentialsLink` of `district create`, `rotate-password` and `new-link`) stays usable; after that it shows nothing and its sealed password is deleted.",
    defaultText: "`7`",
    parse: wholeNumber(1, 90, 7),
  },
  {
    key: "chromiumPath",
    env: "ROSTERDOCK_CHROMIUM_PATH",
    description: "Chromium that prints setup guides as PDF (`rosterdock guide --format pdf`, Debian package `chromium`); never downloaded.",
    defaultText: "`/usr/bin/chromium`",
    parse: (raw) => {
      const value = raw?.trim() || "/usr/bin/chromium";
      if (!value.startsWith("/")) throw new SettingError(`must be an absolute path, got "${raw}"`);
      return value;
    },
  },
];

/** Reads every setting, reporting all bad values at once, and returns a frozen Config. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const partial: Partial<Record<keyof Config, unknown>> = {};
  const problems: string[] = [];
  const invalid = new Set<keyof Config>();
  for (const setting of SETTINGS) {
    const raw = env[setting.env];
    // A default built from an invalid value would be a second, misleading error about a variable nobody set.
    if ((raw === undefined || raw.trim() === "") && setting.derivesFrom?.some((key) => invalid.has(key))) continue;
    try {
      partial[setting.key] = setting.parse(raw, partial as Partial<Config>);
    } catch (error) {
      if (!(error instanceof SettingError)) throw error;
      invalid.add(setting.key);
      problems.push(`${setting.env} ${error.message}`);
    }
  }
  if (problems.length > 0) {
    throw new RosterdockError("ERR_CONFIG_INVALID", `Invalid configuration:\n  ${problems.join("\n  ")}`, { problems });
  }
  return Object.freeze(partial as Config);
}

/** The configuration table of the README, derived from SETTINGS. */
export function renderConfigurationTable(): string {
  const rows = SETTINGS.map((s) => `| \`${s.env}\` | ${s.defaultText} | ${s.description} |`);
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}
