import type { FastifyError, FastifyInstance } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { RosterdockError, isRosterdockError, type ErrorCategory } from "../errors.ts";

/** The one place error categories become HTTP status codes. */
export const HTTP_STATUS: Record<ErrorCategory, number> = {
  invalid_input: 400,
  not_found: 404,
  conflict: 409,
  unauthenticated: 401,
  forbidden: 403,
  limit: 413,
  throttled: 429,
  unavailable: 503,
  internal: 500,
};

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Admin API errors: `{"error":{"code","message"}}` with the catalogue's code. OneRoster routes map their own body. */
export function registerErrorHandler(app: FastifyInstance, render: (error: RosterdockError, status: number, url: string) => unknown = defaultBody): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const mapped = toRosterdockError(error);
    const status = HTTP_STATUS[mapped.category];
    // A full hash queue is logged once a second by the pool, not once per refused request.
    if (status >= 500 && mapped.code !== "ERR_BUSY") request.log.error({ err: error }, "request failed");
    if (mapped.code === "ERR_UNAUTHENTICATED") reply.header("www-authenticate", 'Bearer realm="rosterdock"');
    const retryAfter = mapped.details?.retryAfterSeconds;
    if (typeof retryAfter === "number") reply.header("retry-after", String(retryAfter));
    return reply.code(status).send(render(mapped, status, request.url));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new RosterdockError("ERR_ROUTE_NOT_FOUND", `No route ${request.method} ${request.url.split("?")[0]}.`);
    return reply.code(404).send(render(error, 404, request.url));
  });
}

function defaultBody(error: RosterdockError): ErrorBody {
  return { error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } };
}

export function toRosterdockError(error: FastifyError | Error): RosterdockError {
  if (isRosterdockError(error)) return error;
  if (hasZodFastifySchemaValidationErrors(error)) {
    const problems = error.validation.map((v) => `${v.instancePath || "request"} ${v.message}`);
    return new RosterdockError("ERR_INVALID_ARGUMENT", `Invalid request: ${problems.join("; ")}.`, { problems });
  }
  const status = (error as FastifyError).statusCode;
  if (status && status < 500) return new RosterdockError("ERR_INVALID_ARGUMENT", error.message);
  return new RosterdockError("ERR_INTERNAL", undefined, undefined, { cause: error });
}
