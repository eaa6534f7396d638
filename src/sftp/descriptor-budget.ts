import { readFileSync } from "node:fs";
import { opendir } from "node:fs/promises";
import type { Logger } from "pino";

export interface DescriptorLimits {
  soft: number;
  hard: number;
}

/** The process's RLIMIT_NOFILE from /proc (Linux); undefined elsewhere. Node has no getrlimit. */
export function readDescriptorLimits(path = "/proc/self/limits"): DescriptorLimits | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!match) return undefined;
  const value = (raw: string) => (raw === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(raw));
  return { soft: value(match[1]!), hard: value(match[2]!) };
}

export interface DescriptorReport {
  open: number;
  limit: number;
  reserve: number;
  refusingConnections: boolean;
  refusingFiles: boolean;
}

/** Counting /proc/self/fd costs ~3 ms per thousand descriptors, so it is sampled, more often when it matters. */
const SLOW_SAMPLE_MS = 5000;
const FAST_SAMPLE_MS = 500;

/**
 * Keeps descriptors for HTTP and the database. The open count is an exact sample of
 * /proc/self/fd (taken off the event loop) plus the SFTP sockets opened and closed since,
 * so a burst of connections is seen at once rather than at the next sample.
 */
export class DescriptorBudget {
  readonly reserve: number;
  private sampled = 0;
  private sinceSample = 0;
  private timer: NodeJS.Timeout | undefined;
  private sampling = false;
  private stopped = false;

  constructor(
    readonly limits: DescriptorLimits | undefined,
    reserve: number,
    private readonly logger: Logger,
    private readonly fdDir = "/proc/self/fd",
  ) {
    // A reserve larger than half the limit would refuse every connection: keep half for SFTP.
    this.reserve = limits ? Math.min(reserve, Math.floor(limits.soft / 2)) : reserve;
  }

  /** Takes the first sample and keeps sampling until stop(). */
  async start(): Promise<void> {
    const { limits } = this;
    if (!limits) {
      this.logger.warn({ event: "process.descriptors", limit: null }, "cannot read the descriptor limit here (Linux only): SFTP connections are limited by count only");
      return;
    }
    const raised = limits.soft >= limits.hard;
    this.logger[raised ? "info" : "warn"](
      { event: "process.descriptors", soft: limits.soft, hard: limits.hard, reserve: this.reserve },
      raised ? "descriptor limit" : "descriptor limit is below its hard limit: start through bin/rosterdock, or raise LimitNOFILE / ulimit -n",
    );
    await this.sample();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** An SFTP socket was accepted or closed: counted until the next sample sees it. */
  opened(): void {
    this.sinceSample++;
  }

  closed(): void {
    this.sinceSample--;
  }

  get open(): number {
    return Math.max(0, this.sampled + this.sinceSample);
  }

  /** New connections stop at the reserve; new files within open sessions stop at half of it. */
  hasRoom(purpose: "connection" | "file"): boolean {
    if (!this.limits) return true;
    const keep = purpose === "connection" ? this.reserve : Math.floor(this.reserve / 2);
    return this.open < this.limits.soft - keep;
  }

  report(): DescriptorReport | undefined {
    if (!this.limits) return undefined;
    return {
      open: this.open,
      limit: this.limits.soft,
      reserve: this.reserve,
      refusingConnections: !this.hasRoom("connection"),
      refusingFiles: !this.hasRoom("file"),
    };
  }

  private async sample(): Promise<void> {
    if (this.sampling || this.stopped) return;
    this.sampling = true;
    const before = this.sinceSample;
    try {
      let count = 0;
      // opendir streams in batches: reading 20,000 entries at once would block the event loop for ~60 ms.
      for await (const _entry of await opendir(this.fdDir, { bufferSize: 512 })) count++;
      this.sampled = count - 1; // the directory's own descriptor
      this.sinceSample -= before;
    } catch (error) {
      this.logger.debug({ event: "process.descriptors.sample_failed", err: error }, "could not count open descriptors");
    } finally {
      this.sampling = false;
    }
    if (this.stopped) return;
    const busy = this.limits !== undefined && this.open > (this.limits.soft - this.reserve) / 2;
    this.timer = setTimeout(() => void this.sample(), busy ? FAST_SAMPLE_MS : SLOW_SAMPLE_MS);
    this.timer.unref();
  }
}
