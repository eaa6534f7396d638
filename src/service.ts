import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "./config.ts";
import { systemClock, type Clock } from "./clock.ts";
import { openDatabase, type RosterDatabase } from "./db/open-database.ts";
import { AuditLog } from "./audit/audit-log.ts";
import { DistrictService } from "./districts/district-service.ts";
import { DeliveryService } from "./deliveries/delivery-service.ts";
import { IntakeJournal } from "./deliveries/intake-journal.ts";
import { JobQueue } from "./jobs/job-queue.ts";
import { Worker, type JobHandler } from "./jobs/worker.ts";
import { LocalStorage } from "./storage/local-storage.ts";
import { ensureHostKeys, type HostKey } from "./sftp/host-keys.ts";
import { createSyncService, type SyncService } from "./sync/sync-service.ts";
import { MAX_SYNC_ATTEMPTS } from "./sync/process-sync.ts";
import { SyncThread } from "./jobs/sync-thread.ts";
import { TokenService } from "./tokens/token-service.ts";
import { ClientService } from "./tokens/client-service.ts";
import { WebhookService, WEBHOOK_MAX_ATTEMPTS } from "./webhooks/webhook-service.ts";
import { createLogger } from "./logger.ts";
import { listenError } from "./errors.ts";
import { watchEventLoopLag } from "./watch-event-loop-lag.ts";

/** Everything Rosterdock is made of, wired once: config → database → storage → services. */
export interface Rosterdock {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly database: RosterDatabase;
  readonly storage: LocalStorage;
  readonly audit: AuditLog;
  readonly districts: DistrictService;
  readonly deliveries: DeliveryService;
  readonly jobs: JobQueue;
  readonly syncs: SyncService;
  readonly tokens: TokenService;
  readonly clients: ClientService;
  readonly webhooks: WebhookService;
  hostKeys(): Promise<HostKey[]>;
  close(): Promise<void>;
}

export async function createRosterdock(config: Config, options: { logger?: Logger; clock?: Clock } = {}): Promise<Rosterdock> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const database = await openDatabase(config);
  const { db } = database;
  const storage = new LocalStorage(config.dataDir);
  const audit = new AuditLog(db, clock);
  const districts = new DistrictService(db, clock, audit);
  const jobs = new JobQueue(db, clock);
  // Where a sync holds the only write lock (SQLite), uploads are journaled first so that none waits for it.
  const journaling = database.dialect.syncsHoldTheWriteLock
    ? { journal: new IntakeJournal(join(config.dataDir, "intake-journal.sqlite")), writer: () => database.failFastWriter(), durable: () => database.durable() }
    : undefined;
  const deliveries = new DeliveryService(db, storage, jobs, clock, config.quietSeconds, logger, journaling);
  const tokens = new TokenService(db, clock, audit);
  const webhooks = new WebhookService(db, jobs, districts, clock, audit, logger.child({ component: "webhooks" }));
  const syncs = createSyncService({
    database,
    districts,
    storage,
    audit,
    clock,
    logger,
    dataDir: config.dataDir,
    options: {
      safeguards: {
        maxDeleteShare: config.holdDeletePercent / 100,
        minDeleteRows: config.holdDeleteMinRows,
        maxTouchShare: config.holdChangePercent / 100,
        minTouchRows: config.holdChangeMinRows,
      },
      digestRevisitLimit: config.digestRevisitLimit,
      onOutcome: (outcome, sqlite, now) =>
        webhooks.emitWithinSqlite(sqlite, `sync.${outcome.status}`, outcome.districtId, { syncId: outcome.syncId, status: outcome.status, counts: outcome.counts }, now),
    },
    onFailedWithoutEngine: async (outcome, trx) => {
      await webhooks.emit(`sync.${outcome.status}`, outcome.districtId, { syncId: outcome.syncId, status: outcome.status, counts: outcome.counts }, trx);
    },
  });
  let hostKeys: Promise<HostKey[]> | undefined;
  return {
    config,
    logger,
    clock,
    database,
    storage,
    audit,
    districts,
    deliveries,
    jobs,
    syncs,
    tokens,
    clients: new ClientService(db, tokens, districts, clock, audit),
    webhooks,
    hostKeys: () => (hostKeys ??= ensureHostKeys(db, clock)),
    close: async () => {
      syncs.close();
      await deliveries.close();
      await database.close();
    },
  };
}

export interface RunningServer {
  readonly sftpPort: number;
  readonly httpPort: number;
  stop(): Promise<void>;
}

/** `rosterdock serve`: SFTP, HTTP and the background worker in one process. */
export async function startServer(rd: Rosterdock): Promise<RunningServer> {
  // Loaded here, not at the top: CLI commands (ingest above all) need neither, nor their memory.
  const { SftpServer } = await import("./sftp/sftp-server.ts");
  const { buildHttpApp } = await import("./api/http-app.ts");
  const { config, logger } = rd;
  const startedAt = new Date();
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
      },
    },
    rd.districts,
    rd.deliveries,
    rd.storage,
    logger.child({ component: "sftp" }),
  );
  let sftpListening = false;
  const sftpPort = await sftp.listen();
  sftpListening = true;
  const syncThread = new SyncThread(config, logger.child({ component: "sync" }));
  const http = await buildHttpApp(rd, { sftpListening: () => sftpListening, syncRunner: syncThread });
  try {
    await http.listen({ host: config.host, port: config.httpPort });
  } catch (error) {
    await sftp.close();
    throw listenError(error, "HTTP", config.host, config.httpPort);
  }
  const address = http.server.address();
  const httpPort = typeof address === "object" && address ? address.port : config.httpPort;
  logger.info({ event: "http.listening", host: config.host, port: httpPort }, "HTTP server listening");

  const handlers = new Map<string, JobHandler>([
    ["deliver-webhook", { run: (job) => rd.webhooks.deliver(job), maxAttempts: WEBHOOK_MAX_ATTEMPTS }],
    ["process-sync", { run: (job) => syncThread.run(job), maxAttempts: MAX_SYNC_ATTEMPTS }],
  ]);
  const worker = new Worker(rd.deliveries, rd.jobs, handlers, logger.child({ component: "worker" }));
  await worker.start();
  // Started once the modules are loaded and compiled: that one-off pause at start is no stall.
  const lag = watchEventLoopLag(logger);
  const cleared = await rd.storage.clearIncoming(startedAt);
  if (cleared > 0) logger.warn({ event: "storage.incoming.cleared", count: cleared }, "removed uploads left unfinished by an earlier crash");

  return {
    sftpPort,
    httpPort,
    async stop() {
      sftpListening = false;
      // A sync in progress is cut short (rolled back, requeued at start) rather than waited for.
      await syncThread.close();
      await worker.stop();
      await Promise.allSettled([sftp.close(), http.close()]);
      lag.stop();
    },
  };
}
