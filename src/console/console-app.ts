import { fileURLToPath } from "node:url";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fastifyCookie from "@fastify/cookie";
import fastifySession from "@fastify/session";
import fastifyCsrf from "@fastify/csrf-protection";
import fastifyHelmet from "@fastify/helmet";
import fastifyStatic from "@fastify/static";
import type { Rosterdock } from "../service.ts";
import type { SyncRunner } from "../api/sync-routes.ts";
import { HTTP_STATUS, toRosterdockError } from "../api/http-errors.ts";
import { RosterdockError } from "../errors.ts";
import { addressKey } from "../security/address-key.ts";
import { operatorActor, type OperatorView } from "../operators/operator-service.ts";
import { DatabaseSessionStore, SESSION_TTL_MS } from "./session-store.ts";
import { ErrorPage, type Viewer } from "./views/layout.tsx";
import { SignInPage } from "./views/sign-in-page.tsx";
import { registerDistrictPages } from "./district-pages.ts";
import { registerSyncPages } from "./sync-pages.ts";

declare module "fastify" {
  interface FastifyRequest {
    /** The operator signed in to the console (console routes only). */
    operator?: OperatorView;
  }
  interface FastifyContextConfig {
    /** A console route that needs no session: sign-in and the assets. */
    consolePublic?: boolean;
  }
}

export const SESSION_COOKIE = "rosterdock_session";
const ASSETS = fileURLToPath(new URL("./assets/", import.meta.url));

/** What console pages need from the server besides the services. */
export interface ConsoleContext {
  rd: Rosterdock;
  runner: SyncRunner;
}

/** The signed-in operator and a fresh form token, for the page's header and forms. */
export function viewer(request: FastifyRequest, reply: FastifyReply): Viewer {
  const operator = request.operator;
  if (!operator) throw new RosterdockError("ERR_UNAUTHENTICATED", "Sign in first.");
  return { email: operator.email, csrf: reply.generateCsrf() };
}

export function sendPage(reply: FastifyReply, page: string, status = 200): FastifyReply {
  return reply.code(status).type("text/html; charset=utf-8").header("cache-control", "no-store").send(page);
}

/**
 * The operator console, on the HTTP port beside the APIs. Its cookies, sessions, CSRF checks and
 * security headers are registered in this plugin's own context, so the JSON APIs, `/oauth/token`
 * and the OneRoster routes answer exactly as before.
 */
export async function registerConsole(app: FastifyInstance, context: ConsoleContext): Promise<void> {
  const { rd } = context;
  const secure = new URL(rd.config.publicUrl).protocol === "https:";
  const store = new DatabaseSessionStore(rd.database.db, rd.clock);
  const secret = await rd.settings.consoleSessionSecret();
  const prune = setInterval(() => void store.prune().catch((error: unknown) => rd.logger.warn({ err: error }, "could not prune console sessions")), 60 * 60 * 1000);
  prune.unref();
  app.addHook("onClose", async () => clearInterval(prune));

  await app.register(async (web) => {
    await web.register(fastifyHelmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", "data:"],
          connectSrc: ["'self'"],
          fontSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          ...(secure ? { upgradeInsecureRequests: [] } : {}),
        },
      },
      strictTransportSecurity: secure,
    });
    await web.register(fastifyCookie);
    await web.register(fastifySession, {
      secret,
      cookieName: SESSION_COOKIE,
      store,
      saveUninitialized: false,
      // Saved only when it changes (sign-in, a first form token), not on every page: on SQLite a
      // write would wait for a sync's apply, and the pages must stay readable while one runs.
      // A session therefore lasts SESSION_TTL_MS from sign-in.
      rolling: false,
      // `secure: false` here only because the plugin will not set a Secure cookie on a request that
      // reached it over plain HTTP, which is how a TLS-terminating proxy forwards it; the hook below
      // marks the cookie Secure whenever the public URL is https.
      cookie: { path: "/", httpOnly: true, sameSite: "lax", secure: false, maxAge: SESSION_TTL_MS },
    });
    if (secure) {
      web.addHook("onSend", async (_request, reply) => {
        const set = reply.getHeader("set-cookie");
        const cookies = set === undefined ? [] : Array.isArray(set) ? set : [String(set)];
        if (cookies.length === 0) return;
        reply.removeHeader("set-cookie");
        reply.header("set-cookie", cookies.map((c) => (c.startsWith(`${SESSION_COOKIE}=`) && !/;\s*Secure/i.test(c) ? `${c}; Secure` : c)));
      });
    }
    await web.register(fastifyCsrf, { sessionPlugin: "@fastify/session", getToken: (request) => (request.body as { _csrf?: string } | undefined)?._csrf });
    await web.register(fastifyStatic, { root: ASSETS, prefix: "/assets/", decorateReply: false, index: false, maxAge: "1h" });

    web.decorateRequest("operator", undefined);
    web.addHook("preHandler", async (request, reply) => {
      if (request.routeOptions.config.consolePublic || request.url.startsWith("/assets/")) return;
      const operatorId = request.session.operatorId;
      const operator = operatorId === undefined ? undefined : await rd.operators.activeById(operatorId);
      if (!operator) {
        if (operatorId !== undefined) await request.session.destroy();
        return reply.redirect("/sign-in", 303);
      }
      request.operator = operator;
    });

    web.setErrorHandler((error: FastifyError, request, reply) => {
      if (error.code?.startsWith("FST_CSRF")) {
        return sendPage(reply, ErrorPage({ title: "Form refused", message: "The form had no valid security token (it may have expired): go back, reload the page and try again." }), 403);
      }
      const mapped = toRosterdockError(error);
      const status = HTTP_STATUS[mapped.category];
      if (status >= 500) request.log.error({ err: error }, "console request failed");
      const retryAfter = mapped.details?.retryAfterSeconds;
      if (typeof retryAfter === "number") reply.header("retry-after", String(retryAfter));
      const signedIn = request.operator ? viewer(request, reply) : undefined;
      return sendPage(reply, ErrorPage({ title: status === 404 ? "Not found" : "Could not do that", message: mapped.message, ...(signedIn ? { viewer: signedIn } : {}) }), status);
    });

    registerSignIn(web, context);
    registerDistrictPages(web, context);
    registerSyncPages(web, context);
  });
}

function registerSignIn(web: FastifyInstance, { rd }: ConsoleContext): void {
  const window = rd.config.loginWindowSeconds * 1000;
  const perAddress = web.createRateLimit({ max: rd.config.authRatePerMinute, timeWindow: 60_000, keyGenerator: (request) => `console-address:${addressKey(request.ip)}` });
  const perEmail = web.createRateLimit({
    max: rd.config.loginMaxFailures,
    timeWindow: window,
    keyGenerator: (request) => `console-email:${String((request.body as { email?: unknown } | undefined)?.email ?? "").trim().toLowerCase()}`,
  });
  const exhausted = async (limit: typeof perAddress, request: FastifyRequest) => {
    const read = await limit(request, { increment: false });
    return !read.isAllowed && read.remaining === 0;
  };

  web.get("/sign-in", { config: { consolePublic: true }, schema: { hide: true } }, async (request, reply) => {
    if (request.session.operatorId !== undefined && (await rd.operators.activeById(request.session.operatorId))) return reply.redirect("/", 303);
    return sendPage(reply, SignInPage({ csrf: reply.generateCsrf() }));
  });

  web.post("/sign-in", { config: { consolePublic: true }, schema: { hide: true }, preValidation: web.csrfProtection }, async (request, reply) => {
    const body = (request.body ?? {}) as { email?: unknown; password?: unknown };
    const email = typeof body.email === "string" ? body.email.trim() : "";
    const password = typeof body.password === "string" ? body.password : "";
    const refuse = (status: number, error: string) => sendPage(reply, SignInPage({ csrf: reply.generateCsrf(), email, error }), status);
    const tooMany = "Too many failed sign-in attempts: wait a few minutes, then try again.";
    if ((await exhausted(perAddress, request)) || (await exhausted(perEmail, request))) {
      request.log.warn({ event: "console.sign_in_limited", ip: request.ip }, "console sign-in refused: too many failures");
      return refuse(429, tooMany);
    }
    const started = rd.defender.begin(request.ip, `console:${email.toLowerCase()}`, "http");
    if (!started.ok) {
      reply.header("retry-after", String(started.refusal.retryAfterSeconds));
      return refuse(429, tooMany);
    }
    let result;
    try {
      result = await rd.operators.signIn(email, password, request.ip);
    } catch (error) {
      started.attempt.release();
      throw error;
    }
    if (!result.ok) {
      started.attempt.fail(result.reason);
      await perAddress(request);
      await perEmail(request);
      request.log.info({ event: "console.sign_in_failed", ip: request.ip, reason: result.reason }, "console sign-in failed");
      return refuse(401, "That email and password do not match an active operator.");
    }
    started.attempt.succeed();
    // A new session id at sign-in, so an id planted before it is worth nothing.
    await request.session.regenerate();
    request.session.operatorId = result.operator.id;
    request.log.info({ event: "console.signed_in", operator: result.operator.email, ip: request.ip }, "operator signed in");
    return reply.redirect("/", 303);
  });

  web.post("/sign-out", { config: { consolePublic: true }, schema: { hide: true }, preValidation: web.csrfProtection }, async (request, reply) => {
    const operatorId = request.session.operatorId;
    if (operatorId !== undefined) {
      const operator = await rd.operators.activeById(operatorId);
      if (operator) await rd.audit.record({ actor: operatorActor(operator.email), action: "operator.signed_out", details: { email: operator.email } });
    }
    await request.session.destroy();
    return reply.redirect("/sign-in", 303);
  });
}
