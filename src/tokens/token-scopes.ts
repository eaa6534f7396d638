import { RosterdockError } from "../errors.ts";

/**
 * Scopes a token or OAuth client can hold, as stored. `roster.readonly` reads the whole roster
 * (OneRoster and the change feed); `roster-core.readonly` is the rostering service without
 * demographics, `roster-demographics.readonly` demographics only, as in OneRoster's own scopes.
 */
export const TOKEN_SCOPES = ["admin", "roster.readonly", "roster-core.readonly", "roster-demographics.readonly"] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

/** What a scope lets its holder do. `admin` also does everything else (see `scopeAllows`). */
type Grant = "admin" | "roster-core" | "roster-demographics";

const GRANTS: Record<TokenScope, readonly Grant[]> = {
  admin: ["admin"],
  "roster.readonly": ["roster-core", "roster-demographics"],
  "roster-core.readonly": ["roster-core"],
  "roster-demographics.readonly": ["roster-demographics"],
};

/** The scopes 1EdTech defines for OneRoster rostering, by version: each is one of ours under a URI. */
const ONEROSTER_SCOPE_PREFIXES = {
  v1p2: "https://purl.imsglobal.org/spec/or/v1p2/scope/",
  v1p1: "https://purl.imsglobal.org/spec/or/v1p1/scope/",
} as const;
const ONEROSTER_SCOPES = ["roster.readonly", "roster-core.readonly", "roster-demographics.readonly"] as const satisfies readonly TokenScope[];

/** How a scope was spelt: our short name or one of OneRoster's URIs. A granted scope is answered in the same spelling. */
type Spelling = "short" | keyof typeof ONEROSTER_SCOPE_PREFIXES;

/** Every accepted spelling of every scope, in one table. */
const SCOPE_NAMES: ReadonlyMap<string, { scope: TokenScope; spelling: Spelling }> = new Map([
  ...TOKEN_SCOPES.map((scope) => [scope, { scope, spelling: "short" as Spelling }] as const),
  ...(Object.keys(ONEROSTER_SCOPE_PREFIXES) as (keyof typeof ONEROSTER_SCOPE_PREFIXES)[]).flatMap((version) =>
    ONEROSTER_SCOPES.map((scope) => [spell(scope, version), { scope, spelling: version as Spelling }] as const),
  ),
]);

function spell(scope: TokenScope, spelling: Spelling): string {
  return spelling === "short" ? scope : `${ONEROSTER_SCOPE_PREFIXES[spelling]}${scope}`;
}

/** The names `client create --scope` and `token create --scope` accept, for messages. */
export const ACCEPTED_SCOPE_NAMES = `${TOKEN_SCOPES.join(", ")}, or OneRoster's ${ONEROSTER_SCOPE_PREFIXES.v1p2}… (and v1p1) URIs for the last three`;

function grantsOf(scopes: readonly TokenScope[]): Set<Grant> {
  const grants = new Set(scopes.flatMap((s) => GRANTS[s]));
  if (grants.has("admin")) for (const g of Object.values(GRANTS).flat()) grants.add(g);
  return grants;
}

/** The fewest scopes that hold exactly these grants, in a stable order. */
function scopesFor(grants: ReadonlySet<Grant>): TokenScope[] {
  const scopes: TokenScope[] = [];
  if (grants.has("admin")) scopes.push("admin");
  if (grants.has("roster-core") && grants.has("roster-demographics")) scopes.push("roster.readonly");
  else if (grants.has("roster-core")) scopes.push("roster-core.readonly");
  else if (grants.has("roster-demographics")) scopes.push("roster-demographics.readonly");
  return scopes;
}

/** Whether a token holding `held` may do what `needed` allows: `admin` covers everything, `roster.readonly` both halves of the roster. */
export function scopeAllows(held: readonly TokenScope[], needed: TokenScope): boolean {
  const grants = grantsOf(held);
  return GRANTS[needed].every((g) => grants.has(g));
}

/**
 * Scopes given by an operator (short names or OneRoster URIs, each entry possibly space-separated)
 * as stored: short names, without repeats. An unknown name is refused.
 */
export function normaliseScopes(names: readonly string[]): TokenScope[] {
  const words = names.flatMap((n) => n.split(/\s+/)).filter(Boolean);
  const unknown = words.filter((w) => !SCOPE_NAMES.has(w));
  if (unknown.length > 0 || words.length === 0) {
    throw new RosterdockError("ERR_INVALID_ARGUMENT", `Scopes are ${ACCEPTED_SCOPE_NAMES}; got ${unknown.join(", ") || "none"}.`, { accepted: [...SCOPE_NAMES.keys()] });
  }
  const scopes = new Set(words.map((w) => SCOPE_NAMES.get(w)!.scope));
  // Named one by one, both halves of the roster are stored as the one scope that means both.
  const grants = new Set([...scopes].flatMap((s) => GRANTS[s]));
  return scopesFor(grants);
}

/** An OAuth `scope` parameter's words (RFC 6749 §3.3), or undefined when one holds a character the grammar forbids. */
export function splitScopeParameter(scope: string): string[] | undefined {
  const words = scope.split(/[ \t]+/).filter(Boolean);
  return words.every((w) => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(w)) ? words : undefined;
}

/**
 * The client-credentials grant's scope: what was asked for (`requested`, words of the `scope`
 * parameter) intersected with what the client may have (`allowed`). Unknown words are left out,
 * as are scopes the client lacks; a scope the client holds only half of (`roster.readonly` for a
 * core-only client) is granted for that half. `scope` answers each granted scope in the spelling
 * it was asked in. Undefined when nothing asked for can be granted.
 */
export function grantScopes(requested: readonly string[], allowed: readonly TokenScope[]): { scopes: TokenScope[]; scope: string } | undefined {
  const allowedGrants = grantsOf(allowed);
  const granted = new Set<Grant>();
  const answered: string[] = [];
  for (const word of requested) {
    const named = SCOPE_NAMES.get(word);
    if (named === undefined) continue;
    const part = new Set(GRANTS[named.scope].filter((g) => allowedGrants.has(g)));
    if (part.size === 0) continue;
    for (const g of part) granted.add(g);
    const answer = part.size === GRANTS[named.scope].length ? word : spell(scopesFor(part)[0]!, named.spelling);
    if (!answered.includes(answer)) answered.push(answer);
  }
  if (granted.size === 0) return undefined;
  return { scopes: scopesFor(granted), scope: answered.join(" ") };
}

/**
 * The scope a OneRoster route needs: demographics (`/demographics`, `/demographics/{id}`) need
 * `roster-demographics.readonly`, every other rostering route `roster-core.readonly`; a token
 * with `roster.readonly` (or `admin`) reads both.
 */
export function rosteringScope(routePath: string): TokenScope {
  return /\/demographics(\/|$)/.test(routePath) ? "roster-demographics.readonly" : "roster-core.readonly";
}
