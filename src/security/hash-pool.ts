import { Worker as Thread } from "node:worker_threads";
import type { Logger } from "pino";
import { RosterdockError } from "../errors.ts";
import { hashSecret, SCRYPT_MAXMEM, verifySecret, type ScryptParams } from "./secrets.ts";
import { BACKGROUND_NICENESS } from "../jobs/lower-thread-priority.ts";

/** Hashes and checks passwords, secrets and tokens. `lane` is who asks (a client address), for fairness. */
export interface SecretHasher {
  hash(secret: string, lane?: string): Promise<string>;
  verify(secret: string, encoded: string, lane?: string): Promise<boolean>;
}

export interface HashPoolOptions {
  /** Threads that run scrypt. */
  threads: number;
  /** Hashes that may wait for a thread; past this, new ones are refused at once (ERR_BUSY). */
  queueLimit: number;
  /** Lower ranks are served first: the server ranks a lane by its recent failed logins. */
  rank?: (lane: string) => number;
}

/**
 * scrypt on threads of its own. `crypto.scrypt` is asynchronous, but it runs on libuv's
 * threadpool, the same four threads the server's file system calls need: a flood of wrong secrets
 * over HTTP left every SFTP write waiting behind hundreds of hashes (a 1-byte upload took 30 s or
 * more). These threads run at a lower CPU priority, so the event loop keeps a core.
 *
 * Waiting hashes form one queue per lane (client address), served round-robin with clean and short
 * lanes first, so a flood delays another district's login by about one hash. When the
 * queue is full, the newest hash of the worst lane (most recent failures, then longest) is
 * refused, or the newcomer's if its own lane is as bad: a flood cannot fill the queue against the others.
 */
export class HashPool implements SecretHasher {
  private readonly idle: PoolThread[] = [];
  private readonly threads: PoolThread[] = [];
  private readonly lanes = new Map<string, Job[]>();
  private queued = 0;
  private closed = false;
  private refusedSinceLog = 0;
  private lastRefusalLog = 0;

  constructor(
    private readonly options: HashPoolOptions,
    private readonly logger?: Logger,
  ) {}

  hash(secret: string, lane = "local"): Promise<string> {
    return hashSecret(secret, (s, salt, keyLength, params) => this.derive(lane, s, salt, keyLength, params));
  }

  verify(secret: string, encoded: string, lane = "local"): Promise<boolean> {
    return verifySecret(secret, encoded, (s, salt, keyLength, params) => this.derive(lane, s, salt, keyLength, params));
  }

  /** Hashes waiting for a thread, for health reports. */
  get waiting(): number {
    return this.queued;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const jobs of this.lanes.values()) for (const job of jobs) job.reject(new RosterdockError("ERR_BUSY", "Rosterdock is stopping."));
    this.lanes.clear();
    this.queued = 0;
    await Promise.all(this.threads.map((t) => t.thread.terminate()));
    this.threads.length = 0;
    this.idle.length = 0;
  }

  private derive(lane: string, secret: string, salt: Buffer, keyLength: number, params: ScryptParams): Promise<Buffer> {
    if (this.closed) return Promise.reject(new RosterdockError("ERR_BUSY", "Rosterdock is stopping."));
    return new Promise<Buffer>((resolve, reject) => {
      const job: Job = { lane, request: { secret, salt, keyLength, ...params, maxmem: SCRYPT_MAXMEM }, resolve, reject };
      if (this.queued >= this.options.queueLimit && !this.makeRoom(lane)) return this.refuse(job);
      const jobs = this.lanes.get(lane);
      if (jobs) jobs.push(job);
      else this.lanes.set(lane, [job]);
      this.queued++;
      this.dispatch();
    });
  }

  /**
   * Refuses the newest hash of the worst lane: the one with the most recent failed logins, then
   * the longest. The newcomer is refused instead when its own lane is as bad: a district's right
   * password from a clean address gets in during a flood of many addresses that each fail, even
   * when every one of them has a single hash waiting.
   */
  private makeRoom(lane: string): boolean {
    const rank = (name: string) => this.options.rank?.(name) ?? 0;
    let worst: string | undefined;
    let worstRank = -Infinity;
    let worstLength = 0;
    for (const [name, jobs] of this.lanes) {
      const r = rank(name);
      if (r > worstRank || (r === worstRank && jobs.length > worstLength)) [worst, worstRank, worstLength] = [name, r, jobs.length];
    }
    if (worst === undefined || worst === lane) return false;
    const ownRank = rank(lane);
    const ownLength = (this.lanes.get(lane)?.length ?? 0) + 1;
    if (worstRank < ownRank || (worstRank === ownRank && ownLength >= worstLength)) return false;
    const victim = this.lanes.get(worst)!.pop()!;
    if (this.lanes.get(worst)!.length === 0) this.lanes.delete(worst);
    this.queued--;
    this.refuse(victim);
    return true;
  }

  private refuse(job: Job): void {
    job.reject(new RosterdockError("ERR_BUSY", undefined, { retryAfterSeconds: 5 }));
    this.refusedSinceLog++;
    const now = Date.now();
    // One line a second at most: the refusals of a flood are counted, not each logged.
    if (now - this.lastRefusalLog >= 1000) {
      this.logger?.warn({ event: "security.hash_queue_full", refused: this.refusedSinceLog, lane: job.lane, queueLimit: this.options.queueLimit }, "credential checks refused: the hash queue is full");
      this.lastRefusalLog = now;
      this.refusedSinceLog = 0;
    }
  }

  private dispatch(): void {
    while (this.queued > 0) {
      const thread = this.idle.pop() ?? this.spawn();
      if (!thread) return;
      const job = this.next();
      this.queued--;
      thread.run(job);
    }
  }

  /**
   * The first job of the best lane: lowest rank (no recent failures), then fewest waiting (a single
   * login goes before a flood's backlog), then round-robin: a served lane goes to the back.
   */
  private next(): Job {
    let best: string | undefined;
    let bestRank = Infinity;
    let bestLength = Infinity;
    for (const [lane, jobs] of this.lanes) {
      const rank = this.options.rank?.(lane) ?? 0;
      if (rank < bestRank || (rank === bestRank && jobs.length < bestLength)) [best, bestRank, bestLength] = [lane, rank, jobs.length];
    }
    const jobs = this.lanes.get(best!)!;
    const job = jobs.shift()!;
    this.lanes.delete(best!);
    if (jobs.length > 0) this.lanes.set(best!, jobs);
    return job;
  }

  private spawn(): PoolThread | undefined {
    if (this.threads.length >= this.options.threads) return undefined;
    const thread = new PoolThread(
      (done) => {
        this.idle.push(done);
        this.dispatch();
      },
      (dead, error) => {
        this.threads.splice(this.threads.indexOf(dead), 1);
        const at = this.idle.indexOf(dead);
        if (at >= 0) this.idle.splice(at, 1);
        if (!this.closed) this.logger?.error({ event: "security.hash_thread_failed", err: error }, "a hashing thread failed");
        this.dispatch();
      },
    );
    this.threads.push(thread);
    return thread;
  }
}

interface HashRequest {
  secret: string;
  salt: Buffer;
  keyLength: number;
  N: number;
  r: number;
  p: number;
  maxmem: number;
}

interface Job {
  lane: string;
  request: HashRequest;
  resolve(key: Buffer): void;
  reject(error: Error): void;
}

/**
 * The thread's whole program: a few lines of plain JavaScript, so it needs no TypeScript loader.
 * Niced like every background thread (Linux sets niceness per thread): under a flood, hashing yields the CPU to the event loop.
 */
const THREAD_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { scryptSync } = require("node:crypto");
try { require("node:os").setPriority(0, ${BACKGROUND_NICENESS}); } catch {}
parentPort.on("message", (request) => {
  try {
    const key = scryptSync(request.secret, request.salt, request.keyLength, { N: request.N, r: request.r, p: request.p, maxmem: request.maxmem });
    parentPort.postMessage({ key });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message) });
  }
});
`;

class PoolThread {
  readonly thread: Thread;
  private current: Job | undefined;

  constructor(onIdle: (thread: PoolThread) => void, onExit: (thread: PoolThread, error: unknown) => void) {
    this.thread = new Thread(THREAD_SOURCE, { eval: true });
    // A CLI command that hashed once must still exit when it is done.
    this.thread.unref();
    this.thread.on("message", (reply: { key?: Uint8Array; error?: string }) => {
      const job = this.current;
      this.current = undefined;
      if (reply.key) job?.resolve(Buffer.from(reply.key));
      else job?.reject(new Error(`scrypt failed: ${reply.error}`));
      onIdle(this);
    });
    let failure: unknown;
    this.thread.on("error", (error) => (failure = error));
    this.thread.on("exit", () => {
      this.current?.reject(new RosterdockError("ERR_BUSY", "The credential check was interrupted; try again."));
      this.current = undefined;
      onExit(this, failure);
    });
  }

  run(job: Job): void {
    this.current = job;
    this.thread.postMessage(job.request);
  }
}
