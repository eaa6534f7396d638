import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { Authenticator } from "../../src/api/authenticator.ts";
import { grantScopes, normaliseScopes, rosteringScope, scopeAllows } from "../../src/tokens/token-scopes.ts";

const V1P2 = "https://purl.imsglobal.org/spec/or/v1p2/scope/";
const V1P1 = "https://purl.imsglobal.org/spec/or/v1p1/scope/";
const ROSTER = `${V1P2}roster.readonly`;
const CORE = `${V1P2}roster-core.readonly`;
const DEMOGRAPHICS = `${V1P2}roster-demographics.readonly`;
const FORM = "application/x-www-form-urlencoded";

interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** Starts the real HTTP app on 127.0.0.1 at a free port. */
async function startApp(env: Record<string, string>) {
  const dataDir = await mkdtemp(join(tmpdir(), "rosterdock-oauth-"));
  const rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir, ...env }), { logger: createLogger("silent") });
  const app = await buildHttpApp(rd, { sftpListening: () => true });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const close = async () => {
    await app.close();
    await rd.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  return { rd, app, base, close };
}

async function post(base: string, body: string | undefined, headers: Record<string, string> = { "content-type": FORM }): Promise<Answer> {
  const response = await fetch(`${base}/oauth/token`, { method: "POST", headers, ...(body === undefined ? {} : { body }) });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

const form = (parameters: Record<string, string>) => new URLSearchParams(parameters).toString();
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;

/** An RFC 6749 §5.2 refusal: the status, the error code, exactly `error` and `error_description`, never cached. */
function assertRefused(answer: Answer, status: number, error: string, description?: RegExp): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.deepEqual(Object.keys(answer.body).sort(), ["error", "error_description"], JSON.stringify(answer.body));
  assert.equal(answer.body.error, error, JSON.stringify(answer.body));
  assert.equal(typeof answer.body.error_description, "string");
  if (description) assert.match(answer.body.error_description as string, description);
  assert.equal(answer.headers.get("cache-control"), "no-store");
  assert.match(answer.headers.get("content-type") ?? "", /^application\/json/);
}

describe("POST /oauth/token: client credentials per OneRoster's security binding", () => {
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let close: () => Promise<void>;
  /** May have the whole roster (the default: core and demographics). */
  let full: Awaited<ReturnType<Rosterdock["clients"]["create"]>>;
  /** May have the core roster only. */
  let coreOnly: Awaited<ReturnType<Rosterdock["clients"]["create"]>>;

  before(async () => {
    // Failures from one address are many here, and all legitimate tests: the defender's limits are raised out of the way.
    ({ rd, app, base, close } = await startApp({
      ROSTERDOCK_AUTH_RATE_PER_MINUTE: "100000",
      ROSTERDOCK_LOGIN_MAX_FAILURES: "1000",
      ROSTERDOCK_LOGIN_MAX_ACCOUNTS: "1000",
    }));
    await rd.districts.create({ slug: "lincoln", name: "Lincoln" }, "test");
    full = await rd.clients.create({ name: "gradebook", scopes: [] }, "test");
    coreOnly = await rd.clients.create({ name: "library", scopes: [CORE] }, "test");
  });

  after(() => close());

  const grant = (client: { clientId: string; clientSecret: string }, scope?: string) =>
    post(base, form({ grant_type: "client_credentials", ...(scope === undefined ? {} : { scope }) }), { authorization: basic(client.clientId, client.clientSecret), "content-type": FORM });

  /** A granted token: 200, no-store, and the scopes it holds. */
  async function assertGranted(answer: Answer, scope: string, stored: string[]): Promise<string> {
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(Object.keys(answer.body).sort(), ["access_token", "expires_in", "scope", "token_type"]);
    assert.equal(answer.body.token_type, "Bearer");
    assert.equal(answer.body.expires_in, 3600);
    assert.equal(answer.body.scope, scope);
    assert.equal(answer.headers.get("cache-control"), "no-store");
    assert.equal(answer.headers.get("pragma"), "no-cache");
    const token = answer.body.access_token as string;
    assert.deepEqual((await rd.tokens.verify(token))?.scopes, stored);
    return token;
  }

  it("grants each OneRoster 1.2 scope URI, answering in the same spelling", async () => {
    assert.deepEqual(full.scopes, ["roster.readonly"], "a client gets the whole roster by default");
    await assertGranted(await grant(full, ROSTER), ROSTER, ["roster.readonly"]);
    await assertGranted(await grant(full, CORE), CORE, ["roster-core.readonly"]);
    await assertGranted(await grant(full, DEMOGRAPHICS), DEMOGRAPHICS, ["roster-demographics.readonly"]);
    await assertGranted(await grant(full, `${CORE} ${DEMOGRAPHICS}`), `${CORE} ${DEMOGRAPHICS}`, ["roster.readonly"]);
    await assertGranted(await grant(full, `${ROSTER} ${CORE}`), `${ROSTER} ${CORE}`, ["roster.readonly"]);
    await assertGranted(await grant(full, `${V1P1}roster-core.readonly`), `${V1P1}roster-core.readonly`, ["roster-core.readonly"]);
    await assertGranted(await grant(full, `${V1P1}roster.readonly`), `${V1P1}roster.readonly`, ["roster.readonly"]);
    await assertGranted(await grant(full, "roster-demographics.readonly"), "roster-demographics.readonly", ["roster-demographics.readonly"]);
    await assertGranted(await grant(full, "roster.readonly"), "roster.readonly", ["roster.readonly"]);
  });

  it("without a scope grants all the client's scopes", async () => {
    await assertGranted(await grant(full), "roster.readonly", ["roster.readonly"]);
    await assertGranted(await grant(coreOnly), "roster-core.readonly", ["roster-core.readonly"]);
    // Sent empty, a parameter counts as omitted (RFC 6749 §3.1).
    await assertGranted(await grant(coreOnly, ""), "roster-core.readonly", ["roster-core.readonly"]);
  });

  it("grants the intersection of the scopes asked for with the client's, and refuses an empty one with invalid_scope", async () => {
    // The whole roster asked of a core-only client: the core half, named as it was asked.
    await assertGranted(await grant(coreOnly, ROSTER), CORE, ["roster-core.readonly"]);
    await assertGranted(await grant(coreOnly, `${V1P1}roster.readonly`), `${V1P1}roster-core.readonly`, ["roster-core.readonly"]);
    await assertGranted(await grant(coreOnly, "roster.readonly"), "roster-core.readonly", ["roster-core.readonly"]);
    await assertGranted(await grant(coreOnly, `${CORE} ${DEMOGRAPHICS}`), CORE, ["roster-core.readonly"]);
    // Unknown scopes are left out of the grant, not refused.
    await assertGranted(await grant(full, `${CORE} https://purl.imsglobal.org/spec/or/v1p2/scope/gradebook.readonly`), CORE, ["roster-core.readonly"]);

    assertRefused(await grant(coreOnly, DEMOGRAPHICS), 400, "invalid_scope", /roster-core\.readonly/);
    assertRefused(await grant(full, "admin"), 400, "invalid_scope");
    assertRefused(await grant(full, "gradebook.readonly"), 400, "invalid_scope");
    assertRefused(await grant(full, `${ROSTER} ma"lformed`), 400, "invalid_scope", /RFC 6749 §3\.3/);
  });

  it("an admin client may ask for the roster only, or for admin", async () => {
    const ops = await rd.clients.create({ name: "ops", scopes: ["admin"] }, "test");
    await assertGranted(await grant(ops, ROSTER), ROSTER, ["roster.readonly"]);
    await assertGranted(await grant(ops, "admin"), "admin", ["admin"]);
    await assertGranted(await grant(ops), "admin", ["admin"]);
  });

  it("takes the credentials by HTTP Basic, from the form body, or from a JSON body", async () => {
    await assertGranted(await grant(full, CORE), CORE, ["roster-core.readonly"]);
    const body = { grant_type: "client_credentials", client_id: full.clientId, client_secret: full.clientSecret, scope: CORE };
    await assertGranted(await post(base, form(body)), CORE, ["roster-core.readonly"]);
    await assertGranted(await post(base, JSON.stringify(body), { "content-type": "application/json" }), CORE, ["roster-core.readonly"]);
    // The content type's parameters and a client_id repeating Basic's user name are fine.
    await assertGranted(await post(base, form(body), { "content-type": `${FORM}; charset=UTF-8` }), CORE, ["roster-core.readonly"]);
    await assertGranted(
      await post(base, form({ grant_type: "client_credentials", client_id: full.clientId }), { authorization: basic(full.clientId, full.clientSecret), "content-type": FORM }),
      "roster.readonly",
      ["roster.readonly"],
    );
  });

  it("refuses an unknown client or a wrong secret with invalid_client (401, WWW-Authenticate)", async () => {
    for (const answer of [
      await post(base, form({ grant_type: "client_credentials", client_id: full.clientId, client_secret: "wrong" })),
      await post(base, form({ grant_type: "client_credentials" }), { authorization: basic(full.clientId, "wrong"), "content-type": FORM }),
      await post(base, form({ grant_type: "client_credentials", client_id: "rdc_nobody", client_secret: full.clientSecret })),
      // No client authentication at all, or an authentication method other than Basic.
      await post(base, form({ grant_type: "client_credentials" })),
      await post(base, form({ grant_type: "client_credentials", client_id: full.clientId, client_secret: full.clientSecret }), { authorization: "Bearer abc", "content-type": FORM }),
    ]) {
      assertRefused(answer, 401, "invalid_client");
      assert.match(answer.headers.get("www-authenticate") ?? "", /^Basic realm=/);
    }
  });

  it("refuses a grant other than client_credentials with unsupported_grant_type", async () => {
    for (const grant_type of ["password", "authorization_code", "refresh_token", "CLIENT_CREDENTIALS"]) {
      assertRefused(await post(base, form({ grant_type, client_id: full.clientId, client_secret: full.clientSecret })), 400, "unsupported_grant_type");
    }
  });

  it("refuses a malformed request with invalid_request, never a 500 nor the admin API's error body", async (t) => {
    const credentials = { client_id: full.clientId, client_secret: full.clientSecret };
    const cases: [string, Promise<Answer>][] = [
      ["no grant_type", post(base, form(credentials))],
      ["grant_type empty", post(base, form({ grant_type: "", ...credentials }))],
      ["no body at all", post(base, undefined, { authorization: basic(full.clientId, full.clientSecret) })],
      ["an empty form", post(base, "")],
      ["client_id without a secret", post(base, form({ grant_type: "client_credentials", client_id: full.clientId }))],
      ["a secret without client_id", post(base, form({ grant_type: "client_credentials", client_secret: full.clientSecret }))],
      ["grant_type twice", post(base, `grant_type=client_credentials&grant_type=client_credentials&client_id=${full.clientId}&client_secret=${full.clientSecret}`)],
      ["scope twice", post(base, `grant_type=client_credentials&scope=${encodeURIComponent(CORE)}&scope=${encodeURIComponent(CORE)}`, { authorization: basic(full.clientId, full.clientSecret), "content-type": FORM })],
      ["Basic and a secret in the body", post(base, form({ grant_type: "client_credentials", ...credentials }), { authorization: basic(full.clientId, full.clientSecret), "content-type": FORM })],
      ["Basic and another client_id", post(base, form({ grant_type: "client_credentials", client_id: coreOnly.clientId }), { authorization: basic(full.clientId, full.clientSecret), "content-type": FORM })],
      ["Basic that is not base64", post(base, form({ grant_type: "client_credentials" }), { authorization: "Basic not*base64!", "content-type": FORM })],
      ["Basic without a colon", post(base, form({ grant_type: "client_credentials" }), { authorization: `Basic ${Buffer.from(full.clientId).toString("base64")}`, "content-type": FORM })],
      ["Basic with bad percent-encoding", post(base, form({ grant_type: "client_credentials" }), { authorization: `Basic ${Buffer.from(`${full.clientId}:%E0%A4%A`).toString("base64")}`, "content-type": FORM })],
      ["Basic with nothing after it", post(base, form({ grant_type: "client_credentials" }), { authorization: "Basic", "content-type": FORM })],
      ["a text/plain body", post(base, form({ grant_type: "client_credentials", ...credentials }), { "content-type": "text/plain" })],
      ["an XML body", post(base, "<grant_type>client_credentials</grant_type>", { "content-type": "application/xml" })],
      ["JSON that does not parse", post(base, "{grant_type:", { "content-type": "application/json" })],
      ["a JSON array", post(base, JSON.stringify([{ grant_type: "client_credentials", ...credentials }]), { "content-type": "application/json" })],
      ["a JSON number for grant_type", post(base, JSON.stringify({ grant_type: 1, ...credentials }), { "content-type": "application/json" })],
      ["a JSON string as the body", post(base, JSON.stringify("grant_type=client_credentials"), { "content-type": "application/json" })],
    ];
    for (const [name, answer] of cases) {
      await t.test(name, async () => assertRefused(await answer, 400, "invalid_request"));
    }
    const get = await fetch(`${base}/oauth/token?grant_type=client_credentials`);
    assertRefused({ status: get.status, headers: get.headers, body: await get.json() }, 405, "invalid_request", /POST/);
    assert.equal(get.headers.get("allow"), "POST");
  });

  it("the scopes a token holds decide what it reads: core, demographics, or both", async () => {
    const coreToken = await assertGranted(await grant(full, CORE), CORE, ["roster-core.readonly"]);
    const demographicsToken = await assertGranted(await grant(full, DEMOGRAPHICS), DEMOGRAPHICS, ["roster-demographics.readonly"]);
    const rosterToken = await assertGranted(await grant(full, ROSTER), ROSTER, ["roster.readonly"]);
    const get = (path: string, token: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    const orgs = "/districts/lincoln/ims/oneroster/rostering/v1p2/orgs";
    const changes = "/api/v1/districts/lincoln/changes";
    assert.equal(await get(orgs, coreToken), 200);
    assert.equal(await get(orgs, rosterToken), 200);
    assert.equal(await get(orgs, demographicsToken), 403, "demographics alone do not read the core roster");
    // The change feed carries every roster change: it needs the whole roster.
    assert.equal(await get(changes, rosterToken), 200);
    assert.equal(await get(changes, coreToken), 403);
    assert.equal(await get(changes, demographicsToken), 403);

    // What the demographics routes require, checked by the authenticator the API uses.
    const auth = new Authenticator(rd.tokens, rd.defender);
    const request = (token: string) => ({ headers: { authorization: `Bearer ${token}` }, ip: "127.0.0.1", log: createLogger("silent") }) as unknown as FastifyRequest;
    const demographics = rosteringScope("/districts/:slug/ims/oneroster/rostering/v1p2/demographics/:id");
    assert.equal(demographics, "roster-demographics.readonly");
    await assert.rejects(auth.require(request(coreToken), demographics, "lincoln"), (error: { code?: string }) => error.code === "ERR_FORBIDDEN");
    assert.equal((await auth.require(request(demographicsToken), demographics, "lincoln")).name, "gradebook");
    assert.equal((await auth.require(request(rosterToken), demographics, "lincoln")).name, "gradebook");
    const operator = (await rd.tokens.create("ops", ["admin"], "test")).token;
    assert.equal((await auth.require(request(operator), demographics, "lincoln")).name, "ops");
  });

  it("the admin API creates clients with scope URIs, stored as short names", async () => {
    const admin = (await rd.tokens.create("ops-clients", ["admin"], "test")).token;
    const create = (body: unknown) =>
      fetch(`${base}/api/v1/clients`, { method: "POST", headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const created = await create({ name: "reports", scopes: [CORE, "roster-demographics.readonly"] });
    assert.equal(created.status, 201);
    const client = await created.json();
    assert.deepEqual(client.scopes, ["roster.readonly"]);
    const row = await rd.database.db.selectFrom("oauth_clients").select("scopes").where("client_id", "=", client.clientId).executeTakeFirstOrThrow();
    assert.deepEqual(JSON.parse(row.scopes), ["roster.readonly"]);
    const refused = await create({ name: "reports", scopes: [`${V1P2}gradebook.readonly`] });
    assert.equal(refused.status, 400);
    assert.equal((await refused.json()).error.code, "ERR_INVALID_ARGUMENT");
  });

  it("documents /oauth/token in the OpenAPI document with its OAuth refusals", async () => {
    const doc = await (await fetch(`${base}/api/v1/openapi.json`)).json();
    const operation = doc.paths["/oauth/token"].post;
    assert.ok(operation.requestBody.content["application/json"] ?? operation.requestBody.content[FORM]);
    for (const status of ["400", "401", "429"]) assert.ok(operation.responses[status], `${status} documented`);
    assert.ok(app.hasRoute({ method: "POST", url: "/oauth/token" }));
  });
});

describe("POST /oauth/token when an address asks too often", () => {
  it("answers 429 with an OAuth error body, no-store and Retry-After", async () => {
    const { rd, base, close } = await startApp({ ROSTERDOCK_AUTH_RATE_PER_MINUTE: "2" });
    try {
      const client = await rd.clients.create({ name: "gradebook", scopes: [] }, "test");
      const body = form({ grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret });
      assert.equal((await post(base, body)).status, 200);
      assert.equal((await post(base, body)).status, 200);
      const limited = await post(base, body);
      assertRefused(limited, 429, "temporarily_unavailable", /Too many requests/);
      assert.match(limited.headers.get("retry-after") ?? "", /^\d+$/);
    } finally {
      await close();
    }
  });
});

describe("token scopes", () => {
  it("roster.readonly is core and demographics; admin is everything", () => {
    assert.equal(scopeAllows(["roster.readonly"], "roster-core.readonly"), true);
    assert.equal(scopeAllows(["roster.readonly"], "roster-demographics.readonly"), true);
    assert.equal(scopeAllows(["roster-core.readonly"], "roster.readonly"), false);
    assert.equal(scopeAllows(["roster-core.readonly", "roster-demographics.readonly"], "roster.readonly"), true);
    assert.equal(scopeAllows(["roster-core.readonly"], "roster-demographics.readonly"), false);
    assert.equal(scopeAllows(["roster-demographics.readonly"], "roster-core.readonly"), false);
    assert.equal(scopeAllows(["roster.readonly"], "admin"), false);
    for (const needed of ["admin", "roster.readonly", "roster-core.readonly", "roster-demographics.readonly"] as const) assert.equal(scopeAllows(["admin"], needed), true);
  });

  it("normalises operators' scopes to short names, and refuses unknown ones", () => {
    assert.deepEqual(normaliseScopes([ROSTER]), ["roster.readonly"]);
    assert.deepEqual(normaliseScopes([`${V1P1}roster-demographics.readonly`]), ["roster-demographics.readonly"]);
    assert.deepEqual(normaliseScopes([`${CORE} ${DEMOGRAPHICS}`]), ["roster.readonly"]);
    assert.deepEqual(normaliseScopes(["roster.readonly", "admin", ROSTER]), ["admin", "roster.readonly"]);
    assert.throws(() => normaliseScopes(["roster.write"]), (error: { code?: string; message: string }) => error.code === "ERR_INVALID_ARGUMENT" && /roster\.write/.test(error.message));
    assert.throws(() => normaliseScopes([`${V1P2}admin`]), (error: { code?: string }) => error.code === "ERR_INVALID_ARGUMENT");
    assert.throws(() => normaliseScopes([]), (error: { code?: string }) => error.code === "ERR_INVALID_ARGUMENT");
  });

  it("grants in the spelling asked for, without repeats", () => {
    assert.deepEqual(grantScopes([ROSTER, ROSTER], ["roster.readonly"]), { scopes: ["roster.readonly"], scope: ROSTER });
    assert.deepEqual(grantScopes([ROSTER, CORE], ["roster-core.readonly"]), { scopes: ["roster-core.readonly"], scope: CORE });
    assert.deepEqual(grantScopes([DEMOGRAPHICS], ["roster-core.readonly"]), undefined);
    assert.deepEqual(grantScopes([], ["roster.readonly"]), undefined);
  });

  it("demographics routes need the demographics scope, every other rostering route the core scope", () => {
    assert.equal(rosteringScope("/districts/:slug/ims/oneroster/rostering/v1p2/demographics"), "roster-demographics.readonly");
    assert.equal(rosteringScope("/districts/:slug/ims/oneroster/v1p1/demographics/:id"), "roster-demographics.readonly");
    assert.equal(rosteringScope("/districts/:slug/ims/oneroster/rostering/v1p2/users/:id"), "roster-core.readonly");
    assert.equal(rosteringScope("/districts/:slug/ims/oneroster/rostering/v1p2/classes/:id/students"), "roster-core.readonly");
  });
});
