/**
 * Attempts after which an interrupted or crashing sync is marked failed (the job queue's default).
 * Its own module: the server's composition root reads it without loading the sync pipeline.
 */
export const MAX_SYNC_ATTEMPTS = 5;
