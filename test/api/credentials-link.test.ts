import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, hkdfSync, randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/logger.ts";
import { createRosterdock, type Rosterdock } from "../../src/service.ts";
import { buildHttpApp } from "../../src/api/http-app.ts";
import type { Clock } from "../../src/clock.ts";
import { connectionDetails, credentialsView } from "../../src/districts/connection-details.ts";
import { handoffLookup, openWithKey, openWithToken, sealContext } from "../../src/handoffs/handoff-seal.ts";
import { BackendHomes, selectedBackends, type BackendHome } from "../support/backends.ts";

/** A clock the tests move by hand: links expire without waiting days. */
class TestClock implements Clock {
  #now = new Date("2026-03-02T08:00:00.000Z");
  now(): Date {
    return new Date(this.#now);
  }
  advance(seconds: number): void {
    this.#now = new Date(this.#now.getTime() + seconds * 1000);
  }
}

const DAY = 24 * 3600;

for (const backend of selectedBackends()) {
  describe(`credentials link on ${backend.name}`, { skip: backend.skip }, () => {
    const homes = new BackendHomes(backend.name);
    const clock = new TestClock();
    const logLines: string[] = [];
    /** Every token and password this suite handed out: none may reach a log line or an audit row. */
    const secrets: string[] = [];
    let home: BackendHome;
    let rd: Rosterdock;
    let app: FastifyInstance;
    let base: string;

    before(async () => {
      home = await homes.create({
        ROSTERDOCK_PUBLIC_HOST: "sftp.example.org",
        ROSTERDOCK_SFTP_PORT: "2222",
        ROSTERDOCK_PUBLIC_URL: "https://rosterdock.example.org",
        ROSTERDOCK_HANDOFF_DAYS: "2",
        ROSTERDOCK_AUTH_RATE_PER_MINUTE: "5",
      });
      const logger = createLogger("info", { write: (line: string) => void logLines.push(line) });
      rd = await createRosterdock(loadConfig(home.env), { logger, clock });
      app = await buildHttpApp(rd, { sftpListening: () => true });
      await app.listen({ host: "127.0.0.1", port: 0 });
      const address = app.server.address();
      base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    });

    after(async () => {
      await app?.close();
      await rd?.close();
      await home?.remove();
      await homes.close();
    });

    async function district(slug: string, name = `${slug} district`) {
      const created = await rd.districts.create({ slug, name }, "test");
      secrets.push(created.password, created.credentialsLink.token);
      return created;
    }

    const page = async (token: string, method: "GET" | "POST" = "GET", init: RequestInit = {}) => {
      const response = await fetch(`${base}/handoff/${token}`, { method, ...init });
      return { status: response.status, headers: response.headers, html: await response.text() };
    };

    const row = async (token: string) => rd.database.db.selectFrom("credential_handoffs").selectAll().where("lookup", "=", handoffLookup(token)).executeTakeFirstOrThrow();

    it("makes a link under ROSTERDOCK_PUBLIC_URL that expires after ROSTERDOCK_HANDOFF_DAYS", async () => {
      const created = await district("adams");
      assert.match(created.credentialsLink.token, /^[A-Za-z0-9_-]{43}$/, "256 random bits, base64url");
      assert.equal(created.credentialsLink.expiresAt, new Date(clock.now().getTime() + 2 * DAY * 1000).toISOString());
      const address = await rd.settings.address(rd.config);
      const view = credentialsView(created, connectionDetails(address, await rd.hostKeys()), address.publicUrl);
      assert.equal(view.credentialsLink, `https://rosterdock.example.org/handoff/${created.credentialsLink.token}`);
    });

    it("shows a Reveal button on GET, however often, without the password, and with headers that keep the page to itself", async () => {
      const created = await district("lincoln", `Lincoln <script>alert("x")</script> & Sons`);
      for (let i = 0; i < 3; i++) {
        const { status, headers, html } = await page(created.credentialsLink.token);
        assert.equal(status, 200);
        assert.match(html, /<form method="post"><button type="submit">Reveal the credentials<\/button><\/form>/);
        assert.ok(!html.includes(created.password));
        assert.ok(!html.includes("<script>"), "the district's name is escaped");
        assert.match(html, /Lincoln &#60;script&#62;alert\(&#34;x&#34;\)&#60;\/script&#62; &#38; Sons/);
        assert.equal(headers.get("cache-control"), "no-store");
        assert.equal(headers.get("referrer-policy"), "no-referrer");
        assert.equal(headers.get("x-content-type-options"), "nosniff");
        assert.match(headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
        assert.match(headers.get("content-security-policy") ?? "", /default-src 'none'/);
        assert.equal(headers.get("set-cookie"), null);
        assert.doesNotMatch(html, /<script|<link|src=|https?:\/\//i, "no script, no outside resource");
      }
      assert.notEqual((await row(created.credentialsLink.token)).sealed_password, null, "GETs do not use the link up");
    });

    it("reveals host, port, username, password and every fingerprint once on an empty POST, then only says when it was used", async () => {
      const created = await district("jefferson");
      const token = created.credentialsLink.token;
      const first = await page(token, "POST");
      assert.equal(first.status, 200);
      assert.equal(first.headers.get("cache-control"), "no-store");
      assert.equal(first.headers.get("referrer-policy"), "no-referrer");
      assert.ok(first.html.includes(`<code class="secret">${created.password}</code>`));
      assert.ok(first.html.includes("<code>sftp.example.org</code>") && first.html.includes("<code>2222</code>") && first.html.includes("<code>jefferson</code>"));
      const keys = await rd.hostKeys();
      assert.equal(keys.length, 3);
      for (const key of keys) assert.ok(first.html.includes(`<code>${key.sha256}</code>`) && first.html.includes(`<code>${key.md5}</code>`), key.algorithm);

      const revealedRow = await row(token);
      assert.equal(revealedRow.sealed_password, null, "the sealed password is deleted at the reveal");
      assert.equal(revealedRow.revealed_at, clock.now().toISOString());
      assert.equal(revealedRow.revealed_from, "127.0.0.1");

      clock.advance(3600);
      for (const method of ["POST", "GET"] as const) {
        const again = await page(token, method);
        assert.equal(again.status, 410);
        assert.ok(!again.html.includes(created.password), method);
        assert.match(again.html, /already used/);
        assert.ok(again.html.includes(`${revealedRow.revealed_at!.slice(0, 10)} ${revealedRow.revealed_at!.slice(11, 16)} UTC`), "says when");
      }
    });

    it("reveals through the page's own form (an empty urlencoded body) and ignores any body", async () => {
      const form = await district("madison");
      const submitted = await page(form.credentialsLink.token, "POST", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "" });
      assert.equal(submitted.status, 200);
      assert.ok(submitted.html.includes(form.password));
      const odd = await district("monroe");
      const withBody = await page(odd.credentialsLink.token, "POST", { headers: { "content-type": "text/plain" }, body: "anything" });
      assert.equal(withBody.status, 200);
      assert.ok(withBody.html.includes(odd.password));
    });

    it("reveals to one of two reveals sent at the same moment", async () => {
      const created = await district("harrison");
      const both = await Promise.all([page(created.credentialsLink.token, "POST"), page(created.credentialsLink.token, "POST")]);
      assert.deepEqual(both.map((p) => p.status).sort(), [200, 410]);
      assert.equal(both.filter((p) => p.html.includes(created.password)).length, 1);
    });

    it("shows nothing once the link has expired (and deletes its sealed password)", async () => {
      const created = await district("hamilton");
      clock.advance(2 * DAY - 60);
      assert.equal((await page(created.credentialsLink.token)).status, 200, "still usable a minute before it expires");
      clock.advance(61);
      for (const method of ["GET", "POST"] as const) {
        const expired = await page(created.credentialsLink.token, method);
        assert.equal(expired.status, 410);
        assert.match(expired.html, /expired/);
        assert.ok(!expired.html.includes(created.password));
      }
      const stored = await row(created.credentialsLink.token);
      assert.equal(stored.sealed_password, null);
      assert.equal(stored.revealed_at, null);
    });

    it("deletes expired links' sealed passwords without a visit", async () => {
      const created = await district("polk");
      assert.notEqual((await row(created.credentialsLink.token)).sealed_password, null);
      clock.advance(2 * DAY);
      assert.ok((await rd.handoffs.purgeExpired()) >= 1);
      assert.equal((await row(created.credentialsLink.token)).sealed_password, null);
    });

    it("shows nothing on a revoked link; revoking leaves the password working and a used link alone", async () => {
      const created = await district("tyler");
      const { revoked } = await rd.districts.revokeCredentialsLink("tyler", "test");
      assert.equal(revoked, 1);
      for (const method of ["GET", "POST"] as const) {
        const gone = await page(created.credentialsLink.token, method);
        assert.equal(gone.status, 410);
        assert.match(gone.html, /revoked/);
        assert.ok(!gone.html.includes(created.password));
      }
      assert.equal((await row(created.credentialsLink.token)).sealed_password, null);
      assert.equal((await rd.districts.loginWithPassword("tyler", created.password, "127.0.0.1")).ok, true);
      assert.equal((await rd.districts.revokeCredentialsLink("tyler", "test")).revoked, 0, "nothing left to revoke");
      assert.equal((await rd.handoffs.latest((await rd.districts.show("tyler")).id))?.state, "revoked");
    });

    it("ends the old link when the password is rotated or a new link is made; the new link reveals the new password", async () => {
      const created = await district("taylor");
      const rotated = await rd.districts.rotatePassword("taylor", "test");
      secrets.push(rotated.password, rotated.credentialsLink.token);
      const old = await page(created.credentialsLink.token, "POST");
      assert.equal(old.status, 410);
      assert.match(old.html, /replaced/);
      assert.ok(!old.html.includes(created.password) && !old.html.includes(rotated.password));
      assert.equal((await row(created.credentialsLink.token)).sealed_password, null);

      const renewed = await rd.districts.rotatePassword("taylor", "test", "new-link");
      secrets.push(renewed.password, renewed.credentialsLink.token);
      assert.equal((await page(rotated.credentialsLink.token, "POST")).status, 410);
      const fresh = await page(renewed.credentialsLink.token, "POST");
      assert.equal(fresh.status, 200);
      assert.ok(fresh.html.includes(renewed.password));
      assert.equal((await rd.districts.loginWithPassword("taylor", created.password, "127.0.0.1")).ok, false);
      assert.equal((await rd.districts.loginWithPassword("taylor", renewed.password, "127.0.0.1")).ok, true);
    });

    it("keeps a row that holds no password, no token, and opens with nothing derived from the row", async () => {
      const created = await district("fillmore");
      const token = created.credentialsLink.token;
      const stored = await row(token);
      const raw = JSON.stringify(stored);
      const passwordBytes = Buffer.from(created.password);
      for (const form of [created.password, passwordBytes.toString("base64"), passwordBytes.toString("base64url"), passwordBytes.toString("hex"), token]) {
        assert.ok(!raw.includes(form), "neither the password nor the token is in the row");
      }
      const sealed = stored.sealed_password!;
      const context = sealContext(stored.district_id, stored.lookup);
      assert.equal(openWithToken(token, sealed, context), created.password, "the link opens it");
      assert.equal(openWithToken(token, sealed, sealContext(stored.district_id + 1, stored.lookup)), undefined, "bound to its row");

      // Every key one could make from what the row holds fails.
      const material = [stored.lookup, String(stored.id), String(stored.district_id), stored.created_at, stored.expires_at, stored.created_by, sealed, ...sealed.split(".")];
      const keys: Buffer[] = [];
      for (const value of material) {
        keys.push(createHash("sha256").update(value).digest());
        keys.push(Buffer.from(hkdfSync("sha256", Buffer.from(value), Buffer.alloc(0), "rosterdock credentials link: sealing key v1", 32)));
        const decoded = Buffer.from(value, "base64url");
        if (decoded.length === 32) keys.push(decoded);
        assert.equal(openWithToken(value, sealed, context), undefined, "a row value used as the link's token");
      }
      for (const key of keys) assert.equal(openWithKey(key, sealed, context), undefined);
      assert.equal(openWithToken(randomBytes(32).toString("base64url"), sealed, context), undefined, "another link's token");
    });

    it("logs and audits every reveal and refused visit with the client's address, never the token or the password", async () => {
      const events = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((e) => typeof e.event === "string" && String(e.event).startsWith("handoff."));
      const refusedReasons = new Set(events.filter((e) => e.event === "handoff.refused").map((e) => e.reason));
      assert.deepEqual([...refusedReasons].sort(), ["expired", "replaced", "revoked", "used"]);
      assert.ok(events.some((e) => e.event === "handoff.revealed" && e.district === "jefferson" && e.ip === "127.0.0.1"));
      assert.ok(events.filter((e) => e.event === "handoff.refused").every((e) => e.ip === "127.0.0.1"));

      const audit = await rd.database.db.selectFrom("audit_events").selectAll().orderBy("id").execute();
      const revealed = audit.filter((a) => a.action === "district.credentials_revealed");
      const slugs = ["jefferson", "madison", "monroe", "harrison", "taylor"];
      const ids = await Promise.all(slugs.map(async (slug) => (await rd.districts.show(slug)).id));
      assert.deepEqual(revealed.map((a) => a.district_id), ids, "each reveal once: taylor's through its newest link only");
      assert.ok(revealed.every((a) => a.actor === "link:127.0.0.1" && JSON.parse(a.details).address === "127.0.0.1"));
      const refused = audit.filter((a) => a.action === "district.credentials_link_refused").map((a) => JSON.parse(a.details) as { reason: string; address: string });
      assert.deepEqual([...new Set(refused.map((r) => r.reason))].sort(), ["expired", "replaced", "revoked", "used"]);
      assert.ok(refused.every((r) => r.address === "127.0.0.1"));
      assert.ok(audit.some((a) => a.action === "district.created" && JSON.parse(a.details).credentialsLink.expiresAt));
      assert.ok(audit.some((a) => a.action === "district.password_rotated" && JSON.parse(a.details).via === "new-link"));
      assert.ok(audit.some((a) => a.action === "district.credentials_link_revoked"));

      const everything = logLines.join("\n") + JSON.stringify(audit);
      for (const secret of secrets) assert.ok(!everything.includes(secret), "a token or password reached the logs or the audit trail");
    });

    it("answers an unknown link 404, logged and audited, and 429 after too many from one address", async () => {
      const missing = await page(randomBytes(32).toString("base64url"));
      assert.equal(missing.status, 404);
      assert.match(missing.html, /not valid/);
      assert.equal(missing.headers.get("cache-control"), "no-store");
      const malformed = await page("not-a-token", "POST");
      assert.equal(malformed.status, 404);
      const audit = await rd.database.db.selectFrom("audit_events").selectAll().where("action", "=", "district.credentials_link_refused").execute();
      assert.ok(audit.some((a) => JSON.parse(a.details).reason === "unknown" && JSON.parse(a.details).address === "127.0.0.1"));
      assert.ok(logLines.some((line) => line.includes('"event":"handoff.refused"') && line.includes('"reason":"unknown"')));

      // ROSTERDOCK_AUTH_RATE_PER_MINUTE is 5 here: 2 unknown links so far.
      for (let i = 0; i < 3; i++) assert.equal((await page(randomBytes(32).toString("base64url"))).status, 404);
      const limited = await page(randomBytes(32).toString("base64url"));
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get("retry-after")) > 0);
      assert.equal(limited.headers.get("cache-control"), "no-store");
      // A real link from the same address waits too: guessing stops, whatever the guess.
      const created = await district("pierce");
      assert.equal((await page(created.credentialsLink.token, "POST")).status, 429);
      assert.notEqual((await row(created.credentialsLink.token)).sealed_password, null, "and it is not used up");
      assert.ok(!logLines.join("\n").includes(created.credentialsLink.token));
    });
  });
}
