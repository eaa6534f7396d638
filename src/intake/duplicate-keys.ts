import type { EntityName } from "../spec/roster-spec.ts";

export interface FirstSeen {
  file: string;
  row: number;
}

/**
 * Finds repeated keys across the files of one delivery (students.csv and users.csv both feed
 * users). Costs ~100 bytes per key: fine for schools, users, classes, courses and terms;
 * enrollments (8M composite keys ≈ 1.4 GB) are left to the database's key.
 */
/** V8 keeps substrings of 13+ characters as views of their source: a kept key would pin a whole chunk of text. */
function detach(key: string): string {
  return key.length < 13 ? key : Buffer.from(key, "utf8").toString("utf8");
}

export class DuplicateKeyTracker {
  readonly #seen = new Map<string, Map<string, number>>();
  readonly #files: string[] = [];

  /** Records the key; returns where it was first seen if it was. */
  check(entity: EntityName, scope: string, key: string, file: string, row: number): FirstSeen | null {
    const space = `${entity}/${scope}`;
    let keys = this.#seen.get(space);
    if (keys === undefined) {
      keys = new Map();
      this.#seen.set(space, keys);
    }
    const earlier = keys.get(key);
    if (earlier !== undefined) {
      return { file: this.#files[Math.floor(earlier / 2 ** 32)]!, row: earlier % 2 ** 32 };
    }
    keys.set(detach(key), this.#fileIndex(file) * 2 ** 32 + row);
    return null;
  }

  #fileIndex(file: string): number {
    const index = this.#files.lastIndexOf(file);
    if (index !== -1) return index;
    this.#files.push(file);
    return this.#files.length - 1;
  }
}
