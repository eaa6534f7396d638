import type { BenchContext } from "./benchmark.ts";
import { BENCHMARKS } from "./registry.ts";

/** `npm run bench -- NAME [options]`: runs one benchmark, prints its JSON result on stdout; progress goes to stderr. */

class Interrupted extends Error {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
  }
}

function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function listing(): string {
  const width = Math.max(...BENCHMARKS.map((b) => b.name.length));
  return [
    "usage: npm run bench -- NAME [options]   (NAME --help for its options)",
    "benchmarks:",
    ...BENCHMARKS.map((b) => `  ${b.name.padEnd(width)}  ${b.description}`),
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const entry = BENCHMARKS.find((b) => b.name === name);
  if (!entry) {
    if (name !== undefined && name !== "--help" && name !== "-h") process.stderr.write(`unknown benchmark: ${name}\n`);
    process.stderr.write(`${listing()}\n`);
    return name === undefined || name === "--help" || name === "-h" ? 0 : 2;
  }
  const benchmark = await entry.load();
  if (args.includes("--help") || args.includes("-h")) {
    process.stderr.write(`usage: npm run bench -- ${benchmark.name} [options]\n${benchmark.description}\n${benchmark.usage}\n`);
    return 0;
  }

  const teardowns: { what: string; run: () => Promise<void> | void }[] = [];
  let interrupted: Interrupted | undefined;
  let tearingDown: Promise<void> | undefined;
  const teardown = () =>
    (tearingDown ??= (async () => {
      for (let next = teardowns.pop(); next; next = teardowns.pop()) {
        try {
          await next.run();
        } catch (error) {
          progress(`teardown of ${next.what} failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = new Interrupted(signal);
    progress(`${signal}: tearing down`);
    void teardown().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const context: BenchContext = {
    defer: (what, run) => void teardowns.push({ what, run }),
    checkInterrupted: () => {
      if (interrupted) throw interrupted;
    },
    progress,
  };
  try {
    const result = await benchmark.run(args, context);
    await teardown();
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (error) {
    await teardown();
    if (error instanceof Interrupted) return 130;
    process.stderr.write(`bench ${benchmark.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
