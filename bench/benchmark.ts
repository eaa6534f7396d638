/** One benchmark: `npm run bench -- NAME [options]` runs it and prints its result as JSON on stdout. */
export interface Benchmark {
  readonly name: string;
  readonly description: string;
  /** Options, one per line, shown by `npm run bench -- NAME --help`. */
  readonly usage: string;
  /** Resolves to a JSON-serialisable result; progress goes to stderr through `progress`. */
  run(args: string[], context: BenchContext): Promise<unknown>;
}

export interface BenchContext {
  /** Registers teardown work; it runs in reverse order at the end, on error and on SIGINT/SIGTERM. */
  defer(what: string, teardown: () => Promise<void> | void): void;
  /** Rejects once SIGINT/SIGTERM arrived, so long loops can stop between steps. */
  checkInterrupted(): void;
  progress(message: string): void;
}
