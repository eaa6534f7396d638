import { pino, type Logger } from "pino";

/** Structured logs on standard error (standard output stays free for `--json`; tests pass a stream of their own). Secrets are redacted by name. */
export function createLogger(level: string, destination: pino.DestinationStream = pino.destination({ fd: 2, sync: true })): Logger {
  return pino(
    {
      level,
      base: { service: "rosterdock" },
      redact: { paths: ["password", "*.password", "token", "*.token", "secret", "*.secret", "authorization", "*.authorization"], censor: "[redacted]" },
    },
    destination,
  );
}
