import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RosterdockHome } from "../support/rosterdock-process.ts";

describe("configuration", () => {
  it("names every bad setting and exits with a usage error", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_SFTP_PORT: "70000", ROSTERDOCK_QUIET_SECONDS: "0", ROSTERDOCK_PUBLIC_URL: "ftp://x", ROSTERDOCK_DATABASE_URL: "mysql://x", ROSTERDOCK_SFTP_LOGIN_TIMEOUT_SECONDS: "0", ROSTERDOCK_SFTP_MAX_CHANNELS_PER_CONNECTION: "four" });
    try {
      const result = await home.cli(["district", "list"]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /ROSTERDOCK_SFTP_PORT must be between 0 and 65535, got 70000/);
      assert.match(result.stderr, /ROSTERDOCK_QUIET_SECONDS must be between 0.05 and \d+, got 0/);
      assert.match(result.stderr, /ROSTERDOCK_PUBLIC_URL must be an http\(s\) URL/);
      assert.match(result.stderr, /ROSTERDOCK_DATABASE_URL must start with postgres/);
      assert.match(result.stderr, /ROSTERDOCK_SFTP_LOGIN_TIMEOUT_SECONDS must be between 1 and 3600, got 0/);
      assert.match(result.stderr, /ROSTERDOCK_SFTP_MAX_CHANNELS_PER_CONNECTION must be a whole number, got "four"/);
    } finally {
      await home.remove();
    }
  });
});

describe("CLI contract", () => {
  it("creates a district with a typeable password shown once and stored only as a hash", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_SFTP_PORT: "2222", ROSTERDOCK_PUBLIC_HOST: "sftp.example.org", ROSTERDOCK_PUBLIC_URL: "https://rosterdock.example.org/" });
    try {
      const created = await home.json(["district", "create", "lincoln-usd", "--name", "Lincoln Unified", "--allow-ip", "203.0.113.0/24"]);
      assert.deepEqual(Object.keys(created).sort(), ["credentialsLink", "credentialsLinkExpiresAt", "hostKeys", "name", "sftp", "slug"]);
      assert.match(created.credentialsLink, /^https:\/\/rosterdock\.example\.org\/handoff\/[A-Za-z0-9_-]{43}$/);
      assert.equal(created.slug, "lincoln-usd");
      assert.equal(created.name, "Lincoln Unified");
      assert.deepEqual({ ...created.sftp, password: undefined }, { host: "sftp.example.org", port: 2222, username: "lincoln-usd", password: undefined, source: "environment" });
      assert.match(created.sftp.password, /^[A-Za-z0-9_-]{20,}$/);
      assert.equal(created.hostKeys.length, 3);

      const { default: Database } = await import("better-sqlite3");
      const db = new Database(`${home.dataDir}/rosterdock.sqlite`, { readonly: true });
      const dump = JSON.stringify(db.prepare("select * from credentials").all());
      const links = JSON.stringify(db.prepare("select * from credential_handoffs").all());
      db.close();
      assert.ok(!dump.includes(created.sftp.password));
      assert.match(dump, /scrypt\$/);
      assert.ok(!links.includes(created.sftp.password) && !links.includes(created.credentialsLink.split("/").pop()));

      const shown = await home.json(["district", "show", "lincoln-usd"]);
      assert.deepEqual(shown.allowIps, ["203.0.113.0/24"]);
      assert.equal(JSON.stringify(shown).includes(created.sftp.password), false);

      const duplicate = await home.cli(["district", "create", "lincoln-usd", "--name", "Again"]);
      assert.equal(duplicate.code, 4);
      assert.match(duplicate.stderr, /already exists/);
      const badIp = await home.cli(["district", "create", "other", "--name", "Other", "--allow-ip", "300.1.1.1"]);
      assert.equal(badIp.code, 2);
      assert.match(badIp.stderr, /not an IP address or CIDR range/);
      const unknown = await home.cli(["syncs", "nowhere", "--json"]);
      assert.equal(unknown.code, 3);
      assert.equal(unknown.stdout, "");
    } finally {
      await home.remove();
    }
  });

  it("creates API tokens shown once and stored hashed", async () => {
    const home = await RosterdockHome.create();
    try {
      const { token } = await home.json(["token", "create", "--name", "lms"]);
      assert.match(token, /^rdk_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{43}$/);
      const { default: Database } = await import("better-sqlite3");
      const db = new Database(`${home.dataDir}/rosterdock.sqlite`, { readonly: true });
      const rows = db.prepare("select * from api_tokens").all() as { secret_hash: string; scopes: string }[];
      db.close();
      assert.equal(rows.length, 1);
      // rdk_ + 12-character lookup + _ + secret; base64url may itself contain "_".
      assert.ok(!JSON.stringify(rows).includes(token.slice("rdk_".length + 13)));
      assert.deepEqual(JSON.parse(rows[0]!.scopes), ["roster.readonly"], "without --scope, a token only reads rosters");
      assert.equal((await home.cli(["token", "create", "--name", "x", "--scope", "root"])).code, 2);
    } finally {
      await home.remove();
    }
  });
});

describe("serve", () => {
  it("answers health checks, names itself, and exits cleanly on SIGTERM", async () => {
    const home = await RosterdockHome.create();
    try {
      const server = await home.serve();
      const health = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
      assert.equal(health.status, 200);
      const body = await health.json();
      assert.deepEqual({ status: body.status, database: body.database, sftp: body.sftp }, { status: "ok", database: "ok", sftp: "ok" });
      assert.deepEqual({ unauthenticated: body.connections.unauthenticated, authenticated: body.connections.authenticated, channels: body.connections.channels }, { unauthenticated: 0, authenticated: 0, channels: 0 });
      assert.equal(body.connections.limits.maxUnauthenticatedPerAddress, 20);
      assert.equal(typeof body.descriptors.open, "number");
      const page = await fetch(`http://127.0.0.1:${server.httpPort}/`);
      assert.match(await page.text(), /Rosterdock/);
      const started = Date.now();
      assert.equal(await server.stop(), 0);
      assert.ok(server.logs.some((e) => e.event === "server.stopped"));
      assert.ok(Date.now() - started < 10_000, "serve stops within seconds of SIGTERM");
    } finally {
      await home.remove();
    }
  });

  it("says clearly when its port is taken", async () => {
    const home = await RosterdockHome.create();
    try {
      const first = await home.serve();
      const second = await home.cli(["serve"], { ROSTERDOCK_SFTP_PORT: String(first.sftpPort) });
      assert.notEqual(second.code, 0);
      assert.match(second.stderr, new RegExp(`port ${first.sftpPort} .*in use`));
      await first.stop();
    } finally {
      await home.remove();
    }
  });
});
