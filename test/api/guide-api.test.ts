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
import { requireTool } from "../support/sftp-client.ts";

const missingChromium = requireTool("/usr/bin/chromium", ["--version"]);

describe("GET /api/v1/districts/{slug}/guide", () => {
  let dataDir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let admin: string;
  let reader: string;
  let password: string;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "rosterdock-guide-api-"));
    rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_PUBLIC_HOST: "sftp.example.org", ROSTERDOCK_SFTP_PORT: "2222" }), { logger: createLogger("silent") });
    app = await buildHttpApp(rd, { sftpListening: () => true });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    admin = (await rd.tokens.create("ops", ["admin"], "test")).token;
    reader = (await rd.tokens.create("app", ["roster.readonly"], "test")).token;
    password = (await rd.districts.create({ slug: "lincoln", name: "Lincoln Unified", allowIps: [] }, "test")).password;
  });

  after(async () => {
    await app.close();
    await rd.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const get = (path: string, token?: string) => fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it("needs an admin token: 401 without one, 403 with a roster token", async () => {
    const none = await get("/api/v1/districts/lincoln/guide");
    assert.equal(none.status, 401);
    assert.equal((await none.json()).error.code, "ERR_UNAUTHENTICATED");
    const forbidden = await get("/api/v1/districts/lincoln/guide", reader);
    assert.equal(forbidden.status, 403);
    assert.equal((await forbidden.json()).error.code, "ERR_FORBIDDEN");
  });

  it("serves the guide as HTML (the default) and Markdown, with its file name, never the password", async () => {
    const keys = await rd.hostKeys();
    for (const [query, type, extension] of [
      ["", "text/html; charset=utf-8", "html"],
      ["?format=html", "text/html; charset=utf-8", "html"],
      ["?format=md", "text/markdown; charset=utf-8", "md"],
    ] as const) {
      const response = await get(`/api/v1/districts/lincoln/guide${query}`, admin);
      assert.equal(response.status, 200, query);
      assert.equal(response.headers.get("content-type"), type);
      assert.equal(response.headers.get("content-disposition"), `attachment; filename="setup-guide-lincoln.${extension}"`);
      assert.match(response.headers.get("content-security-policy") ?? "", /default-src 'none'/);
      const body = await response.text();
      assert.ok(body.includes("sftp.example.org") && body.includes("2222"));
      for (const key of keys) assert.ok(body.includes(key.sha256) && body.includes(key.md5), key.algorithm);
      assert.equal(body.includes(password), false);
    }
  });

  it("serves a PDF printed by Chromium, one at a time when several are asked for at once", { skip: missingChromium }, async () => {
    const [response, other] = await Promise.all([get("/api/v1/districts/lincoln/guide?format=pdf", admin), get("/api/v1/districts/lincoln/guide?format=pdf", admin)]);
    assert.equal(other.status, 200);
    assert.equal(Buffer.from(await other.arrayBuffer()).subarray(0, 5).toString("latin1"), "%PDF-");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/pdf");
    assert.equal(response.headers.get("content-disposition"), 'attachment; filename="setup-guide-lincoln.pdf"');
    assert.equal(Buffer.from(await response.arrayBuffer()).subarray(0, 5).toString("latin1"), "%PDF-");
  });

  it("refuses an unknown format (400) and an unknown district (404)", async () => {
    const format = await get("/api/v1/districts/lincoln/guide?format=docx", admin);
    assert.equal(format.status, 400);
    assert.equal((await format.json()).error.code, "ERR_INVALID_ARGUMENT");
    const unknown = await get("/api/v1/districts/nowhere/guide", admin);
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).error.code, "ERR_DISTRICT_NOT_FOUND");
  });

  it("answers 503 naming Debian's chromium package when the configured Chromium is missing", async () => {
    const other = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir, ROSTERDOCK_CHROMIUM_PATH: "/nonexistent/chromium" }), { logger: createLogger("silent") });
    const otherApp = await buildHttpApp(other, { sftpListening: () => true });
    try {
      const response = await otherApp.inject({ method: "GET", url: "/api/v1/districts/lincoln/guide?format=pdf", headers: { authorization: `Bearer ${admin}` } });
      assert.equal(response.statusCode, 503);
      const body = response.json();
      assert.equal(body.error.code, "ERR_CHROMIUM_MISSING");
      assert.match(body.error.message, /`chromium` package/);
    } finally {
      await otherApp.close();
      await other.close();
    }
  });
});
