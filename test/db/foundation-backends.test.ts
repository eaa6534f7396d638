import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import { Worker, type JobHandler } from "../../src/jobs/worker.ts";
import { verifyWebhook } from "../../src/webhooks/webhook-signature.ts";
import type { Clock } from "../../src/clock.ts";
import { RosterdockError } from "../../src/errors.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";
import { WebhookReceiver, type ReceivedWebhook } from "../support/webhook-receiver.ts";

/** A clock the tests move by hand: quiet periods and backoffs without waiting. */
class TestClock implements Clock {
  #now = new Date("2026-03-02T08:00:00.000Z");
  now(): Date {
    return new Date(this.#now);
  }
  advance(seconds: number): void {
    this.#now = new Date(this.#now.getTime() + seconds * 1000);
  }
}

const silent = createLogger("silent");

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof RosterdockError && error.code === code);
}

/** The same suites, once per backend chosen by ROSTERDOCK_TEST_DB. */
for (const backend of selectedBackends()) {
  describe(`foundation on ${backend.name}`, { skip: backend.skip }, () => {
    const homes = new BackendHomes(backend.name);
    after(() => homes.close());

    /** A Rosterdock of its own (data folder and database) for one suite. */
    function fresh(options: { clock?: Clock; env?: Record<string, string> } = {}) {
      const state = { home: undefined as BackendHome | undefined, rd: undefined as Rosterdock | undefined };
      before(async () => {
        state.home = await homes.create(options.env);
        state.rd = await createRosterdock(loadConfig(state.home.env), { logger: silent, ...(options.clock ? { clock: options.clock } : {}) });
      });
      after(async () => {
        await state.rd?.close();
        await state.home?.remove();
      });
      return {
        get rd(): Rosterdock {
          return state.rd!;
        },
        get home(): BackendHome {
          return state.home!;
        },
      };
    }

    it("opens the configured database", async () => {
      const home = await homes.create();
      const rd = await createRosterdock(loadConfig(home.env), { logger: silent });
      try {
        assert.equal(rd.database.dialect.name, backend.name);
        assert.equal(rd.database.sqlite === undefined, backend.name === "postgres");
      } finally {
        await rd.close();
        await home.remove();
      }
    });

    describe("districts", () => {
      const t = fresh();

      it("creates, lists, shows, updates, rotates and disables districts", async () => {
        const { rd } = t;
        const created = await rd.districts.create({ slug: "lincoln", name: " Lincoln Unified ", allowIps: ["198.51.100.7"] }, "test");
        assert.equal(typeof created.district.id, "number");
        assert.equal(created.district.name, "Lincoln Unified");
        assert.equal(created.district.status, "active");
        assert.deepEqual(created.district.allowIps, ["198.51.100.7/32"]);
        assert.match(created.password, /^[A-Za-z0-9_-]{20,}$/);
        await rd.districts.create({ slug: "adams-county", name: "Adams" }, "test");
        await rd.districts.create({ slug: "adams", name: "Adams City" }, "test");
        assert.deepEqual(
          (await rd.districts.list()).map((d) => d.slug),
          ["adams", "adams-county", "lincoln"],
        );
        await rejectsWith(rd.districts.create({ slug: "lincoln", name: "again" }, "test"), "ERR_DISTRICT_EXISTS");
        await rejectsWith(rd.districts.create({ slug: "Not A Slug", name: "x" }, "test"), "ERR_INVALID_SLUG");
        await rejectsWith(rd.districts.show("nowhere"), "ERR_DISTRICT_NOT_FOUND");

        const shown = await rd.districts.show("lincoln");
        assert.deepEqual(shown, created.district);
        const updated = await rd.districts.update("lincoln", { name: "Lincoln USD", allowIps: ["203.0.113.0/24"] }, "test");
        assert.equal(updated.name, "Lincoln USD");
        assert.deepEqual(updated.allowIps, ["203.0.113.0/24"]);

        const rotated = await rd.districts.rotatePassword("lincoln", "test");
        assert.notEqual(rotated.password, created.password);
        assert.deepEqual(await rd.districts.loginWithPassword("lincoln", created.password, "203.0.113.9"), { ok: false, reason: "bad_password" });
        const login = await rd.districts.loginWithPassword("lincoln", rotated.password, "203.0.113.9");
        assert.equal(login.ok, true);
        assert.deepEqual(await rd.districts.loginWithPassword("lincoln", rotated.password, "192.0.2.1"), { ok: false, reason: "address_not_allowed" });
        assert.deepEqual(await rd.districts.loginWithPassword("nobody", "whatever", "203.0.113.9"), { ok: false, reason: "unknown_user" });

        const disabled = await rd.districts.disable("lincoln", "test");
        assert.equal(disabled.status, "disabled");
        assert.deepEqual(await rd.districts.loginWithPassword("lincoln", rotated.password, "203.0.113.9"), { ok: false, reason: "disabled" });

        const actions = await rd.database.db.selectFrom("audit_events").select("action").where("district_id", "=", created.district.id).orderBy("id").execute();
        assert.deepEqual(
          actions.map((a) => a.action),
          ["district.created", "district.updated", "district.password_rotated", "district.disabled"],
        );
      });

      it("answers ERR_DISTRICT_EXISTS when two creations of one slug race", async () => {
        // Another Rosterdock on the same database: a CLI command beside the server.
        const other = await createRosterdock(loadConfig(t.home.env), { logger: silent });
        try {
          for (let i = 0; i < 12; i++) {
            const slug = `twin${i}`;
            const results = await Promise.allSettled([t.rd.districts.create({ slug, name: "A" }, "test"), other.districts.create({ slug, name: "B" }, "test")]);
            assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
            const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
            assert.ok(failure?.reason instanceof RosterdockError, String(failure?.reason));
            assert.equal(failure.reason.code, "ERR_DISTRICT_EXISTS");
          }
        } finally {
          await other.close();
        }
      });

      it("keeps public keys per district", async () => {
        await t.rd.districts.create({ slug: "keyed", name: "Keyed" }, "test");
        const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example";
        await t.rd.districts.addPublicKey("keyed", key, "test");
        const found = await t.rd.districts.publicKeys("keyed");
        assert.equal(found?.district.slug, "keyed");
        assert.deepEqual(found?.keys, [key]);
        assert.equal(await t.rd.districts.publicKeys("nobody"), undefined);
      });
    });

    describe("host keys", () => {
      it("are generated once and stay the same across reopening and concurrent first starts", async () => {
        const home = await homes.create();
        try {
          // Migrated once; then two processes (a CLI command beside the server) generate keys at the same time.
          const a = await createRosterdock(loadConfig(home.env), { logger: silent });
          const b = await createRosterdock(loadConfig(home.env), { logger: silent });
          const [keysA, keysB] = await Promise.all([a.hostKeys(), b.hostKeys()]);
          await Promise.all([a.close(), b.close()]);
          assert.deepEqual(
            keysA.map((k) => k.algorithm),
            ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"],
          );
          assert.deepEqual(keysB, keysA);
          const reopened = await createRosterdock(loadConfig(home.env), { logger: silent });
          const again = await reopened.hostKeys();
          await reopened.close();
          assert.deepEqual(
            again.map((k) => k.sha256),
            keysA.map((k) => k.sha256),
          );
          assert.match(again[0]!.sha256, /^SHA256:[A-Za-z0-9+/]{43}$/);
        } finally {
          await home.remove();
        }
      });
    });

    describe("deliveries, syncs and the job queue", () => {
      const clock = new TestClock();
      const t = fresh({ clock, env: { ROSTERDOCK_QUIET_SECONDS: "60" } });
      let districtId: number;

      async function upload(path: string, content: string): Promise<void> {
        const tempPath = await t.rd.storage.incomingPath(districtId);
        await writeFile(tempPath, content);
        await t.rd.deliveries.accept({
          districtId,
          path,
          tempPath,
          size: Buffer.byteLength(content),
          sha256: createHash("sha256").update(content).digest("hex"),
          clientIp: "127.0.0.1",
          clientVersion: "SSH-2.0-OpenSSH_9.2",
          startedAt: clock.now().toISOString(),
        });
      }

      before(async () => {
        districtId = (await t.rd.districts.create({ slug: "madison", name: "Madison" }, "test")).district.id;
      });

      it("groups uploads into one delivery, and closes it after the quiet period into a waiting sync and a job", async () => {
        const { rd } = t;
        await upload("/students.csv", "id\n1\n");
        const first = (await rd.deliveries.listUploads(districtId, 1))[0]!.id;
        clock.advance(30);
        await upload("/teachers.csv", "id\n2\n");
        clock.advance(10);
        await upload("/students.csv", "id\n1\n3\n"); // sent again: the later one counts
        await rd.deliveries.recordPartial({
          districtId,
          path: "/enrollments.csv",
          size: 5,
          clientIp: "127.0.0.1",
          clientVersion: "SSH-2.0-OpenSSH_9.2",
          startedAt: clock.now().toISOString(),
          reason: "connection closed before the file was closed",
        });
        await rd.deliveries.renamed(districtId, "/teachers.csv", "/staff.csv");

        const uploads = await rd.deliveries.listUploads(districtId, 10);
        assert.equal(uploads.length, 4);
        assert.deepEqual(
          uploads.map((u) => [u.path, u.status, u.size, typeof u.id]),
          [
            ["/enrollments.csv", "partial", 5, "number"],
            ["/students.csv", "accepted", 7, "number"],
            ["/staff.csv", "accepted", 5, "number"],
            ["/students.csv", "accepted", 5, "number"],
          ],
        );
        assert.equal(uploads.at(-1)!.id, first);
        assert.equal(uploads[0]!.reason, "connection closed before the file was closed");
        const open = await rd.deliveries.openDelivery(districtId);
        assert.ok(open);
        // The partial upload belongs to the night being received (which it holds), without keeping it open.
        assert.ok(uploads.every((u) => u.deliveryId === open.id));
        // Kept where the backend keeps closed uploads (the archive folder, or PostgreSQL), readable by the engine.
        const stored = (await rd.database.db.selectFrom("uploads").select("stored_path").where("id", "=", first).executeTakeFirstOrThrow()).stored_path!;
        const local = await rd.storage.localFiles(0, [{ name: "students.csv", stored_path: stored, sha256: "" }]);
        assert.equal(await readFile(local.files[0]!.path, "utf8"), "id\n1\n");
        await local.release();

        clock.advance(59);
        assert.deepEqual(await rd.deliveries.closeQuietDeliveries(), []);
        clock.advance(1);
        const closed = await rd.deliveries.closeQuietDeliveries();
        assert.equal(closed.length, 1);
        assert.deepEqual({ ...closed[0], syncId: 0 }, { deliveryId: open.id, districtId, syncId: 0, files: 2, removedFromView: 0 });
        assert.equal(await rd.deliveries.openDelivery(districtId), undefined);
        assert.deepEqual(await rd.deliveries.closeQuietDeliveries(), []);

        const syncs = await rd.syncs.list("madison");
        assert.equal(syncs.length, 1);
        const [sync] = syncs;
        assert.equal(sync!.id, closed[0]!.syncId);
        assert.equal(sync!.status, "waiting");
        assert.equal(sync!.createdAt, clock.now().toISOString());
        assert.deepEqual(
          sync!.files.map((f) => [f.name, f.size]),
          [
            ["students.csv", 7],
            ["staff.csv", 5],
          ],
        );
        assert.equal(sync!.files[0]!.sha256, createHash("sha256").update("id\n1\n3\n").digest("hex"));
        assert.deepEqual(sync!.counts, {});
        assert.deepEqual(sync!.issues, []);
        const detail = await rd.syncs.show(sync!.id);
        assert.equal(detail.district, "madison");
        assert.equal(detail.source, "sftp");
        assert.deepEqual(detail.issueTotals, { stored: 0, error: 0, warning: 0, info: 0 });
        await rejectsWith(rd.syncs.show(999_999), "ERR_SYNC_NOT_FOUND");

        const jobs = await rd.database.db.selectFrom("jobs").selectAll().execute();
        assert.equal(jobs.length, 1);
        assert.equal(jobs[0]!.kind, "process-sync");
        assert.equal(jobs[0]!.status, "queued");
        assert.deepEqual(JSON.parse(jobs[0]!.payload), { syncId: sync!.id });
      });

      it("a new upload after a closed delivery opens a new one", async () => {
        await upload("/students.csv", "id\n9\n");
        const open = await t.rd.deliveries.openDelivery(districtId);
        assert.ok(open);
        assert.equal(open.status, "open");
        assert.equal(open.closed_at, null);
      });

      it("puts uploads finished at the same moment into one delivery", async () => {
        const { rd } = t;
        const other = (await rd.districts.create({ slug: "busy", name: "Busy" }, "test")).district.id;
        const content = "id\n1\n";
        const finished = await Promise.all(
          Array.from({ length: 12 }, async () => {
            const tempPath = await rd.storage.incomingPath(other);
            await writeFile(tempPath, content);
            return tempPath;
          }),
        );
        const accept = (tempPath: string, i: number) =>
          rd.deliveries.accept({
            districtId: other,
            path: `/file-${i}.csv`,
            tempPath,
            size: 5,
            sha256: createHash("sha256").update(content).digest("hex"),
            clientIp: "127.0.0.1",
            clientVersion: "SSH-2.0-OpenSSH_9.2",
            startedAt: clock.now().toISOString(),
          });
        await Promise.all(finished.map(accept));
        const deliveries = await rd.database.db.selectFrom("deliveries").select(["id", "status"]).where("district_id", "=", other).execute();
        assert.equal(deliveries.length, 1, JSON.stringify(deliveries));
        const uploads = await rd.deliveries.listUploads(other, 100);
        assert.equal(uploads.length, 12);
        assert.ok(uploads.every((u) => u.deliveryId === deliveries[0]!.id));
      });

      it("claims, completes, fails with backoff and requeues jobs", async () => {
        const { rd } = t;
        const jobs = rd.jobs;
        await rd.database.db.deleteFrom("jobs").execute();
        assert.equal(await jobs.claim([]), undefined);
        const a = await jobs.enqueue("deliver-webhook", { n: 1 });
        const b = await jobs.enqueue("process-sync", { n: 2 });
        const c = await jobs.enqueue("deliver-webhook", { n: 3 });
        assert.ok(a < b && b < c);

        const claimed = await jobs.claim(["deliver-webhook"]);
        assert.equal(claimed?.id, a);
        assert.equal(claimed?.status, "running");
        assert.equal(claimed?.attempts, 1);
        await jobs.complete(a);

        // Two claims at once never take the same job.
        const [x, y] = await Promise.all([jobs.claim(["deliver-webhook", "process-sync"]), jobs.claim(["deliver-webhook", "process-sync"])]);
        const ids = [x?.id, y?.id].filter((id) => id !== undefined);
        assert.equal(new Set(ids).size, ids.length);
        assert.ok(ids.length >= 1);

        const job = (await rd.database.db.selectFrom("jobs").selectAll().where("id", "=", b).executeTakeFirstOrThrow());
        const running = job.status === "running" ? job : (await jobs.claim(["process-sync"]))!;
        assert.equal(running.id, b);
        await jobs.fail(running, "boom", 2);
        let row = await rd.database.db.selectFrom("jobs").selectAll().where("id", "=", b).executeTakeFirstOrThrow();
        assert.equal(row.status, "queued");
        assert.equal(row.last_error, "boom");
        assert.equal(row.locked_at, null);
        assert.equal(row.run_after, new Date(clock.now().getTime() + 10_000).toISOString());
        assert.equal(await jobs.claim(["process-sync"]), undefined, "not before its backoff");
        clock.advance(10);
        const retry = await jobs.claim(["process-sync"]);
        assert.equal(retry?.attempts, 2);
        await jobs.fail(retry!, "boom again", 2);
        row = await rd.database.db.selectFrom("jobs").selectAll().where("id", "=", b).executeTakeFirstOrThrow();
        assert.equal(row.status, "failed");
        assert.equal(row.attempts, 2);

        // Whatever is still running was interrupted by a restart (one node), or is taken again once
        // its lease expires (several nodes: another node's running job may be alive).
        await rd.database.db.updateTable("jobs").set({ status: "queued" }).where("id", "=", c).execute();
        const interrupted = await jobs.claim(["deliver-webhook"]);
        if (backend.name === "postgres") {
          assert.equal(await jobs.requeueInterrupted(), 0);
          assert.equal(await jobs.claim(["deliver-webhook"]), undefined, "its lease holds");
          clock.advance(jobs.leaseMs / 1000 + 1);
          const again = await jobs.claim(["deliver-webhook"]);
          assert.deepEqual({ id: again?.id, attempts: again?.attempts }, { id: c, attempts: interrupted!.attempts + 1 });
          await rd.database.db.updateTable("jobs").set({ status: "queued" }).where("id", "=", c).execute();
          return;
        }
        assert.equal(await jobs.requeueInterrupted(), 1);
        assert.equal(await jobs.requeueInterrupted(), 0);
        const requeued = await rd.database.db.selectFrom("jobs").selectAll().where("status", "=", "queued").execute();
        assert.deepEqual(
          requeued.map((r) => r.id),
          [c],
        );
      });

      it("records a sync whose files cannot be a roster as failed with the reason, once, not retried forever", async () => {
        const { rd } = t;
        const [sync] = await rd.syncs.list("madison");
        await rd.database.db.deleteFrom("jobs").execute();
        const { endpoint } = await rd.webhooks.addEndpoint({ url: "http://127.0.0.1:9/hooks", events: ["sync.failed"] }, "test");
        const jobId = await rd.jobs.enqueue("process-sync", { syncId: sync!.id });
        const worker = new Worker(rd.deliveries, rd.jobs, new Map<string, JobHandler>([["process-sync", { run: (job) => rd.syncs.processJob(job), maxAttempts: 5 }]]), silent);
        await worker.tick();
        const detail = await rd.syncs.show(sync!.id);
        const job = await rd.database.db.selectFrom("jobs").selectAll().where("id", "=", jobId).executeTakeFirstOrThrow();
        // These files are no roster (and one was cut off in transfer): the sync fails, with the reason.
        assert.equal(detail.status, "failed");
        assert.match(detail.summary.error ?? "", /Cut off during transfer/);
        assert.equal(job.status, "done");
        // Either way the failure is announced to webhooks, once.
        const deliveries = await rd.webhooks.listDeliveries({ endpointId: endpoint.id });
        assert.deepEqual(
          deliveries.map((d) => [d.event, d.status]),
          [["sync.failed", "pending"]],
        );
        // Processed once: running the job again changes nothing.
        await rd.syncs.processJob({ ...job, attempts: job.attempts + 1 });
        assert.deepEqual(await rd.syncs.show(sync!.id), detail);
        assert.equal((await rd.webhooks.listDeliveries({ endpointId: endpoint.id })).length, 1);
      });
    });

    describe("tokens and OAuth clients", () => {
      const clock = new TestClock();
      const t = fresh({ clock });

      it("creates and verifies API tokens", async () => {
        const { rd } = t;
        const created = await rd.tokens.create("ops", ["admin", "roster.readonly"], "test");
        assert.match(created.token, /^rdk_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{43}$/);
        assert.equal(typeof created.id, "number");
        const verified = await rd.tokens.verify(created.token);
        assert.deepEqual(verified, { id: created.id, name: "ops", scopes: ["admin", "roster.readonly"], districts: undefined, expiresAt: null });
        assert.equal(await rd.tokens.verify(created.token.slice(0, -1) + (created.token.endsWith("A") ? "B" : "A")), undefined);
        assert.equal(await rd.tokens.verify("not a token"), undefined);
        await rejectsWith(rd.tokens.create("x", ["root"], "test"), "ERR_INVALID_ARGUMENT");
        await rejectsWith(rd.tokens.create(" ", ["admin"], "test"), "ERR_INVALID_ARGUMENT");
      });

      it("lists operators' tokens without secrets and revokes them by id or name", async () => {
        const { rd } = t;
        const lms = await rd.tokens.create("lms", ["roster.readonly"], "test");
        const listed = await rd.tokens.list();
        const mine = listed.find((v) => v.id === lms.id)!;
        assert.deepEqual({ ...mine, createdAt: "" }, { id: lms.id, name: "lms", scopes: ["roster.readonly"], createdAt: "", revokedAt: null });
        assert.ok(!JSON.stringify(listed).includes(lms.token.slice(-20)));
        const revoked = await rd.tokens.revoke("lms", "test");
        assert.equal(revoked.alreadyRevoked, false);
        assert.equal(await rd.tokens.verify(lms.token), undefined);
        assert.equal(await rd.tokens.stillValid(lms.id), false);
        assert.equal((await rd.tokens.revoke(String(lms.id), "test")).alreadyRevoked, true);
        assert.ok(!(await rd.tokens.list()).some((v) => v.id === lms.id));
        assert.ok((await rd.tokens.list({ includeRevoked: true })).some((v) => v.id === lms.id && v.revokedAt !== null));
        await rejectsWith(rd.tokens.revoke("nobody", "test"), "ERR_TOKEN_NOT_FOUND");
      });

      it("issues expiring access tokens to OAuth clients, limited to their districts and scopes", async () => {
        const { rd } = t;
        await rd.districts.create({ slug: "lincoln", name: "Lincoln" }, "test");
        await rejectsWith(rd.clients.create({ name: "x", scopes: [], districts: ["nowhere"] }, "test"), "ERR_DISTRICT_NOT_FOUND");
        const { clientId, clientSecret } = await rd.clients.create({ name: "gradebook", scopes: ["roster.readonly"], districts: ["lincoln"] }, "test");
        assert.equal(await rd.clients.issueToken(clientId, "wrong"), undefined);
        assert.equal(await rd.clients.issueToken("rdc_unknown", clientSecret), undefined);
        await rejectsWith(rd.clients.issueToken(clientId, clientSecret, ["admin"]), "ERR_INVALID_SCOPE");
        const issued = await rd.clients.issueToken(clientId, clientSecret);
        assert.equal(issued?.scope, "roster.readonly");
        assert.equal(issued?.expires_in, 3600);
        const verified = await rd.tokens.verify(issued!.access_token);
        assert.deepEqual(verified?.districts, ["lincoln"]);
        assert.deepEqual(verified?.scopes, ["roster.readonly"]);
        assert.equal(verified?.expiresAt, new Date(clock.now().getTime() + 3600_000).toISOString());
        clock.advance(3600);
        assert.equal(await rd.tokens.verify(issued!.access_token), undefined, "expired");
      });
    });

    describe("server settings", () => {
      const t = fresh({ env: { ROSTERDOCK_PUBLIC_HOST: "sftp.example.org", ROSTERDOCK_SFTP_PORT: "2222" } });

      it("give the configuration's address until a server publishes its own, then the server's", async () => {
        const { rd } = t;
        assert.deepEqual(await rd.settings.address(rd.config), {
          sftpHost: "sftp.example.org",
          sftpPort: 2222,
          publicUrl: "http://sftp.example.org:8080",
          source: "environment",
          publishedAt: null,
        });
        await rd.settings.publishAddress({ sftpHost: "roster.example.org", sftpPort: 40022, publicUrl: "https://roster.example.org" });
        await rd.settings.publishAddress({ sftpHost: "roster.example.org", sftpPort: 40023, publicUrl: "https://roster.example.org" });
        const published = await rd.settings.address(rd.config);
        assert.deepEqual({ ...published, publishedAt: typeof published.publishedAt }, {
          sftpHost: "roster.example.org",
          sftpPort: 40023,
          publicUrl: "https://roster.example.org",
          source: "server",
          publishedAt: "string",
        });
      });
    });

    describe("webhooks", () => {
      const t = fresh();
      let receiver: WebhookReceiver;
      let receiverUrl: string;
      let received: ReceivedWebhook[];

      before(async () => {
        receiver = await WebhookReceiver.start();
        receiverUrl = receiver.url;
        received = receiver.received;
        await t.rd.districts.create({ slug: "lincoln", name: "Lincoln" }, "test");
        await t.rd.districts.create({ slug: "adams", name: "Adams" }, "test");
      });
      after(() => receiver.close());

      const drain = () => new Worker(t.rd.deliveries, t.rd.jobs, new Map([["deliver-webhook", { run: (job) => t.rd.webhooks.deliver(job), maxAttempts: 8 }]]), silent).tick();

      it("emits to the endpoints that want the event and delivers signed payloads", async () => {
        const { rd } = t;
        const { endpoint, secret } = await rd.webhooks.addEndpoint({ url: receiverUrl, district: "lincoln", events: ["sync.applied"] }, "test");
        assert.deepEqual({ ...endpoint, createdAt: "" }, { id: endpoint.id, url: receiverUrl, district: "lincoln", events: ["sync.applied"], createdAt: "", disabled: false });
        const lincoln = await rd.districts.show("lincoln");
        const adams = await rd.districts.show("adams");
        assert.equal(await rd.webhooks.emit("sync.applied", lincoln.id, { syncId: 7 }), 1);
        assert.equal(await rd.webhooks.emit("sync.applied", adams.id, { syncId: 8 }), 0);
        assert.equal(await rd.webhooks.emit("sync.held", lincoln.id, { syncId: 9 }), 0);
        await drain();
        assert.equal(received.length, 1);
        const body = JSON.parse(received[0]!.body);
        assert.equal(body.district, "lincoln");
        assert.deepEqual(body.data, { syncId: 7 });
        assert.equal(verifyWebhook(secret, received[0]!.body, String(received[0]!.headers["x-rosterdock-signature"]), Math.floor(Date.now() / 1000)), true);
        const [delivery] = await rd.webhooks.listDeliveries({ endpointId: endpoint.id });
        assert.equal(delivery!.status, "delivered");
        assert.equal(delivery!.attempts, 1);
        assert.equal(delivery!.lastStatusCode, 204);
        assert.equal(delivery!.lastError, null);
      });

      it("emits inside a caller's transaction, or not at all when it rolls back", async () => {
        const { rd } = t;
        const adams = await rd.districts.show("adams");
        const { endpoint } = await rd.webhooks.addEndpoint({ url: receiverUrl, district: "adams" }, "test");
        await assert.rejects(
          rd.database.db.transaction().execute(async (trx) => {
            assert.equal(await rd.webhooks.emit("sync.held", adams.id, { syncId: 1 }, trx), 1);
            throw new Error("rolled back");
          }),
          /rolled back/,
        );
        assert.deepEqual(await rd.webhooks.listDeliveries({ endpointId: endpoint.id }), []);
        await rd.webhooks.removeEndpoint(endpoint.id, "test");
        await rejectsWith(rd.webhooks.removeEndpoint(endpoint.id, "test"), "ERR_NOT_FOUND");
        assert.equal((await rd.webhooks.listEndpoints()).find((e) => e.id === endpoint.id)?.disabled, true);
      });

      it("retries a failed delivery and can resend", async () => {
        const { rd } = t;
        received.length = 0;
        const { endpoint } = await rd.webhooks.addEndpoint({ url: receiverUrl, events: ["sync.failed"] }, "test");
        receiver.failNext = 1;
        await rd.webhooks.emit("sync.failed", (await rd.districts.show("adams")).id, { syncId: 10 });
        await drain();
        let [delivery] = await rd.webhooks.listDeliveries({ endpointId: endpoint.id });
        assert.equal(delivery!.status, "pending");
        assert.equal(delivery!.lastStatusCode, 500);
        await rd.database.db.updateTable("jobs").set({ run_after: new Date(0).toISOString() }).where("status", "=", "queued").execute();
        await drain();
        [delivery] = await rd.webhooks.listDeliveries({ endpointId: endpoint.id });
        assert.equal(delivery!.status, "delivered");
        assert.equal(delivery!.attempts, 2);
        await rd.webhooks.resend(delivery!.id, "test");
        await rejectsWith(rd.webhooks.resend(999_999, "test"), "ERR_NOT_FOUND");
        await drain();
        assert.equal(received.length, 2);
        assert.equal(received[1]!.body, received[0]!.body);
      });
    });

    describe("bans", () => {
      const clock = new TestClock();
      const t = fresh({ clock });
      const guess = (address: string, account: string, times: number) => {
        const started = Array.from({ length: times }, () => t.rd.defender.begin(address, account, "ssh"));
        for (const s of started) if (s.ok) s.attempt.fail("bad_password");
        return started.filter((s) => s.ok).length;
      };

      it("counts checks under way, so parallel tries stop at the limit, and bans the address for that account only", async () => {
        const { rd } = t;
        const lincoln = await rd.districts.create({ slug: "lincoln", name: "Lincoln" }, "test");
        await rd.webhooks.addEndpoint({ url: "http://127.0.0.1:9/hooks", events: ["district.under_attack"] }, "test");
        const started = Array.from({ length: 50 }, () => rd.defender.begin("198.51.100.7", "lincoln", "ssh"));
        assert.equal(started.filter((s) => s.ok).length, 10);
        assert.ok(started.filter((s) => !s.ok).every((s) => !s.ok && s.refusal.reason === "too_many_failures"));
        for (const s of started) if (s.ok) s.attempt.fail("bad_password");
        await rd.defender.settled();

        const bans = await rd.defender.list();
        assert.deepEqual(
          bans.map((b) => [b.address, b.account, b.failures, b.strikes, (Date.parse(b.bannedUntil) - Date.parse(b.bannedAt)) / 60_000]),
          [["198.51.100.7", "lincoln", 10, 1, 30]],
        );
        assert.equal(rd.defender.isBanned("198.51.100.7"), false);
        const refused = rd.defender.begin("198.51.100.7", "lincoln", "ssh");
        assert.equal(!refused.ok && refused.refusal.reason, "banned");
        const other = rd.defender.begin("198.51.100.7", "jefferson", "ssh");
        assert.ok(other.ok, "another account behind the same address still gets its check");
        if (other.ok) other.attempt.succeed();

        assert.deepEqual((await rd.defender.underAttack("lincoln"))?.addresses, ["198.51.100.7"]);
        assert.equal(await rd.defender.underAttack("jefferson"), null);
        const hooks = await rd.database.db.selectFrom("webhook_deliveries").select(["event", "payload"]).execute();
        assert.deepEqual(hooks.map((h) => h.event), ["district.under_attack"]);
        assert.equal(JSON.parse(hooks[0]!.payload).district, "lincoln");
        assert.equal(JSON.parse(hooks[0]!.payload).data.address, "198.51.100.7");
        assert.equal(lincoln.district.slug, "lincoln");
      });

      it("bans an address that fails at several accounts for every account, protocol errors and IPv6 /64s included", async () => {
        const { rd } = t;
        for (const account of ["root", "admin", "test", "oracle"]) assert.equal(guess("203.0.113.5", account, 1), 1);
        assert.equal(rd.defender.isBanned("203.0.113.5"), false);
        assert.equal(guess("203.0.113.5", "ubuntu", 1), 1);
        assert.equal(rd.defender.isBanned("203.0.113.5"), true, "in force before the database has it");
        assert.equal(rd.defender.isBanned("::ffff:203.0.113.5"), true);
        const refused = rd.defender.begin("203.0.113.5", "lincoln", "http");
        assert.equal(!refused.ok && refused.refusal.reason, "banned");

        for (let i = 0; i < 50; i++) rd.defender.recordProtocolError(`2001:db8:7:7::${i.toString(16)}`, "bad_identification");
        assert.equal(rd.defender.isBanned("2001:db8:7:7:ffff::1"), true, "one host's /64 counts as one address");
        assert.equal(rd.defender.isBanned("2001:db8:7:8::1"), false);
        await rd.defender.settled();
        const addressWide = (await rd.defender.list()).filter((b) => b.account === null).map((b) => b.address);
        assert.deepEqual(addressWide.sort(), ["2001:db8:7:7::/64", "203.0.113.5"]);
      });

      it("doubles a repeat offender's ban up to a day, and forgets it a day after the last one", async () => {
        const { rd } = t;
        const lengths: number[] = [];
        for (let i = 0; i < 8; i++) {
          assert.equal(guess("192.0.2.44", "madison", 10), 10);
          await rd.defender.settled();
          const [ban] = await rd.defender.list("192.0.2.44");
          lengths.push((Date.parse(ban!.bannedUntil) - Date.parse(ban!.bannedAt)) / 60_000);
          clock.advance((Date.parse(ban!.bannedUntil) - clock.now().getTime()) / 1000 + 1);
        }
        assert.deepEqual(lengths, [30, 60, 120, 240, 480, 960, 1440, 1440]);
        clock.advance(24 * 3600 + 60);
        guess("192.0.2.44", "madison", 10);
        await rd.defender.settled();
        assert.equal((await rd.defender.list("192.0.2.44"))[0]!.strikes, 1);
      });

      it("keeps bans across a restart, shared with another server on the database, until cleared", async () => {
        const { rd } = t;
        guess("192.0.2.99", "a1", 1);
        guess("192.0.2.99", "a2", 1);
        guess("192.0.2.99", "a3", 1);
        guess("192.0.2.99", "a4", 1);
        guess("192.0.2.99", "a5", 1);
        await rd.defender.settled();
        const other = await createRosterdock(loadConfig(t.home.env), { logger: silent, clock });
        try {
          assert.equal(other.defender.isBanned("192.0.2.99"), false, "not read yet");
          await other.defender.start();
          assert.equal(other.defender.isBanned("192.0.2.99"), true);
          assert.equal(await other.defender.clear("192.0.2.99", "test"), 1);
          assert.equal(other.defender.isBanned("192.0.2.99"), false);
          assert.equal(rd.defender.isBanned("192.0.2.99"), true, "until the other server reads the bans again");
          await rd.defender.refresh();
          assert.equal(rd.defender.isBanned("192.0.2.99"), false);
          assert.ok(rd.defender.begin("192.0.2.99", "a6", "ssh").ok, "the failures behind a lifted ban are forgotten");
          assert.ok((await other.defender.clear(undefined, "test")) >= 1);
          assert.deepEqual(await rd.defender.list(), []);
        } finally {
          await other.close();
        }
      });
    });

    describe("admin HTTP API", () => {
      const t = fresh({ env: { ROSTERDOCK_PUBLIC_HOST: "sftp.example.org", ROSTERDOCK_SFTP_PORT: "2222" } });
      let app: FastifyInstance;
      let base: string;
      let admin: string;
      let reader: string;

      before(async () => {
        app = await buildHttpApp(t.rd, { sftpListening: () => true });
        await app.listen({ host: "127.0.0.1", port: 0 });
        base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
        admin = (await t.rd.tokens.create("ops", ["admin"], "test")).token;
        reader = (await t.rd.tokens.create("app", ["roster.readonly"], "test")).token;
      });
      after(() => app.close());

      const call = (method: string, path: string, token?: string, body?: unknown) =>
        fetch(`${base}${path}`, {
          method,
          headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        });

      it("is healthy", async () => {
        const health = await call("GET", "/healthz");
        assert.equal(health.status, 200);
        assert.deepEqual(await health.json(), { status: "ok", database: "ok", sftp: "ok" });
      });

      it("refuses requests without a valid token (401) or without the admin scope (403)", async () => {
        assert.equal((await call("GET", "/api/v1/districts")).status, 401);
        assert.equal((await call("GET", "/api/v1/districts", "rdk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")).status, 401);
        const forbidden = await call("GET", "/api/v1/districts", reader);
        assert.equal(forbidden.status, 403);
        assert.equal((await forbidden.json()).error.code, "ERR_FORBIDDEN");
      });

      it("creates, lists, shows, updates, rotates and disables districts", async () => {
        const created = await call("POST", "/api/v1/districts", admin, { slug: "lincoln", name: "Lincoln Unified" });
        assert.equal(created.status, 201);
        const body = await created.json();
        assert.deepEqual({ ...body.sftp, password: "" }, { host: "sftp.example.org", port: 2222, username: "lincoln", password: "", source: "environment" });
        assert.equal(body.hostKeys.length, 3);
        const again = await call("POST", "/api/v1/districts", admin, { slug: "lincoln", name: "x" });
        assert.equal(again.status, 409);
        assert.equal((await again.json()).error.code, "ERR_DISTRICT_EXISTS");
        assert.equal((await call("POST", "/api/v1/districts", admin, { slug: "Not A Slug", name: "x" })).status, 400);

        const list = await (await call("GET", "/api/v1/districts", admin)).json();
        assert.deepEqual(
          list.map((d: { slug: string }) => d.slug),
          ["lincoln"],
        );
        const updated = await call("PATCH", "/api/v1/districts/lincoln", admin, { allowIps: ["198.51.100.0/24"] });
        assert.deepEqual((await updated.json()).allowIps, ["198.51.100.0/24"]);
        const shown = await (await call("GET", "/api/v1/districts/lincoln", admin)).json();
        assert.equal(shown.id, list[0].id);
        assert.equal("password" in shown, false);
        const rotated = await (await call("POST", "/api/v1/districts/lincoln/rotate-password", admin)).json();
        assert.notEqual(rotated.sftp.password, body.sftp.password);
        assert.equal((await t.rd.districts.loginWithPassword("lincoln", rotated.sftp.password, "198.51.100.3")).ok, true);
        assert.equal((await (await call("POST", "/api/v1/districts/lincoln/disable", admin)).json()).status, "disabled");
        const unknown = await call("GET", "/api/v1/districts/nowhere", admin);
        assert.equal(unknown.status, 404);
        assert.equal((await unknown.json()).error.code, "ERR_DISTRICT_NOT_FOUND");
      });

      it("lists syncs and host keys, creates tokens, webhooks and OAuth clients", async () => {
        const { rd } = t;
        const madison = (await rd.districts.create({ slug: "madison", name: "Madison" }, "test")).district;
        const now = new Date().toISOString();
        const sync = await rd.database.db
          .insertInto("syncs")
          .values({ district_id: madison.id, delivery_id: null, source: "cli", status: "waiting", created_at: now, updated_at: now, counts: "{}", summary: "{}" })
          .returning("id")
          .executeTakeFirstOrThrow();
        await rd.database.db.insertInto("sync_files").values({ sync_id: sync.id, name: "students.csv", size: 5_000_000_000, sha256: "ab", stored_path: "x" }).execute();
        const syncs = await (await call("GET", "/api/v1/districts/madison/syncs?limit=5", admin)).json();
        assert.deepEqual(syncs, await rd.syncs.list("madison"));
        assert.deepEqual(syncs[0]!.files, [{ name: "students.csv", size: 5_000_000_000, sha256: "ab" }]);

        const keys = await (await call("GET", "/api/v1/host-keys", admin)).json();
        assert.deepEqual(
          keys.map((k: { algorithm: string }) => k.algorithm),
          ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"],
        );
        const readOnly = await call("POST", "/api/v1/tokens", admin, { name: "script" });
        assert.equal(readOnly.status, 201);
        const readOnlyBody = await readOnly.json();
        assert.deepEqual(readOnlyBody.scopes, ["roster.readonly"], "without scopes, a token only reads rosters");
        assert.equal((await call("GET", "/api/v1/districts", readOnlyBody.token)).status, 403);
        const token = await call("POST", "/api/v1/tokens", admin, { name: "ops-script", scopes: ["admin"] });
        assert.equal(token.status, 201);
        const scriptToken = (await token.json()).token;
        assert.equal((await call("GET", "/api/v1/districts", scriptToken)).status, 200);
        const tokens = await (await call("GET", "/api/v1/tokens", admin)).json();
        assert.ok(!JSON.stringify(tokens).includes(scriptToken.slice(-20)));
        const listed = tokens.find((t: { name: string }) => t.name === "ops-script");
        assert.deepEqual(Object.keys(listed).sort(), ["createdAt", "id", "name", "revokedAt", "scopes"]);
        const revoked = await call("DELETE", "/api/v1/tokens/ops-script", admin);
        assert.equal(revoked.status, 200);
        assert.equal((await revoked.json()).alreadyRevoked, false);
        assert.equal((await call("GET", "/api/v1/districts", scriptToken)).status, 401, "revoked at once, though verified a moment ago");
        assert.equal((await call("DELETE", "/api/v1/tokens/nobody", admin)).status, 404);
        assert.ok((await (await call("GET", "/api/v1/tokens?all=true", admin)).json()).some((t: { name: string; revokedAt: string | null }) => t.name === "ops-script" && t.revokedAt !== null));
        assert.ok(!(await (await call("GET", "/api/v1/tokens", admin)).json()).some((t: { name: string }) => t.name === "ops-script"));

        const hook = await call("POST", "/api/v1/webhooks", admin, { url: "http://127.0.0.1:9/hooks", district: "madison" });
        assert.equal(hook.status, 201);
        const { endpoint } = await hook.json();
        assert.equal(endpoint.district, "madison");
        assert.equal((await call("GET", "/api/v1/webhooks", admin).then((r) => r.json())).length, 1);
        assert.equal((await call("DELETE", `/api/v1/webhooks/${endpoint.id}`, admin)).status, 204);
        assert.deepEqual(await (await call("GET", "/api/v1/webhooks/deliveries", admin)).json(), []);

        const client = await call("POST", "/api/v1/clients", admin, { name: "gradebook", districts: ["madison"] });
        assert.equal(client.status, 201);
        const { clientId, clientSecret } = await client.json();
        const issued = await fetch(`${base}/oauth/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: clientSecret }),
        });
        assert.equal(issued.status, 200);
        assert.equal((await call("GET", "/api/v1/districts", (await issued.json()).access_token)).status, 403);
      });
    });
  });
}
