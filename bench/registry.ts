import type { Benchmark } from "./benchmark.ts";

export interface BenchmarkEntry {
  readonly name: string;
  readonly description: string;
  /** Loaded only when chosen, so one benchmark's dependencies never slow another's start. */
  load(): Promise<Benchmark>;
}

/** Every benchmark `bench/run.ts` knows: add a line per `bench/<name>.ts`. */
export const BENCHMARKS: readonly BenchmarkEntry[] = [
  {
    name: "sftp",
    description: "Upload throughput and server RSS: Rosterdock vs OpenSSH's sshd, OpenSSH sftp client, per cipher",
    load: async () => (await import("./sftp.ts")).sftpBenchmark,
  },
  {
    name: "api",
    description: "OneRoster and change-feed p50/p99 latency at 50 concurrent connections on a district of 1M users / 8M enrollments",
    load: async () => (await import("./api.ts")).apiBenchmark,
  },
  {
    name: "attack",
    description: "Innocent districts' small-upload latency during a banner flood, a channel flood, a hash flood and a 1M-student sync, against idle",
    load: async () => (await import("./attack.ts")).attackBenchmark,
  },
  { name: "ingest", description: "`rosterdock ingest` of 1M users / 8M enrollments, first and second night, vs `sqlite3 .import`", load: async () => (await import("./ingest.ts")).ingestBenchmark },
];
