import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { Worker } from "../../src/jobs/worker.ts";
import { generateDemoData } from "../../src/demo/generate-demo-data.ts";

describe("sync admin API", () => {
  let dataDir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let headers: Record<string, string>;
  let files: string[];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "rosterdock-sync-api-"));
    rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir }), { logger: createLogger("silent") });
    app = await buildHttpApp(rd, { sftpListening: () => true });
    await app.listen({ host: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    headers = { authorization: `Bearer ${(await rd.tokens.create("ops", ["admin"], "test")).token}` };
    await rd.districts.create({ slug: "lincoln", name: "Lincoln" }, "test");
    files = (await generateDemoData(join(dataDir, "demo"), { students: 200, teachers: 12, styles: ["dem"] })).files.dem;
    assert.equal((await rd.syncs.ingest("lincoln", files)).status, "applied");
  });

  after(async () => {
    await app.close();
    await rd.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A night whose students file was cut short: the safeguards hold it. */
  async function heldSync(): Promise<number> {
    const dir = await mkdtemp(join(dataDir, "cut-"));
    const students = files.find((f) => basename(f).startsWith("students"))!;
    const text = await readFile(students, "utf8");
    await writeFile(join(dir, basename(students)), text.slice(0, Math.floor(text.length / 3)).replace(/\r\n[^\r\n]*$/, "\r\n"));
    const outcome = await rd.syncs.ingest("lincoln", [join(dir, basename(students))]);
    assert.equal(outcome.status, "held");
    return outcome.syncId;
  }

  it("shows a sync and its issues as JSON and as CSV", async () => {
    const id = await heldSync();
    const shown = await (await fetch(`${base}/api/v1/syncs/${id}`, { headers })).json();
    assert.equal(shown.status, "held");
    assert.equal(shown.district, "lincoln");
    assert.ok(shown.counts.users.deleted > 50, JSON.stringify(shown.counts));
    const issues = await (await fetch(`${base}/api/v1/syncs/${id}/issues`, { headers })).json();
    assert.ok(issues.length > 0);
    const csv = await fetch(`${base}/api/v1/syncs/${id}/issues?format=csv`, { headers });
    assert.match(csv.headers.get("content-type") ?? "", /text\/csv/);
    const bytes = Buffer.from(await csv.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], "a BOM, so spreadsheets read UTF-8");
    const text = bytes.toString("utf8");
    assert.equal(text.trimEnd().split("\r\n").length, issues.length + 1);
    assert.equal((await fetch(`${base}/api/v1/syncs/99999`, { headers })).status, 404);
    await rd.syncs.discard(id, "test");
  });

  it("approves a held sync through the worker's queue, and rolls it back", async () => {
    const id = await heldSync();
    const users = () => rd.database.db.selectFrom("roster_users").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    const before = Number((await users()).n);
    const approved = await fetch(`${base}/api/v1/syncs/${id}/approve`, { method: "POST", headers });
    assert.equal(approved.status, 202);
    const worker = new Worker(rd.deliveries, rd.jobs, new Map([["process-sync", { run: (job) => rd.syncs.processJob(job) }]]), createLogger("silent"));
    await worker.tick();
    const applied = await rd.syncs.show(id);
    assert.equal(applied.status, "applied");
    assert.equal(Number((await users()).n), before - applied.counts.users!.deleted);
    const again = await fetch(`${base}/api/v1/syncs/${id}/approve`, { method: "POST", headers });
    assert.equal(again.status, 409);
    assert.equal((await again.json()).error.code, "ERR_SYNC_STATE");

    const rolledBack = await fetch(`${base}/api/v1/syncs/${id}/rollback`, { method: "POST", headers });
    assert.equal(rolledBack.status, 200);
    const body = await rolledBack.json();
    assert.equal(body.sync.status, "rolled_back");
    assert.ok(body.changes > 0);
    assert.equal(Number((await users()).n), before);
  });

  it("discards a held sync and leaves the roster alone", async () => {
    const id = await heldSync();
    const discarded = await (await fetch(`${base}/api/v1/syncs/${id}/discard`, { method: "POST", headers })).json();
    assert.equal(discarded.status, "discarded");
    assert.equal((await fetch(`${base}/api/v1/syncs/${id}/discard`, { method: "POST", headers })).status, 409);
  });
});
