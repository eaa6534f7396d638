/**
 * The roster's read SQL is written once (oneroster-resources.ts, user-roles.ts, the reader and the
 * change feed) in the SQL both SQLite and PostgreSQL share, with `@name` parameters and, where the
 * two differ, a few `rd_*(…)` forms that each dialect renders its own way:
 *
 * - `rd_key(x)`: x's collation key (sync/collation-key.ts), what titles and names sort by;
 * - `rd_contains(haystack, needle)`: OneRoster's `~`, case-folded containment;
 * - `rd_glob(x, 'pattern')`: a GLOB pattern (`[0-9]`, `*`) matched against x;
 * - `rd_days(start, end)`: days from one ISO date to another;
 * - `rd_json_agg(x)`: the values of x as a JSON array (text), `[]` for none;
 * - `rd_json_array(x)`: a one-element JSON array (text);
 * - `rd_json_each(json, alias)`: a FROM item with one row (`alias.value`) per element of a JSON array;
 * - `rd_bytes(x)`: x compared and ordered byte by byte, as SQLite compares text;
 * - `rd_nulls_low(x, ASC|DESC)`: an ORDER BY term with nulls first when ascending, as in SQLite;
 * - `rd_one_of(x, SELECT …)`: x is one of the few values the subquery returns (a class's members).
 *   PostgreSQL runs the subquery once and looks each value up in x's index; as `x IN (SELECT …)`
 *   it guessed the semi-join keeps half the table and, under ORDER BY … LIMIT, walked the whole
 *   key index of a district's users for a class's 30 students (230 ms at 1M users, against 2 ms).
 *
 * Stores render a statement once and cache it; the PostgreSQL store also numbers its parameters.
 */
export interface RosterSqlDialect {
  readonly name: "sqlite" | "postgres";
  /** The statement with its `rd_*` forms in the dialect's own SQL (parameters are left as `@name`). */
  render(sql: string): string;
}

type Forms = Readonly<Record<string, (...args: string[]) => string>>;

/** Replaces every `rd_*(…)` form, innermost first, by what `forms` makes of its (rendered) arguments. */
export function renderForms(sql: string, forms: Forms): string {
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      const end = closingQuote(sql, i);
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    const match = /^rd_(\w+)\(/.exec(sql.slice(i, i + 40));
    if (match && (i === 0 || !/\w/.test(sql[i - 1]!))) {
      const form = forms[match[1]!];
      if (form === undefined) throw new Error(`Unknown SQL form rd_${match[1]}`);
      const { args, end } = splitArguments(sql, i + match[0].length);
      out += form(...args.map((a) => renderForms(a.trim(), forms)));
      i = end;
      continue;
    }
    out += ch;
    i++;
  }
  return out;
}

function closingQuote(sql: string, start: number): number {
  const quote = sql[start]!;
  let i = start + 1;
  for (;;) {
    const next = sql.indexOf(quote, i);
    if (next < 0) throw new Error(`Unterminated ${quote} in SQL`);
    if (sql[next + 1] === quote) i = next + 2;
    else return next + 1;
  }
}

/** The top-level comma-separated arguments from just after `(` to its `)`; `end` is just past it. */
function splitArguments(sql: string, start: number): { args: string[]; end: number } {
  const args: string[] = [];
  let depth = 0;
  let from = start;
  let i = start;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      i = closingQuote(sql, i);
      continue;
    }
    if (ch === "(") depth++;
    else if (ch === ")") {
      if (depth === 0) {
        args.push(sql.slice(from, i));
        return { args, end: i + 1 };
      }
      depth--;
    } else if (ch === "," && depth === 0) {
      args.push(sql.slice(from, i));
      from = i + 1;
    }
    i++;
  }
  throw new Error("Unbalanced parentheses in SQL");
}

/** A GLOB pattern as an anchored POSIX regular expression. */
export function globToRegex(glob: string): string {
  let out = "^";
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === "*") out += ".*";
    else if (ch === "?") out += ".";
    else if (ch === "[") {
      const end = glob.indexOf("]", i + 2);
      out += glob.slice(i, end + 1).replace(/^\[\^/, "[^");
      i = end;
    } else out += /[\\^$.|+(){}]/.test(ch) ? `\\${ch}` : ch;
  }
  return `${out}$`;
}

const SQLITE_FORMS: Forms = {
  key: (x) => `collation_key(${x})`,
  contains: (haystack, needle) => `instr(fold(${haystack}), fold(${needle})) > 0`,
  glob: (x, pattern) => `${x} GLOB ${pattern}`,
  days: (start, end) => `(julianday(${end}) - julianday(${start}))`,
  json_agg: (x) => `json_group_array(${x})`,
  json_array: (x) => `json_array(${x})`,
  json_each: (json, alias) => `json_each(${json}) ${alias}`,
  bytes: (x) => x,
  nulls_low: (x, direction) => `${x} ${direction}`,
  one_of: (x, ...subquery) => `${x} IN (${subquery.join(", ")})`,
};

/** SQLite: the reader's connection defines `collation_key` and `fold`; parameters stay named. */
export const SQLITE_ROSTER_SQL: RosterSqlDialect = { name: "sqlite", render: (sql) => renderForms(sql, SQLITE_FORMS) };

/**
 * PostgreSQL. `rosterdock_collation_key` and `rosterdock_fold` are SQL functions of migration 0015
 * computing what collation-key.ts and JavaScript's toLowerCase compute. With a database whose
 * default collation is not C, text is compared with `COLLATE "C"` where order matters (results
 * are then SQLite's; sorted pages may sort instead of reading an index in order).
 */
export function postgresRosterSql(options: { byteOrderedText: boolean }): RosterSqlDialect {
  const forms: Forms = {
    key: (x) => `rosterdock_collation_key(${x})`,
    contains: (haystack, needle) => `strpos(rosterdock_fold(${haystack}), rosterdock_fold(${needle})) > 0`,
    glob: (x, pattern) => `(${x} ~ '${globToRegex(pattern.slice(1, -1).replace(/''/g, "'")).replace(/'/g, "''")}')`,
    days: (start, end) => `((extract(epoch FROM CAST(${end} AS timestamp)) - extract(epoch FROM CAST(${start} AS timestamp))) / 86400)`,
    json_agg: (x) => `coalesce(CAST(json_agg(${x}) AS text), '[]')`,
    json_array: (x) => `CAST(json_build_array(${x}) AS text)`,
    json_each: (json, alias) => `json_array_elements_text(CAST(${json} AS json)) AS ${alias}(value)`,
    nulls_low: (x, direction) => `${x} ${direction} ${direction === "DESC" ? "NULLS LAST" : "NULLS FIRST"}`,
    bytes: options.byteOrderedText ? (x) => x : (x) => `(CAST(${x} AS text) COLLATE "C")`,
    one_of: (x, ...subquery) => `${x} = ANY(ARRAY(${subquery.join(", ")}))`,
  };
  return { name: "postgres", render: (sql) => renderForms(sql, forms) };
}

/**
 * A statement with `@name` parameters as PostgreSQL takes it: `$n::type`, typed by the values
 * (untyped, PostgreSQL could not type `@d AS district_id`), one number per distinct name.
 */
export function positionalParameters(sql: string, params: Readonly<Record<string, unknown>>): { text: string; names: string[] } {
  const names: string[] = [];
  const typeOf = (name: string) => {
    if (!(name in params)) throw new Error(`SQL parameter @${name} has no value`);
    const value = params[name];
    return typeof value === "number" ? (Number.isInteger(value) ? "bigint" : "float8") : typeof value === "boolean" ? "boolean" : "text";
  };
  return { text: withPositionalParameters(sql, names, typeOf), names };
}

/** `@name` → `$n::type`, one number per distinct name (collected in `names`), outside quotes. */
function withPositionalParameters(sql: string, names: string[], typeOf: (name: string) => string): string {
  let out = "";
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      const end = closingQuote(sql, i);
      out += sql.slice(i, end);
      i = end;
      continue;
    }
    if (ch === "@") {
      const name = /^\w+/.exec(sql.slice(i + 1))?.[0];
      if (name !== undefined) {
        let n = names.indexOf(name);
        if (n < 0) n = names.push(name) - 1;
        out += `$${n + 1}::${typeOf(name)}`;
        i += 1 + name.length;
        continue;
      }
    }
    out += ch;
    i++;
  }
  return out;
}
