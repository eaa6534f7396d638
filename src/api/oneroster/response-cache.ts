import { createHash } from "node:crypto";

export interface CachedResponse {
  body: string;
  headers: Record<string, string>;
  etag: string;
}

/**
 * Finished OneRoster responses, keyed by district, roster version and URL. A roster changes only
 * when a sync is applied or rolled back, or when removed records past their retention are purged,
 * each of which moves the version (see RosterReader.version), so an entry never goes stale: it is
 * simply never asked for again. Bounded by total body size, least recently used out first.
 */
export class ResponseCache {
  readonly #entries = new Map<string, CachedResponse>();
  #bytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  static key(districtId: number, version: number | string, url: string): string {
    return `${districtId}\u0000${version}\u0000${url}`;
  }

  static etag(key: string): string {
    return `"${createHash("sha256").update(key).digest("base64url").slice(0, 27)}"`;
  }

  get(key: string): CachedResponse | undefined {
    const entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
      this.#entries.set(key, entry);
    }
    return entry;
  }

  set(key: string, entry: CachedResponse): void {
    if (entry.body.length > this.maxBytes / 8) return;
    const previous = this.#entries.get(key);
    if (previous) {
      this.#bytes -= previous.body.length;
      this.#entries.delete(key);
    }
    this.#entries.set(key, entry);
    this.#bytes += entry.body.length;
    for (const [oldest, value] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(oldest);
      this.#bytes -= value.body.length;
    }
  }
}
