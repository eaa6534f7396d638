import { sql } from "../kysely.ts";
import type { Kysely, Migration } from "kysely";
import type { DialectInfo } from "../dialect-info.ts";

/**
 * PostgreSQL's copies of the two functions the OneRoster reader gives SQLite in JavaScript
 * (api/oneroster/sqlite-roster-store.ts), so that both dialects sort and filter alike:
 *
 * - `rosterdock_fold(text)`: JavaScript's toLowerCase, for `~` filters;
 * - `rosterdock_collation_key(text)`: sync/collation-key.ts's collationKey, what titles, school
 *   names and middle names sort by (users' given and family names have stored keys).
 *
 * Lower-casing goes through ICU's root locale where the server has ICU (Debian's has), since a C
 * database's lower() folds ASCII only. The combining marks collationKey drops (`\p{M}`) are
 * listed as ranges computed from this Node's Unicode tables. SQLite needs nothing here.
 */
export function rosterReadFunctionsMigration(d: DialectInfo): Migration {
  return {
    async up(db: Kysely<any>) {
      if (d.name !== "postgres") return;
      const icu = await sql<{ one: number }>`SELECT 1 AS one FROM pg_collation WHERE collname = 'und-x-icu'`.execute(db);
      const lower = icu.rows.length > 0 ? `lower(value COLLATE "und-x-icu")` : "lower(value)";
      await sql.raw(`CREATE OR REPLACE FUNCTION rosterdock_fold(value text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT ${lower} $fn$`).execute(db);
      const stripped = `regexp_replace(normalize(value, NFKD), '[${combiningMarkRanges()}]+', '', 'g')`;
      const singles = `translate(${stripped}, 'øØłŁđĐðÐı', 'oollddddi')`;
      const spelled = Object.entries(SPELLED_OUT).reduce((expression, [letter, spelling]) => `replace(${expression}, '${letter}', '${spelling}')`, singles);
      await sql
        .raw(`CREATE OR REPLACE FUNCTION rosterdock_collation_key(value text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$ SELECT normalize(rosterdock_fold(${spelled}), NFC) $fn$`)
        .execute(db);
    },
    async down(db: Kysely<any>) {
      if (d.name !== "postgres") return;
      await sql`DROP FUNCTION IF EXISTS rosterdock_collation_key(text)`.execute(db);
      await sql`DROP FUNCTION IF EXISTS rosterdock_fold(text)`.execute(db);
    },
  };
}

/** collation-key.ts's letters spelled with two (the one-letter ones go through translate()). */
const SPELLED_OUT: Readonly<Record<string, string>> = { ß: "ss", ẞ: "ss", æ: "ae", Æ: "ae", þ: "th", Þ: "th", œ: "oe", Œ: "oe" };

/** `\p{M}` as a bracket expression's ranges, in PostgreSQL's `\uXXXX` / `\UXXXXXXXX` escapes. */
function combiningMarkRanges(): string {
  const escape = (cp: number) => (cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, "0")}` : `\\U${cp.toString(16).padStart(8, "0")}`);
  const mark = /\p{M}/u;
  const ranges: string[] = [];
  for (let cp = 0; cp <= 0x10ffff; cp++) {
    if (!mark.test(String.fromCodePoint(cp))) continue;
    const start = cp;
    while (cp + 1 <= 0x10ffff && mark.test(String.fromCodePoint(cp + 1))) cp++;
    ranges.push(start === cp ? escape(start) : `${escape(start)}-${escape(cp)}`);
  }
  return ranges.join("");
}
