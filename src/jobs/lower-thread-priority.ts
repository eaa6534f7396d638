import { setPriority } from "node:os";

/**
 * Niceness of Rosterdock's background threads (sync, parse, hashing): Linux sets it per thread,
 * so under load the server's own thread (SFTP and HTTP) gets the CPU first and a sync takes what
 * is left. A quiet machine runs them at full speed all the same.
 */
export const BACKGROUND_NICENESS = 10;

/** Lowers the calling thread's priority; where the platform refuses, it runs as it is. */
export function lowerThreadPriority(): void {
  try {
    setPriority(0, BACKGROUND_NICENESS);
  } catch {
    // not permitted or not supported here
  }
}
