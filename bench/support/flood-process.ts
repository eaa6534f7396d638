import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { BenchContext } from "../benchmark.ts";
import { exited, stopChild } from "./processes.ts";
import { ROOT } from "./rosterdock-server.ts";

/** What a flood script prints, one JSON line per event: its counters at that moment. */
export interface FloodReport {
  event: string;
  [counter: string]: unknown;
}

/**
 * An attack run as a child process (`bench/support/*-flood.ts`), so that its sockets count against
 * its own descriptor limit, raised to the hard limit with `ulimit`, and its CPU work is not the
 * benchmark's (which times the innocent uploads). It runs at the lowest priority: a real
 * attacker's CPU is not the server's.
 *
 * Protocol: the script takes its settings as JSON in argv, prints `{"event":"started",…}` once
 * under way, answers a line `report` on stdin with `{"event":"report",…}`, and at the end of stdin
 * stops, prints `{"event":"final",…}` and exits.
 */
export class FloodProcess {
  private readonly lines: FloodReport[] = [];
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly name: string,
  ) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        this.lines.push(JSON.parse(line) as FloodReport);
      } catch {
        process.stderr.write(`[${name}] ${line}\n`);
      }
      for (const wake of this.waiters) wake();
    });
  }

  static async start(context: BenchContext, script: string, settings: unknown): Promise<FloodProcess> {
    const path = join(ROOT, "bench", "support", script);
    const child = spawn(
      "sh",
      ["-c", `ulimit -S -n "$(ulimit -H -n)"; exec nice -n 19 "${process.execPath}" --import tsx "$0" "$1"`, path, JSON.stringify(settings)],
      { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] },
    );
    context.defer(script, () => stopChild(child));
    const flood = new FloodProcess(child, script);
    await flood.next("started", 60_000);
    return flood;
  }

  /** The next report of `event` (a `report` is asked for). */
  async next(event: string, timeoutMs = 30_000): Promise<FloodReport> {
    const seen = this.lines.length;
    if (event === "report") this.child.stdin!.write("report\n");
    const find = () => this.lines.slice(event === "started" ? 0 : seen).find((l) => l.event === event);
    const deadline = Date.now() + timeoutMs;
    for (let found = find(); ; found = find()) {
      if (found) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}) before reporting ${event}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name} did not report ${event} in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 500));
        this.waiters.add(wake);
      });
    }
  }

  /** Ends the attack (its sockets close as the process exits); its last counters. */
  async stop(): Promise<FloodReport> {
    const final = this.next("final", 30_000);
    this.child.stdin!.end();
    try {
      return await final;
    } finally {
      await Promise.race([exited(this.child), new Promise((r) => setTimeout(r, 10_000))]);
      await stopChild(this.child);
    }
  }
}
