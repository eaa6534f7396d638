import { pino, type Logger } from "pino";

/** Structured logs on standard error (standard output stays free for `--json`). Secrets are redacted by name. */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: "rosterdock" },
      redact: { paths: ["password", "*.password", "token", "*.token", "secret", "*.secret", "authorization", "*.authorization"], censor: "[redacted]" },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}
