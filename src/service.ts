import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import { systemClock, type Clock } from "./clock.ts";
import { openDatabase, type RosterDatabase } from "./db/open-database.ts";
import { AuditLog } from "./audit/audit-log.ts";
import { DistrictService } from "./districts/district-service.ts";
import { HandoffService } from "./handoffs/handoff-service.ts";
import { DeliveryService } from "./deliveries/delivery-service.ts";
import { IntakeJournal } from "./deliveries/intake-journal.ts";
import { JobQueue } from "./jobs/job-queue.ts";
import { Worker, type JobHandler } from "./jobs/worker.ts";
import { LocalStorage, type CutUpload } from "./storage/local-storage.ts";
import { PostgresStorage } from "./storage/postgres-storage.ts";
import { newNodeId } from "./jobs/node-id.ts";
import { FailureLedger } from "./security/failure-ledger.ts";
import type { HostKey } from "./sftp/host-keys.ts";
import { createSyncService, type SyncService } from "./sync/sync-service.ts";
import { MAX_SYNC_ATTEMPTS } from "./sync/max-sync-attempts.ts";
import { JobInterrupted, SyncThread } from "./jobs/sync-thread.ts";
import { TokenService } from "./tokens/token-service.ts";
import { ClientService } from "./tokens/client-service.ts";
import { WebhookService, WEBHOOK_MAX_ATTEMPTS } from "./webhooks/webhook-service.ts";
import { OperatorService } from "./operators/operator-service.ts";
import { ServerSettings, reachableUrl } from "./settings/server-settings.ts";
import { GuideService } from "./guide/guide-service.ts";
import { createLogger } from "./logger.ts";
import { HashPool } from "./security/hash-pool.ts";
import { BanStore } from "./security/ban-store.ts";
import { Defender } from "./security/defender.ts";
import { listenError } from "./errors.ts";
import { watchEventLoopLag } from "./watch-event-loop-lag.ts";

/** Everything Rosterdock is made of, wired once: config → database → storage → services. */
export interface Rosterdock {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly database: RosterDatabase;
  /** This process's name among the nodes sharing the database (jobs/node-id.ts). */
  readonly nodeId: string;
  /** Closed uploads: the local archive (SQLite), or the database (PostgreSQL, several nodes). */
  readonly storage: LocalStorage;
  readonly audit: AuditLog;
  readonly districts: DistrictService;
  /** One-time links that hand districts their SFTP credentials. */
  readonly handoffs: HandoffService;
  readonly deliveries: DeliveryService;
  readonly jobs: JobQueue;
  readonly syncs: SyncService;
  readonly tokens: TokenService;
  readonly clients: ClientService;
  readonly webhooks: WebhookService;
  readonly settings: ServerSettings;
  /** The vendor's support staff who use the web console. */
  readonly operators: OperatorService;
  /** Where passwords, secrets and tokens are hashed: threads of their own behind a bounded queue. */
  readonly hasher: HashPool;
  /** Counts failed logins (SSH and HTTP) and keeps the bans. */
  readonly defender: Defender;
  /** Each district's PowerSchool setup guide (HTML, Markdown, PDF). */
  readonly guides: GuideService;
  hostKeys(): Promise<HostKey[]>;
  close(): Promise<void>;
}

export async function createRosterdock(config: Config, options: { logger?: Logger; clock?: Clock; nodeId?: string } = {}): Promise<Rosterdock> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const nodeId = options.nodeId ?? newNodeId();
  const database = await openDatabase(config);
  const { db } = database;
  const shared = database.dialect.sharedByNodes;
  const storage = shared ? new PostgresStorage(config.dataDir, db, clock, logger.child({ component: "storage" })) : new LocalStorage(config.dataDir);
  const audit = new AuditLog(db, clock);
  // Lanes are client addresses: those without recent failures are hashed first.
  let defender: Defender | undefined;
  const hasher = new HashPool(
    { threads: config.hashThreads, queueLimit: config.hashQueue, rank: (lane) => defender?.rank(lane) ?? 0 },
    logger.child({ component: "security" }),
  );
  const handoffs = new HandoffService(db, clock, audit, logger.child({ component: "handoff" }), config.handoffDays);
  const districts = new DistrictService(db, clock, audit, hasher, handoffs);
  const jobs = new JobQueue(db, clock, { nodeId, shared, leaseMs: config.jobLeaseSeconds * 1000 });
  // Where a sync holds the only write lock (SQLite), uploads are journaled first so that none waits for it.
  const journaling = database.dialect.syncsHoldTheWriteLock
    ? { journal: new IntakeJournal(join(config.dataDir, "intake-journal.sqlite")), writer: () => database.failFastWriter(), durable: () => database.durable() }
    : undefined;
  const deliveries = new DeliveryService(db, storage, jobs, clock, config.quietSeconds, logger, journaling);
  const tokens = new TokenService(db, clock, audit, hasher);
  const webhooks = new WebhookService(db, jobs, districts, clock, audit, logger.child({ component: "webhooks" }));
  const securityLogger = logger.child({ component: "security" });
  defender = new Defender(
    new BanStore(db, clock),
    {
      maxFailures: config.loginMaxFailures,
      maxAccounts: config.loginMaxAccounts,
      windowMs: config.loginWindowSeconds * 1000,
      banMs: config.banMinutes * 60_000,
      refreshMs: 5000,
      ...(shared ? { shared: new FailureLedger(db, clock, nodeId, config.loginWindowSeconds * 1000, config.databaseUrl) } : {}),
    },
    clock,
    audit,
    securityLogger,
    {
      // The first ban on a district's account (from any address) flags the district as under attack.
      onBan: async (ban, { accountAlreadyBanned }) => {
        if (ban.account === null || accountAlreadyBanned) return;
        const district = await districts.findByUsername(ban.account);
        if (!district) return;
        securityLogger.warn({ event: "district.under_attack", district: district.slug, ip: ban.address, bannedUntil: ban.bannedUntil }, "a district's account is under attack");
        await webhooks.emit("district.under_attack", district.id, { account: ban.account, address: ban.address, failures: ban.failures, bannedUntil: ban.bannedUntil });
      },
    },
  );
  const syncs = createSyncService({
    database,
    districts,
    storage,
    audit,
    clock,
    logger,
    dataDir: config.dataDir,
    databaseUrl: config.databaseUrl,
    options: {
      safeguards: {
        maxDeleteShare: config.holdDeletePercent / 100,
        minDeleteRows: config.holdDeleteMinRows,
        maxTouchShare: config.holdChangePercent / 100,
        minTouchRows: config.holdChangeMinRows,
      },
      digestRevisitLimit: config.digestRevisitLimit,
      tombstoneDays: config.tombstoneDays,
      onOutcome: (outcome, sql, now) =>
        webhooks.emitWithinEngine(sql, `sync.${outcome.status}`, outcome.districtId, { syncId: outcome.syncId, status: outcome.status, counts: outcome.counts }, now),
    },
  });
  let hostKeys: Promise<HostKey[]> | undefined;
  // ssh2 is loaded with them: commands that show no host key start without it.
  const loadHostKeys = () => (hostKeys ??= import("./sftp/host-keys.ts").then(({ ensureHostKeys }) => ensureHostKeys(db, clock)));
  const settings = new ServerSettings(db, clock);
  return {
    config,
    logger,
    clock,
    database,
    nodeId,
    storage,
    audit,
    districts,
    handoffs,
    deliveries,
    jobs,
    syncs,
    tokens,
    clients: new ClientService(db, tokens, districts, clock, audit, hasher),
    webhooks,
    settings,
    operators: new OperatorService(db, clock, audit, hasher),
    hasher,
    defender,
    guides: new GuideService({ config, districts, address: () => settings.address(config), hostKeys: loadHostKeys, clock }),
    hostKeys: loadHostKeys,
    close: async () => {
      await syncs.close();
      await deliveries.close();
      await defender.stop();
      await hasher.close();
      await database.close();
    },
  };
}

export interface RunningServer {
  readonly sftpPort: number;
  readonly httpPort: number;
  stop(): Promise<void>;
}

/** Records an upload the server was receiving when it stopped: a partial upload, holding its night like a refused one. */
async function recordCutUpload(rd: Rosterdock, cut: CutUpload): Promise<void> {
  try {
    await rd.deliveries.recordPartial({
      districtId: cut.districtId,
      path: cut.path ?? "/(name not recorded)",
      size: cut.size,
      clientIp: cut.clientIp ?? "",
      clientVersion: cut.clientVersion ?? "",
      startedAt: cut.startedAt ?? cut.lastWrittenAt,
      reason: "The server stopped during the transfer: the file was cut off and must be sent again.",
    });
  } catch (error) {
    rd.logger.error({ event: "storage.incoming.not_recorded", districtId: cut.districtId, path: cut.path, err: error }, "could not record an upload cut off by a crash; it is kept for the next start");
    throw error;
  }
}

/** How often the server deletes the sealed passwords of credentials links that expired unused. */
const HANDOFF_PURGE_MS = 5 * 60_000;

/** How often the server purges tombstones past `ROSTERDOCK_TOMBSTONE_DAYS` (each apply also purges its own district's). */
export const TOMBSTONE_PURGE_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Purges tombstones on the sync thread (after any sync under way, never beside one) every hour
 * from start: a district that stops sending nights still sees its tombstones go on time.
 */
function purgeTombstonesHourly(syncThread: SyncThread, logger: Logger): NodeJS.Timeout {
  const purge = () =>
    syncThread.purgeTombstones().catch((error: unknown) => {
      if (!(error instanceof JobInterrupted)) logger.error({ event: "roster.tombstones.purge_failed", err: error }, "purging tombstones failed");
    });
  const timer = setInterval(purge, TOMBSTONE_PURGE_INTERVAL_MS);
  timer.unref();
  return timer;
}

/** `rosterdock serve`: SFTP, HTTP and the background worker in one process. */
export async function startServer(rd: Rosterdock): Promise<RunningServer> {
  // Loaded here, not at the top: CLI commands (ingest above all) need neither, nor their memory.
  const { SftpServer } = await import("./sftp/sftp-server.ts");
  const { buildHttpApp } = await import("./api/http-app.ts");
  const { config, logger } = rd;
  const startedAt = new Date();
  logger.info({ event: "node.identity", node: rd.nodeId, database: rd.database.dialect.name, sharedByNodes: rd.database.dialect.sharedByNodes }, "this node's id");
  // Before any session can start, and before the worker can close the delivery they belong to.
  const cleared = await rd.storage.clearIncoming(startedAt, (cut) => recordCutUpload(rd, cut));
  if (cleared > 0) logger.warn({ event: "storage.incoming.cleared", count: cleared }, "removed uploads left unfinished by an earlier crash");
  const sftp = new SftpServer(
    {
      host: config.host,
      port: config.sftpPort,
      hostKeys: await rd.hostKeys(),
      allowSshRsa: config.allowSshRsa,
      limits: {
        maxUploadBytes: config.maxUploadBytes,
        maxFilesPerDistrict: config.maxFilesPerDistrict,
        maxOutstandingWriteBytes: config.maxOutstandingWriteBytes,
        maxFoldersPerDistrict: config.maxFoldersPerDistrict,
        maxFolderDepth: config.maxFolderDepth,
        maxNameBytes: config.maxNameBytes,
        maxPathBytes: config.maxPathBytes,
        archiveQuotaBytes: config.archiveQuotaBytes,
      },
      connectionLimits: {
        loginTimeoutSeconds: config.sftpLoginTimeoutSeconds,
        idleTimeoutSeconds: config.sftpIdleTimeoutSeconds,
        maxUnauthenticatedPerAddress: config.sftpMaxUnauthenticatedPerAddress,
        maxUnauthenticated: config.sftpMaxUnauthenticated,
        maxConnectionsPerDistrict: config.sftpMaxConnectionsPerDistrict,
        maxConnectionsPerAddress: config.sftpMaxConnectionsPerAddress,
        maxConnections: config.sftpMaxConnections,
        maxChannelsPerConnection: config.sftpMaxChannelsPerConnection,
      },
      descriptorReserve: config.descriptorReserve,
      proxyProtocol: config.sftpProxyProtocol ? { trustedProxies: config.sftpTrustedProxies } : undefined,
    },
    rd.districts,
    rd.deliveries,
    rd.storage,
    logger.child({ component: "sftp" }),
    rd.defender,
  );
  // Bans are read before the first connection is accepted, and then every few seconds.
  await rd.defender.start();
  // A district disabled or given a new password here loses its open sessions at once; the SFTP
  // server also notices changes made by the CLI or another server within seconds.
  const stopClosingSessions = rd.districts.onAccessRevoked((districtId, why) => sftp.closeDistrictSessions(districtId, why));
  let sftpListening = false;
  const sftpPort = await sftp.listen();
  sftpListening = true;
  const syncThread = new SyncThread(config, logger.child({ component: "sync" }));
  const http = await buildHttpApp(rd, { sftpListening: () => sftpListening, sftpReport: () => sftp.report(), syncRunner: syncThread });
  try {
    await http.listen({ host: config.host, port: config.httpPort });
  } catch (error) {
    await sftp.close();
    throw listenError(error, "HTTP", config.host, config.httpPort);
  }
  const address = http.server.address();
  const httpPort = typeof address === "object" && address ? address.port : config.httpPort;
  logger.info({ event: "http.listening", host: config.host, port: httpPort }, "HTTP server listening");
  // CLI commands in other shells tell districts what this server really uses, bound ports included.
  await rd.settings.publishAddress({ sftpHost: config.publicHost, sftpPort: config.publicSftpPort ?? sftpPort, publicUrl: reachableUrl(config.publicUrl, httpPort) });

  const handlers = new Map<string, JobHandler>([
    ["deliver-webhook", { run: (job) => rd.webhooks.deliver(job), maxAttempts: WEBHOOK_MAX_ATTEMPTS }],
    ["process-sync", { run: (job) => syncThread.run(job), maxAttempts: MAX_SYNC_ATTEMPTS }],
  ]);
  // Looks at least a few times per quiet period, so a short one (tests) closes on time.
  const tickMs = Math.min(1000, Math.max(10, (config.quietSeconds * 1000) / 4));
  const worker = new Worker(rd.deliveries, rd.jobs, handlers, logger.child({ component: "worker" }), tickMs);
  // Before the worker's first close: files a crash left in view after their delivery closed.
  const removed = await rd.deliveries.removeReceivedEverywhere();
  if (removed > 0) logger.info({ event: "storage.received.removed", count: removed }, "took files received before a restart out of the districts' folders");
  await worker.start();
  // Expired links' sealed passwords are deleted within minutes, not only when someone visits one.
  const purgeHandoffs = () =>
    rd.handoffs.purgeExpired().catch((error: unknown) => logger.warn({ event: "handoff.purge_failed", err: error }, "could not delete expired credentials links' sealed passwords; tried again later"));
  await purgeHandoffs();
  const handoffPurge = setInterval(() => void purgeHandoffs(), HANDOFF_PURGE_MS);
  handoffPurge.unref();

  const purges = purgeTombstonesHourly(syncThread, logger);
  // Started once the modules are loaded and compiled: that one-off pause at start is no stall.
  const lag = watchEventLoopLag(logger);

  return {
    sftpPort,
    httpPort,
    async stop() {
      sftpListening = false;
      stopClosingSessions();
      clearInterval(handoffPurge);
      // A sync in progress is cut short (rolled back, requeued at start) rather than waited for.
      clearInterval(purges);
      await syncThread.close();
      await worker.stop();
      await Promise.allSettled([sftp.close(), http.close()]);
      lag.stop();
    },
  };
}
