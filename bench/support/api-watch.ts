import type { BenchContext } from "../benchmark.ts";
import { RosterdockServer } from "./rosterdock-server.ts";

/** One request the watch made: when it started and how long it took (ms since the epoch, ms). */
interface Sample {
  at: number;
  ms: number;
  ok: boolean;
  request: string;
}

/** Requests per second of the paced watch, by default: an app paging and filtering steadily. */
export const DEFAULT_API_RATE = 20;

export interface WatchSummary {
  requests: number;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  failed: number;
  /** The five slowest requests: which kind, started how many seconds into the window, and how long they took. */
  slowest: Array<{ request: string; atSeconds: number; ms: number }>;
}

/**
 * A `rosterdock serve` on the same database as the ingests, and OneRoster requests against the
 * district being ingested while they run: what an app reading the roster sees during a sync (its
 * staging, plan and apply). Each request misses the response cache (a unique parameter), so each
 * one reads the database.
 *
 * Paced (`rate` > 0, the default): requests start on a fixed schedule whether or not earlier ones
 * have answered (an open loop), so a stall shows in every request it delays, and the load is that
 * of an app, not of the machine's spare cores. `rate` 0: four back-to-back loops (a closed loop
 * that takes about a core of a small machine: a stress, not an app).
 */
export class ApiWatch {
  #samples: Sample[] = [];
  #running: Promise<void>[] = [];
  #inFlight = new Set<Promise<void>>();
  #stopped = true;
  #sequence = 0;
  #timer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly server: RosterdockServer,
    private readonly token: string,
    private readonly slug: string,
    /** Requests started per second; 0 for back-to-back loops. */
    readonly rate: number,
    private readonly concurrency: number,
  ) {}

  static async start(
    context: BenchContext,
    workDir: string,
    options: { root: string; slug: string; env: NodeJS.ProcessEnv; rate?: number; concurrency?: number },
  ): Promise<ApiWatch> {
    // The server's own district is empty; the requests read the ingested district (`options.slug`).
    const server = await RosterdockServer.start(context, workDir, { root: options.root, slug: "api-watch", env: options.env });
    const created = await server.cli<{ token: string }>(["token", "create", "--name", "api-watch", "--scope", "roster.readonly"]);
    return new ApiWatch(server, created.token, options.slug, options.rate ?? DEFAULT_API_RATE, options.concurrency ?? 4);
  }

  /** Starts the requests; `end()` stops them and returns what they measured. */
  begin(): void {
    this.#samples = [];
    this.#stopped = false;
    if (this.rate <= 0) {
      this.#running = Array.from({ length: this.concurrency }, () => this.#loop());
      return;
    }
    const interval = 1000 / this.rate;
    const started = performance.now();
    const epoch = Date.now();
    let n = 0;
    const tick = () => {
      if (this.#stopped) return;
      // Every request due by now starts now (a late timer does not thin the schedule).
      while (started + n * interval <= performance.now()) {
        // Timed from when it was due: a request the timer started late counts that lateness.
        const request = this.#request(epoch + n * interval).finally(() => this.#inFlight.delete(request));
        n++;
        this.#inFlight.add(request);
      }
      this.#timer = setTimeout(tick, Math.max(0, started + n * interval - performance.now()));
    };
    tick();
  }

  async end(): Promise<Sample[]> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await Promise.all([...this.#running, ...this.#inFlight]);
    this.#running = [];
    return this.#samples;
  }

  async stop(): Promise<void> {
    await this.server.stop();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) await this.#request();
  }

  async #request(due?: number): Promise<void> {
    const api = `http://127.0.0.1:${this.server.httpPort}/districts/${this.slug}/ims/oneroster/rostering/v1p2`;
    const paths = [
      { request: "students page", url: (n: number) => `${api}/students?limit=100&offset=${(n * 7919) % 500_000}` },
      { request: "familyName filter", url: () => `${api}/students?filter=${encodeURIComponent("familyName='Peña'")}&limit=100` },
      { request: "students of a class", url: (n: number) => `${api}/classes/${20001 + ((n * 104729) % 100_000)}/students` },
    ];
    const n = this.#sequence++;
    const path = paths[n % paths.length]!;
    const url = `${path.url(n)}${n % paths.length === 2 ? "?" : "&"}watch=${n}`;
    const at = due ?? Date.now();
    let ok = false;
    try {
      const response = await fetch(url, { headers: { authorization: `Bearer ${this.token}` } });
      await response.arrayBuffer();
      // 404: a class not (yet) in the roster is still an answer from the database.
      ok = response.status < 500;
    } catch {
      ok = false;
    }
    this.#samples.push({ at, ms: Date.now() - at, ok, request: path.request });
  }
}

/** Latency of the samples started within [from, to] (ms since the epoch). */
export function summarise(samples: readonly Sample[], from = -Infinity, to = Infinity): WatchSummary {
  const within = samples.filter((s) => s.at >= from && s.at <= to);
  const ms = within.map((s) => s.ms).sort((a, b) => a - b);
  const at = (q: number) => (ms.length === 0 ? null : ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!);
  const start = within.reduce((min, s) => Math.min(min, s.at), Infinity);
  const slowest = [...within]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 5)
    .map((s) => ({ request: s.request, atSeconds: Math.round((s.at - start) / 100) / 10, ms: s.ms }));
  return { requests: within.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: ms.length === 0 ? null : ms[ms.length - 1]!, failed: within.filter((s) => !s.ok).length, slowest };
}

export type { Sample as WatchSample };
