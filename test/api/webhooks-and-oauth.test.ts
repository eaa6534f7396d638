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
import { verifyWebhook } from "../../src/webhooks/webhook-signature.ts";
import { Worker } from "../../src/jobs/worker.ts";
import { WebhookReceiver, type ReceivedWebhook } from "../support/webhook-receiver.ts";

describe("webhooks and OAuth clients", () => {
  let dataDir: string;
  let rd: Rosterdock;
  let app: FastifyInstance;
  let base: string;
  let receiver: WebhookReceiver;
  let receiverUrl: string;
  let received: ReceivedWebhook[];

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "rosterdock-hooks-"));
    rd = await createRosterdock(loadConfig({ ROSTERDOCK_DATA_DIR: dataDir }), { logger: createLogger("silent") });
    app = await buildHttpApp(rd, { sftpListening: () => true });
    await app.listen({ host: "127.0.0.1", port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    receiver = await WebhookReceiver.start();
    receiverUrl = receiver.url;
    received = receiver.received;
    await rd.districts.create({ slug: "lincoln", name: "Lincoln" }, "test");
    await rd.districts.create({ slug: "adams", name: "Adams" }, "test");
  });

  after(async () => {
    await app.close();
    await receiver.close();
    await rd.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Runs every ready job once, as the server's worker does. */
  async function drainJobs(): Promise<void> {
    const worker = new Worker(rd.deliveries, rd.jobs, new Map([["deliver-webhook", { run: (job) => rd.webhooks.deliver(job), maxAttempts: 8 }]]), createLogger("silent"));
    await worker.tick();
  }

  it("delivers a correctly signed event to a district's endpoint and not to others'", async () => {
    const { secret } = await rd.webhooks.addEndpoint({ url: receiverUrl, district: "lincoln", events: ["sync.applied"] }, "test");
    const lincoln = await rd.districts.show("lincoln");
    const adams = await rd.districts.show("adams");
    assert.equal(await rd.webhooks.emit("sync.applied", lincoln.id, { syncId: 7 }), 1);
    assert.equal(await rd.webhooks.emit("sync.applied", adams.id, { syncId: 8 }), 0);
    assert.equal(await rd.webhooks.emit("sync.held", lincoln.id, { syncId: 9 }), 0);
    await drainJobs();
    assert.equal(received.length, 1);
    const [hit] = received;
    const body = JSON.parse(hit!.body);
    assert.equal(body.event, "sync.applied");
    assert.equal(body.district, "lincoln");
    assert.deepEqual(body.data, { syncId: 7 });
    assert.equal(hit!.headers["x-rosterdock-event"], "sync.applied");
    const signature = String(hit!.headers["x-rosterdock-signature"]);
    assert.equal(verifyWebhook(secret, hit!.body, signature, Math.floor(Date.now() / 1000)), true);
    assert.equal(verifyWebhook(secret, hit!.body.replace("7", "8"), signature, Math.floor(Date.now() / 1000)), false);
    assert.equal(verifyWebhook("whsec_wrong", hit!.body, signature, Math.floor(Date.now() / 1000)), false);
  });

  it("retries a failed delivery, logs attempts, and can resend", async () => {
    received.length = 0;
    const { endpoint } = await rd.webhooks.addEndpoint({ url: receiverUrl, events: ["sync.failed"] }, "test");
    receiver.failNext = 1;
    await rd.webhooks.emit("sync.failed", (await rd.districts.show("adams")).id, { syncId: 10 });
    await drainJobs();
    let [delivery] = await rd.webhooks.listDeliveries({ endpointId: endpoint.id });
    assert.equal(delivery!.status, "pending");
    assert.equal(delivery!.lastStatusCode, 500);
    assert.match(delivery!.lastError!, /HTTP 500/);
    // The retry waits for its backoff; make it due now.
    await rd.database.db.updateTable("jobs").set({ run_after: new Date(0).toISOString() }).where("status", "=", "queued").execute();
    await drainJobs();
    [delivery] = await rd.webhooks.listDeliveries({ endpointId: endpoint.id });
    assert.equal(delivery!.status, "delivered");
    assert.equal(delivery!.attempts, 2);
    assert.equal(received.length, 1);
    await rd.webhooks.resend(delivery!.id, "test");
    await drainJobs();
    assert.equal(received.length, 2);
    assert.equal(received[1]!.body, received[0]!.body);
  });

  it("manages webhooks over the admin API", async () => {
    const admin = (await rd.tokens.create("ops", ["admin"], "test")).token;
    const headers = { authorization: `Bearer ${admin}`, "content-type": "application/json" };
    const created = await fetch(`${base}/api/v1/webhooks`, { method: "POST", headers, body: JSON.stringify({ url: receiverUrl }) });
    assert.equal(created.status, 201);
    const { endpoint, secret } = await created.json();
    assert.match(secret, /^whsec_/);
    assert.deepEqual(endpoint.events, ["sync.applied", "sync.held", "sync.failed", "district.under_attack"]);
    const list = await (await fetch(`${base}/api/v1/webhooks`, { headers })).json();
    assert.ok(list.some((e: { id: number }) => e.id === endpoint.id));
    assert.equal((await fetch(`${base}/api/v1/webhooks/${endpoint.id}`, { method: "DELETE", headers: { authorization: headers.authorization } })).status, 204);
    const bad = await fetch(`${base}/api/v1/webhooks`, { method: "POST", headers, body: JSON.stringify({ url: "ftp://x" }) });
    assert.equal(bad.status, 400);
  });

  it("issues short-lived tokens to OAuth clients, limited to their districts", async () => {
    const { clientId, clientSecret } = await rd.clients.create({ name: "gradebook", scopes: ["roster.readonly"], districts: ["lincoln"] }, "test");
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`;
    const response = await fetch(`${base}/oauth/token`, { method: "POST", headers: { authorization: basic, "content-type": "application/x-www-form-urlencoded" }, body: form });
    assert.equal(response.status, 200);
    const token = await response.json();
    assert.equal(token.token_type, "Bearer");
    assert.equal(token.expires_in, 3600);
    assert.equal(token.scope, "roster.readonly");
    const verified = await rd.tokens.verify(token.access_token);
    assert.deepEqual(verified?.districts, ["lincoln"]);
    assert.deepEqual(verified?.scopes, ["roster.readonly"]);

    const wrong = await fetch(`${base}/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: "nope" }) });
    assert.equal(wrong.status, 401);
    assert.equal((await wrong.json()).error, "invalid_client");
    const grant = await fetch(`${base}/oauth/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ grant_type: "password" }) });
    assert.equal((await grant.json()).error, "unsupported_grant_type");
    const forbidden = await fetch(`${base}/api/v1/districts`, { headers: { authorization: `Bearer ${token.access_token}` } });
    assert.equal(forbidden.status, 403);
  });
});
