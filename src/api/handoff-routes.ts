import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Rosterdock } from "../service.ts";
import { addressKey } from "../security/address-key.ts";
import { HANDOFF_PAGE_CSP, renderHandoffPage, renderHandoffProblem } from "../handoffs/handoff-page.ts";
import type { HandoffVisit } from "../handoffs/handoff-service.ts";

/** Sent with every answer under /handoff/: the page holds a password, so nothing may keep, frame or pass it on. */
const HEADERS: Record<string, string> = {
  "cache-control": "no-store",
  pragma: "no-cache",
  "referrer-policy": "no-referrer",
  "content-security-policy": HANDOFF_PAGE_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "x-robots-tag": "noindex, nofollow",
};

/**
 * `GET /handoff/:token` shows a credentials link's page with a Reveal button (a form POST), so a
 * link previewer that only GETs never uses it up; `POST /handoff/:token`, whatever its body,
 * reveals. The link is the secret: no cookie, session or CSRF token. Unknown links count against
 * the client's address (`ROSTERDOCK_AUTH_RATE_PER_MINUTE`), answered 429 past it.
 */
export async function registerHandoffRoutes(app: FastifyInstance, rd: Rosterdock): Promise<void> {
  const unknownLinks = app.createRateLimit({ max: rd.config.authRatePerMinute, timeWindow: 60_000, keyGenerator: (request) => `handoff:${addressKey(request.ip)}` });

  const answer = async (request: FastifyRequest<{ Params: { token: string } }>, reply: FastifyReply, visit: (token: string, address: string) => Promise<HandoffVisit>) => {
    const limit = await unknownLinks(request, { increment: false });
    if (!limit.isAllowed && limit.remaining === 0) {
      // The path holds a token: it is never logged.
      request.log.warn({ event: "handoff.rate_limited", ip: request.ip }, "credentials link refused: too many unknown links from one address");
      const seconds = Math.max(1, Math.ceil(limit.ttl / 1000));
      return reply.code(429).header("retry-after", String(seconds)).type("text/html; charset=utf-8").send(renderHandoffProblem(429, `Too many unknown links were tried from your address. Try again in ${seconds} seconds.`));
    }
    // Read before the visit: nothing that could fail stands between using the link up and showing it.
    const address = await rd.settings.address(rd.config);
    const connection = { host: address.sftpHost, port: address.sftpPort, hostKeys: await rd.hostKeys() };
    const found = await visit(request.params.token, request.ip);
    if (found.state === "unknown") await unknownLinks(request);
    const { status, html } = renderHandoffPage(found, connection);
    return reply.code(status).type("text/html; charset=utf-8").send(html);
  };

  await app.register(async (scope) => {
    scope.addHook("onRequest", async (_request, reply) => {
      reply.headers(HEADERS);
    });
    // The Reveal button posts an empty form; any body (or none, or another type) is read and ignored.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: 4096 }, (_request, _body, done) => done(null, undefined));
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
      if (status >= 500) request.log.error({ event: "handoff.failed", err: error }, "a credentials link request failed");
      return reply.code(status).type("text/html; charset=utf-8").send(renderHandoffProblem(status, status >= 500 ? "The page could not be shown. Try again in a moment." : "That request cannot be answered."));
    });
    const route = { schema: { hide: true } };
    scope.get<{ Params: { token: string } }>("/handoff/:token", route, (request, reply) => answer(request, reply, (token, address) => rd.handoffs.inspect(token, address)));
    scope.post<{ Params: { token: string } }>("/handoff/:token", route, (request, reply) => answer(request, reply, (token, address) => rd.handoffs.reveal(token, address)));
  });
}
