import type { Logger } from "pino";

export interface EventLoopLagWatch {
  stop(): void;
}

/** Lag over this is logged: every SFTP session and HTTP request of the process waited that long. */
export const EVENT_LOOP_LAG_THRESHOLD_MS = 100;
const CHECK_INTERVAL_MS = 50;

/**
 * Logs `server.event_loop_lag` (warn, with `lagMs`) whenever the thread that serves SFTP and HTTP
 * was kept from running its timers for longer than the threshold: something blocked it (a
 * synchronous statement, a big JSON document, a CPU-heavy request) or the machine starved it.
 * A timer that measures its own lateness: cheap, and it names the moment the stall ended.
 */
export function watchEventLoopLag(logger: Logger, thresholdMs = EVENT_LOOP_LAG_THRESHOLD_MS): EventLoopLagWatch {
  let expected = performance.now() + CHECK_INTERVAL_MS;
  let stopped = false;
  const check = () => {
    const now = performance.now();
    const lagMs = Math.round(now - expected);
    if (lagMs > thresholdMs) logger.warn({ event: "server.event_loop_lag", lagMs }, "the server's thread was blocked");
    expected = now + CHECK_INTERVAL_MS;
    schedule();
  };
  let timer: NodeJS.Timeout;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(check, CHECK_INTERVAL_MS);
    // Never what keeps the process alive.
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
