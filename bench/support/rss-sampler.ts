import { descendants, rssKiB } from "./processes.ts";

export interface RssSummary {
  /** RSS at the first sample, KiB */
  firstKiB: number;
  peakKiB: number;
  /** RSS at the last sample, KiB */
  lastKiB: number;
  samples: number;
}

/**
 * Samples the summed VmRSS of some processes every `intervalMs` (pages shared between them count
 * once per process, so a sum over a process tree overstates it a little).
 */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private readonly values: number[] = [];

  constructor(
    private readonly pids: () => number[],
    private readonly intervalMs = 100,
  ) {}

  /** The server process itself. */
  static ofProcess(pid: number, intervalMs?: number): RssSampler {
    return new RssSampler(() => [pid], intervalMs);
  }

  /** The processes a server forked (OpenSSH's per-connection sshd processes), not the listener. */
  static ofDescendants(pid: number, intervalMs?: number): RssSampler {
    return new RssSampler(() => descendants(pid), intervalMs);
  }

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  stop(): RssSummary {
    clearInterval(this.timer);
    this.sample();
    const values = this.values.length > 0 ? this.values : [0];
    return { firstKiB: values[0]!, peakKiB: Math.max(...values), lastKiB: values[values.length - 1]!, samples: this.values.length };
  }

  private sample(): void {
    let total = 0;
    let seen = 0;
    for (const pid of this.pids()) {
      const kib = rssKiB(pid);
      if (kib === undefined) continue;
      total += kib;
      seen += 1;
    }
    if (seen > 0) this.values.push(total);
  }
}
