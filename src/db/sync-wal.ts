import { open } from "node:fs/promises";

/**
 * Makes the commits written so far to a SQLite database in WAL mode with `synchronous = NORMAL`
 * durable, by fsyncing its `-wal` file: what `synchronous = FULL` does at every commit, but on
 * libuv's thread pool instead of blocking the thread that committed (the SFTP and HTTP servers').
 * A missing WAL file has nothing to sync (everything was checkpointed into the database, synced then).
 */
export async function syncWal(databasePath: string): Promise<void> {
  const file = await open(`${databasePath}-wal`, "r").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  if (file === undefined) return;
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}
