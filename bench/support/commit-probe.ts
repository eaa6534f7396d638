import SqliteDatabase from "better-sqlite3";
import pg from "pg";

/** How often the probe reads the district's roster version: the commit is known to within this. */
const POLL_MS = 20;

/**
 * When a district's roster version moved on (the ingest's apply committed), seen from outside the
 * ingest: its latest changeset id, read every 20 ms from the database the ingest writes (a
 * PostgreSQL URL, or the SQLite file read-only beside the writer). What the API watch needs to
 * tell requests made while the apply ran from the first requests of the new roster.
 */
export class CommitProbe {
  #timer: NodeJS.Timeout | null = null;
  #committedAt: number | null = null;

  private constructor(
    private readonly read: () => Promise<number>,
    private readonly close: () => Promise<void>,
  ) {}

  static async open(target: { databaseUrl: string } | { sqlitePath: string }, slug: string): Promise<CommitProbe> {
    const sql = "SELECT coalesce(max(c.id), 0) AS version FROM roster_changesets c JOIN districts d ON d.id = c.district_id WHERE d.slug = ";
    if ("databaseUrl" in target) {
      const client = new pg.Client({ connectionString: target.databaseUrl });
      await client.connect();
      return new CommitProbe(
        async () => Number((await client.query<{ version: string }>(`${sql}$1`, [slug])).rows[0]!.version),
        () => client.end(),
      );
    }
    const db = new SqliteDatabase(target.sqlitePath, { readonly: true, fileMustExist: true });
    const statement = db.prepare<[string], { version: number }>(`${sql}?`);
    return new CommitProbe(
      async () => statement.get(slug)!.version,
      async () => {
        db.close();
      },
    );
  }

  /** Starts watching from the version now; `committedAt` is then the first moment it was seen to change. */
  async begin(): Promise<void> {
    this.stop();
    this.#committedAt = null;
    const from = await this.read();
    const poll = async () => {
      try {
        if ((await this.read()) !== from) {
          this.#committedAt = Date.now();
          return;
        }
      } catch {
        // A busy moment of the database: read again at the next tick.
      }
      if (this.#timer !== null) this.#timer = setTimeout(() => void poll(), POLL_MS);
    };
    this.#timer = setTimeout(() => void poll(), POLL_MS);
  }

  /** When the new version was first seen (ms since the epoch), or null. */
  get committedAt(): number | null {
    return this.#committedAt;
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async end(): Promise<void> {
    this.stop();
    await this.close();
  }
}
