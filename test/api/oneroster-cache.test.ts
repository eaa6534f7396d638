import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";

for (const backend of selectedBackends()) describe(`OneRoster responses per roster version (${backend.name})`, { skip: backend.skip }, () => {
  const homes = new BackendHomes(backend.name);
  let home: BackendHome | undefined;
  let dir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let url: string;
  let token: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "rosterdock-cache-"));
    rd = await createRosterdock(loadConfig({ ...(home = await homes.create()).env }), { logger: createLogger("silent") });
    app = await buildHttpApp(rd, { sftpListening: () => true });
    await app.listen({ host: "127.0.0.1", port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/districts/lincoln/ims/oneroster/rostering/v1p2/students?limit=5&sort=familyName`;
    token = (await rd.tokens.create("app", ["roster.readonly"], "test")).token;
    await rd.districts.create({ slug: "lincoln", name: "Lincoln" }, "test");
    const night = await generateDemoData(join(dir, "n1"), { students: 150, teachers: 10, styles: ["canonical"] });
    assert.equal((await rd.syncs.ingest("lincoln", night.files.canonical)).status, "applied");
  });

  after(async () => {
    await app.close();
    await rd.close();
    await home?.remove();
    await homes.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers a repeated request identically with an ETag, 304 to a client that has it, and anew after a sync", async () => {
    const auth = { authorization: `Bearer ${token}` };
    const first = await fetch(url, { headers: auth });
    const second = await fetch(url, { headers: auth });
    const etag = first.headers.get("etag");
    assert.ok(etag);
    assert.equal(second.headers.get("etag"), etag);
    assert.equal(second.headers.get("x-total-count"), first.headers.get("x-total-count"));
    assert.equal(second.headers.get("link"), first.headers.get("link"));
    assert.equal(await second.text(), await first.text());
    assert.equal((await fetch(url, { headers: { ...auth, "if-none-match": etag } })).status, 304);
    assert.equal((await fetch(url, { headers: {} })).status, 401, "a cached page still needs a token");

    const night2 = await generateDemoData(join(dir, "n2"), { students: 150, teachers: 10, styles: ["canonical"], night: 2 });
    assert.equal((await rd.syncs.ingest("lincoln", night2.files.canonical)).status, "applied");
    const after = await fetch(url, { headers: { ...auth, "if-none-match": etag } });
    assert.equal(after.status, 200);
    assert.notEqual(after.headers.get("etag"), etag);
  });
});
