/**
 * The error catalogue. Every error a user can meet has a stable code, a default message
 * and a category; each boundary (HTTP, SFTP, CLI) maps the category once.
 * Bad roster rows are not errors: they are `Issue` data (see src/intake/issue.ts).
 */
export type ErrorCategory =
  | "invalid_input"
  | "not_found"
  | "conflict"
  | "unauthenticated"
  | "forbidden"
  | "limit"
  | "throttled"
  | "unavailable"
  | "internal";

export const ERROR_CATALOGUE = {
  ERR_CONFIG_INVALID: { category: "invalid_input", message: "The configuration is invalid." },
  ERR_DISTRICT_NOT_FOUND: { category: "not_found", message: "No district has that slug." },
  ERR_DISTRICT_EXISTS: { category: "conflict", message: "A district with that slug already exists." },
  ERR_DISTRICT_DISABLED: { category: "forbidden", message: "The district is disabled." },
  ERR_INVALID_SLUG: {
    category: "invalid_input",
    message: "A slug is 2-40 lowercase letters, digits and single hyphens, starting with a letter.",
  },
  ERR_INVALID_CIDR: { category: "invalid_input", message: "An allowed address must be an IP address or CIDR range." },
  ERR_SYNC_NOT_FOUND: { category: "not_found", message: "No sync has that id." },
  ERR_SYNC_STATE: { category: "conflict", message: "The sync is not in a state that allows this." },
  ERR_PATH_OUTSIDE_JAIL: { category: "forbidden", message: "That path is outside the district's space." },
  ERR_NOT_FOUND: { category: "not_found", message: "No such file or folder." },
  ERR_UPLOAD_TOO_LARGE: { category: "limit", message: "The upload is larger than the allowed size." },
  ERR_TOO_MANY_FILES: { category: "limit", message: "Quota exceeded: the district's folder already holds the most files allowed waiting to be processed." },
  ERR_TOO_MANY_FOLDERS: { category: "limit", message: "Quota exceeded: the district's space already holds the most folders allowed." },
  ERR_FOLDER_TOO_DEEP: { category: "limit", message: "The folder would be deeper than allowed." },
  ERR_NAME_TOO_LONG: { category: "invalid_input", message: "The name or path is longer than allowed." },
  ERR_ARCHIVE_FULL: { category: "limit", message: "Quota exceeded: the district's archive is full; an operator must prune old nights." },
  ERR_NAME_IN_USE: { category: "conflict", message: "That name is taken by a folder, or by a file that may not be replaced." },
  ERR_UNSUPPORTED: { category: "invalid_input", message: "That operation is not supported." },
  ERR_INVALID_ARGUMENT: { category: "invalid_input", message: "An argument is invalid." },
  ERR_SERVER_BUSY: { category: "unavailable", message: "The server is near its limit of open files; try again later." },
  ERR_PORT_IN_USE: { category: "unavailable", message: "A port Rosterdock needs is already in use." },
  ERR_UNAUTHENTICATED: { category: "unauthenticated", message: "A valid bearer token is required: send `Authorization: Bearer <token>`." },
  ERR_FORBIDDEN: { category: "forbidden", message: "The token does not grant access to this." },
  ERR_INVALID_SCOPE: { category: "invalid_input", message: "None of the requested scopes is known and allowed to this client." },
  ERR_TOKEN_NOT_FOUND: { category: "not_found", message: "No API token has that id or name." },
  ERR_OPERATOR_NOT_FOUND: { category: "not_found", message: "No operator has that email." },
  ERR_OPERATOR_EXISTS: { category: "conflict", message: "An operator with that email already exists." },
  ERR_ROUTE_NOT_FOUND: { category: "not_found", message: "No such route." },
  ERR_ONEROSTER_INVALID_FILTER: { category: "invalid_input", message: "The OneRoster filter is invalid or names a field that cannot be filtered." },
  ERR_ONEROSTER_INVALID_SORT: { category: "invalid_input", message: "The OneRoster sort names a field that cannot be sorted on." },
  ERR_ONEROSTER_INVALID_FIELDS: { category: "invalid_input", message: "The OneRoster fields selection names an unknown field." },
  ERR_ONEROSTER_NOT_FOUND: { category: "not_found", message: "No roster record has that sourcedId." },
  ERR_TOO_MANY_ATTEMPTS: {
    category: "throttled",
    message: "Too many failed sign-in attempts from this address; wait, or ask the operator to run `rosterdock bans clear ADDRESS`.",
  },
  ERR_BUSY: { category: "unavailable", message: "The server is checking too many credentials at once; try again in a few seconds." },
  ERR_CHROMIUM_MISSING: {
    category: "unavailable",
    message: "Printing a PDF needs Chromium: install Debian's `chromium` package or set ROSTERDOCK_CHROMIUM_PATH.",
  },
  ERR_PDF_FAILED: { category: "unavailable", message: "Chromium could not print the PDF." },
  ERR_STORED_FILE_DAMAGED: { category: "internal", message: "A stored upload does not match its recorded size or sha256; it was damaged on its way to or from storage." },
  ERR_INTERNAL: { category: "internal", message: "Something went wrong inside Rosterdock." },
} as const satisfies Record<string, { category: ErrorCategory; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class RosterdockError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message?: string, details?: Record<string, unknown>, options?: ErrorOptions) {
    super(message ?? ERROR_CATALOGUE[code].message, options);
    this.name = "RosterdockError";
    this.code = code;
    this.category = ERROR_CATALOGUE[code].category;
    this.details = details;
  }
}

export function isRosterdockError(error: unknown): error is RosterdockError {
  return error instanceof RosterdockError;
}

/** CLI exit codes, one per category (sysexits-inspired). */
export const EXIT_CODES: Record<ErrorCategory, number> = {
  invalid_input: 2,
  not_found: 3,
  conflict: 4,
  unauthenticated: 5,
  forbidden: 5,
  limit: 6,
  throttled: 6,
  unavailable: 7,
  internal: 1,
};

/**
 * `rosterdock ingest` exits by the sync's outcome, so that a script can tell an applied night from
 * one that needs a person. An error before there is an outcome (unknown district, no files) exits
 * by EXIT_CODES, with nothing on standard output even with `--json`.
 */
export const INGEST_EXIT_CODES = {
  applied: 0,
  held: 3,
  failed: 4,
} as const satisfies Record<"applied" | "held" | "failed", number>;

export const INGEST_OUTCOME_MEANINGS: Record<keyof typeof INGEST_EXIT_CODES, string> = {
  applied: "The sync was applied to the roster (also when it changed nothing).",
  held: "The sync was held by a safeguard: the roster is unchanged until `rosterdock sync approve ID` (or `sync discard ID`).",
  failed: "The sync failed (unreadable file, missing required column, too many bad rows…): the roster is unchanged; `rosterdock sync issues ID` says what to fix.",
};

/** Turns a listen failure into a message an operator can act on. */
export function listenError(error: unknown, what: string, host: string, port: number): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EADDRINUSE") {
    return new RosterdockError("ERR_PORT_IN_USE", `The ${what} port ${port} on ${host} is already in use: stop what uses it or choose another port.`, { port }, { cause: error });
  }
  if (code === "EACCES") {
    return new RosterdockError("ERR_PORT_IN_USE", `The ${what} port ${port} on ${host} needs privileges: choose a port above 1023.`, { port }, { cause: error });
  }
  return error;
}
