import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";

describe("admin API", () => {
  let dataDir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let admin: string;
  let reader: string;
  const routes: { method: string; url: string; hidden: boolean }[] = [];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "rosterdock-api-"));
    rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_PUBLIC_HOST: "sftp.example.org", ROSTERDOCK_SFTP_PORT: "2222" }), { logger: createLogger("silent") });
    app = await buildHttpApp(rd, {
      sftpListening: () => true,
      onRoute: (route) => {
        for (const method of [route.method].flat()) routes.push({ method, url: route.url, hidden: Boolean((route.schema as { hide?: boolean } | undefined)?.hide) });
      },
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    admin = (await rd.tokens.create("ops", ["admin"], "test")).token;
    reader = (await rd.tokens.create("app", ["roster.readonly"], "test")).token;
  });

  after(async () => {
    await app.close();
    await rd.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const call = (method: string, path: string, token?: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });

  it("refuses requests without a valid token (401) or without the admin scope (403)", async () => {
    const none = await call("GET", "/api/v1/districts");
    assert.equal(none.status, 401);
    assert.equal((await none.json()).error.code, "ERR_UNAUTHENTICATED");
    assert.match(none.headers.get("www-authenticate") ?? "", /Bearer/);
    const wrong = await call("GET", "/api/v1/districts", "rdk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert.equal(wrong.status, 401);
    const forbidden = await call("GET", "/api/v1/districts", reader);
    assert.equal(forbidden.status, 403);
    assert.equal((await forbidden.json()).error.code, "ERR_FORBIDDEN");
  });

  it("creates, shows, updates, rotates and disables districts", async () => {
    const created = await call("POST", "/api/v1/districts", admin, { slug: "lincoln", name: "Lincoln Unified" });
    assert.equal(created.status, 201);
    const body = await created.json();
    assert.equal(body.sftp.host, "sftp.example.org");
    assert.equal(body.sftp.port, 2222);
    assert.match(body.sftp.password, /^[A-Za-z0-9_-]{20,}$/);
    assert.equal(body.hostKeys.length, 3);

    const again = await call("POST", "/api/v1/districts", admin, { slug: "lincoln", name: "x" });
    assert.equal(again.status, 409);
    assert.equal((await again.json()).error.code, "ERR_DISTRICT_EXISTS");
    const invalid = await call("POST", "/api/v1/districts", admin, { slug: "Not A Slug", name: "x" });
    assert.equal(invalid.status, 400);
    const missing = await call("POST", "/api/v1/districts", admin, { name: "x" });
    assert.equal(missing.status, 400);
    assert.equal((await missing.json()).error.code, "ERR_INVALID_ARGUMENT");

    const updated = await call("PATCH", "/api/v1/districts/lincoln", admin, { allowIps: ["198.51.100.0/24"] });
    assert.deepEqual((await updated.json()).allowIps, ["198.51.100.0/24"]);
    const guarded = await (await call("PATCH", "/api/v1/districts/lincoln", admin, { safeguards: { deletePercent: 5, changeMinRows: 100 } })).json();
    assert.deepEqual(guarded.safeguards, { deletePercent: 5, changeMinRows: 100 });
    assert.deepEqual(guarded.allowIps, ["198.51.100.0/24"], "other settings stay");
    const cleared = await (await call("PATCH", "/api/v1/districts/lincoln", admin, { safeguards: { deletePercent: null } })).json();
    assert.deepEqual(cleared.safeguards, { changeMinRows: 100 });
    assert.equal((await call("PATCH", "/api/v1/districts/lincoln", admin, { safeguards: { deletePercent: 101 } })).status, 400);
    const shown = await (await call("GET", "/api/v1/districts/lincoln", admin)).json();
    assert.equal(shown.slug, "lincoln");
    assert.equal("password" in shown, false);
    const rotated = await (await call("POST", "/api/v1/districts/lincoln/rotate-password", admin)).json();
    assert.notEqual(rotated.sftp.password, body.sftp.password);
    assert.match(body.credentialsLink, /\/handoff\/[A-Za-z0-9_-]{43}$/);
    assert.match(rotated.credentialsLink, /\/handoff\/[A-Za-z0-9_-]{43}$/);
    assert.notEqual(rotated.credentialsLink, body.credentialsLink);
    const renewed = await (await call("POST", "/api/v1/districts/lincoln/new-link", admin)).json();
    assert.equal(renewed.sftp.password, undefined, "a new link, not the password");
    assert.equal(renewed.sftp.username, "lincoln");
    assert.match(renewed.credentialsLink, /\/handoff\/[A-Za-z0-9_-]{43}$/);
    assert.notEqual(renewed.credentialsLink, rotated.credentialsLink);
    assert.deepEqual(await (await call("POST", "/api/v1/districts/lincoln/revoke-link", admin)).json(), { slug: "lincoln", revoked: 1 });
    assert.deepEqual(await (await call("POST", "/api/v1/districts/lincoln/revoke-link", admin)).json(), { slug: "lincoln", revoked: 0 });
    assert.equal((await (await call("POST", "/api/v1/districts/lincoln/disable", admin)).json()).status, "disabled");
    const unknown = await call("GET", "/api/v1/districts/nowhere", admin);
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, "ERR_DISTRICT_NOT_FOUND");
  });

  it("lists syncs and host keys as the CLI does", async () => {
    await rd.districts.create({ slug: "madison", name: "Madison" }, "test");
    assert.deepEqual(await (await call("GET", "/api/v1/districts/madison/syncs", admin)).json(), await rd.syncs.list("madison"));
    const keys = await (await call("GET", "/api/v1/host-keys", admin)).json();
    assert.deepEqual(keys.map((k: { algorithm: string }) => k.algorithm), ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]);
  });

  it("publishes a valid OpenAPI document listing every admin route, and a reference page", async () => {
    const doc = await (await call("GET", "/api/v1/openapi.json")).json();
    const { validate } = await import("@readme/openapi-parser");
    const result = await validate(structuredClone(doc));
    assert.equal(result.valid, true, JSON.stringify(result));
    const listed = Object.entries(doc.paths as Record<string, object>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    for (const expected of [
      "GET /api/v1/districts",
      "POST /api/v1/districts",
      "GET /api/v1/districts/{slug}",
      "PATCH /api/v1/districts/{slug}",
      "POST /api/v1/districts/{slug}/rotate-password",
      "POST /api/v1/districts/{slug}/disable",
      "GET /api/v1/districts/{slug}/syncs",
      "GET /api/v1/host-keys",
      "POST /api/v1/tokens",
      "GET /api/v1/tokens",
      "DELETE /api/v1/tokens/{token}",
      "POST /api/v1/webhooks",
      "GET /api/v1/webhooks/deliveries",
      "POST /api/v1/webhooks/deliveries/{id}/resend",
      "POST /api/v1/clients",
      "POST /oauth/token",
      "GET /api/v1/districts/{slug}/changes",
      "GET /districts/{slug}/ims/oneroster/rostering/v1p2/students",
      "GET /districts/{slug}/ims/oneroster/rostering/v1p2/classes/{id}/students",
      "GET /districts/{slug}/ims/oneroster/rostering/v1p2/terms/{id}/classes",
    ]) {
      assert.ok(listed.includes(expected), `${expected} in ${listed.join(", ")}`);
    }
    // Every route the app serves is in the document, but for the document itself, its page, health and home.
    for (const route of routes) {
      if (route.hidden || route.url.startsWith("/api/v1/docs") || route.method === "HEAD") continue;
      const path = route.url.replace(/:(\w+)/g, "{$1}");
      assert.ok(listed.includes(`${route.method} ${path}`), `${route.method} ${path} is missing from the OpenAPI document`);
    }
    assert.ok(routes.length > 40);
    const page = await call("GET", "/api/v1/docs/");
    assert.equal(page.status, 200);
    assert.match(await page.text(), /swagger/i);
  });
});
