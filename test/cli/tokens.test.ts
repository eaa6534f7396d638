import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RosterdockHome } from "../support/rosterdock-process.ts";

/** The secret part of a token: what must never be shown or stored again. */
const secretOf = (token: string) => token.slice("rdk_".length + 13);

describe("rosterdock token", () => {
  it("creates a roster.readonly token unless admin is asked for, and says so in --help", async () => {
    const home = await RosterdockHome.create();
    try {
      const plain = await home.json(["token", "create", "--name", "gradebook"]);
      assert.deepEqual({ ...plain, id: 0, token: "" }, { id: 0, name: "gradebook", scopes: ["roster.readonly"], token: "" });
      assert.match(plain.token, /^rdk_[A-Za-z0-9_-]{12}_[A-Za-z0-9_-]{43}$/);
      const admin = await home.json(["token", "create", "--name", "ops", "--scope", "admin"]);
      assert.deepEqual(admin.scopes, ["admin"]);

      const { default: Database } = await import("better-sqlite3");
      const db = new Database(`${home.dataDir}/rosterdock.sqlite`, { readonly: true });
      const stored = db.prepare("select id, scopes from api_tokens order by id").all() as { id: number; scopes: string }[];
      db.close();
      assert.deepEqual(
        stored.map((r) => [r.id, JSON.parse(r.scopes)]),
        [
          [plain.id, ["roster.readonly"]],
          [admin.id, ["admin"]],
        ],
      );

      const help = await home.cli(["token", "create", "--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout.replace(/\s+/g, " "), /default roster\.readonly/);
      assert.doesNotMatch(help.stdout.replace(/\s+/g, " "), /default:? admin|default: \[\]/);

      const text = await home.cli(["token", "create", "--name", "lms"]);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /\(roster\.readonly\), shown only now/);
    } finally {
      await home.remove();
    }
  });

  it("lists tokens without the tokens or their hashes, and revokes by id or name", async () => {
    const home = await RosterdockHome.create();
    try {
      const a = await home.json(["token", "create", "--name", "lms"]);
      const b = await home.json(["token", "create", "--name", "ops", "--scope", "admin"]);
      const listed = await home.json(["token", "list"]);
      assert.deepEqual(
        listed.map((t: any) => ({ ...t, createdAt: typeof t.createdAt })),
        [
          { id: a.id, name: "lms", scopes: ["roster.readonly"], createdAt: "string", revokedAt: null },
          { id: b.id, name: "ops", scopes: ["admin"], createdAt: "string", revokedAt: null },
        ],
      );
      const text = await home.cli(["token", "list"]);
      assert.equal(text.code, 0);
      assert.match(text.stdout, /^ID\s+NAME\s+SCOPES\s+CREATED/);
      assert.match(text.stdout, new RegExp(`^${b.id}\\s+ops\\s+admin\\s+\\d{4}-`, "m"));
      for (const output of [JSON.stringify(listed), text.stdout]) {
        for (const token of [a.token, b.token]) assert.ok(!output.includes(secretOf(token)));
        assert.doesNotMatch(output, /scrypt/);
      }

      const byName = await home.json(["token", "revoke", "lms"]);
      assert.equal(byName.id, a.id);
      assert.equal(byName.alreadyRevoked, false);
      assert.match(byName.revokedAt, /^\d{4}-/);
      const again = await home.json(["token", "revoke", String(a.id)]);
      assert.equal(again.alreadyRevoked, true);
      assert.deepEqual(
        (await home.json(["token", "list"])).map((t: any) => t.name),
        ["ops"],
      );
      assert.deepEqual(
        (await home.json(["token", "list", "--all"])).map((t: any) => [t.name, t.revokedAt === null]),
        [
          ["lms", false],
          ["ops", true],
        ],
      );

      const unknown = await home.cli(["token", "revoke", "nobody", "--json"]);
      assert.equal(unknown.code, 3);
      assert.equal(unknown.stdout, "");
      assert.match(unknown.stderr, /No API token has the id or name "nobody".*\[ERR_TOKEN_NOT_FOUND\]/);

      await home.json(["token", "create", "--name", "twin"]);
      await home.json(["token", "create", "--name", "twin"]);
      const ambiguous = await home.cli(["token", "revoke", "twin"]);
      assert.equal(ambiguous.code, 2);
      assert.match(ambiguous.stderr, /2 tokens are named "twin" \(ids \d+, \d+\): revoke one by its id/);
    } finally {
      await home.remove();
    }
  });

  it("a token revoked from the CLI stops working at once for the admin API and OneRoster", async () => {
    const home = await RosterdockHome.create();
    const server = await home.serve();
    try {
      await home.createDistrict("lincoln");
      const admin = await home.json(["token", "create", "--name", "ops", "--scope", "admin"]);
      const reader = await home.json(["token", "create", "--name", "gradebook"]);
      const base = `http://127.0.0.1:${server.httpPort}`;
      const get = (path: string, token: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
      const orgs = "/districts/lincoln/ims/oneroster/rostering/v1p2/orgs";

      // Both work, and the server has remembered them (a verified token is cached for a minute).
      for (let i = 0; i < 2; i++) {
        assert.equal((await get("/api/v1/districts", admin.token)).status, 200);
        assert.equal((await get(orgs, reader.token)).status, 200);
      }
      assert.equal((await get("/api/v1/districts", reader.token)).status, 403, "roster.readonly is not admin");

      await home.json(["token", "revoke", String(admin.id)]);
      await home.json(["token", "revoke", "gradebook"]);
      const refused = await get("/api/v1/districts", admin.token);
      assert.equal(refused.status, 401);
      assert.equal((await refused.json()).error.code, "ERR_UNAUTHENTICATED");
      assert.equal((await get(orgs, reader.token)).status, 401);
      assert.equal((await get(orgs, admin.token)).status, 401);
    } finally {
      await server.stop();
      await home.remove();
    }
  });
});

describe("rosterdock client create", () => {
  it("takes OneRoster's scope URIs or short names, stores them as short names, and refuses unknown ones", async () => {
    const home = await RosterdockHome.create();
    try {
      const plain = await home.json(["client", "create", "--name", "gradebook", "--json"]);
      assert.match(plain.clientId, /^rdc_/);
      assert.equal(typeof plain.clientSecret, "string");
      assert.deepEqual(plain.scopes, ["roster.readonly"]);
      const core = await home.json(["client", "create", "--name", "library", "--scope", "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly", "--json"]);
      assert.deepEqual(core.scopes, ["roster-core.readonly"]);
      const halves = await home.json([
        "client",
        "create",
        "--name",
        "reports",
        "--scope",
        "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly",
        "--scope",
        "roster-demographics.readonly",
        "--json",
      ]);
      assert.deepEqual(halves.scopes, ["roster.readonly"]);

      const { default: Database } = await import("better-sqlite3");
      const db = new Database(`${home.dataDir}/rosterdock.sqlite`, { readonly: true });
      const stored = db.prepare("select client_id, scopes from oauth_clients order by id").all() as { client_id: string; scopes: string }[];
      db.close();
      assert.deepEqual(
        stored.map((r) => [r.client_id, JSON.parse(r.scopes)]),
        [
          [plain.clientId, ["roster.readonly"]],
          [core.clientId, ["roster-core.readonly"]],
          [halves.clientId, ["roster.readonly"]],
        ],
      );

      const unknown = await home.cli(["client", "create", "--name", "grades", "--scope", "https://purl.imsglobal.org/spec/or/v1p2/scope/gradebook.readonly", "--json"]);
      assert.equal(unknown.code, 2);
      assert.equal(unknown.stdout, "");
      assert.match(unknown.stderr, /gradebook\.readonly.*\[ERR_INVALID_ARGUMENT\]/);
      const help = await home.cli(["client", "create", "--help"]);
      assert.match(help.stdout.replace(/\s+/g, " "), /roster-core\.readonly, roster-demographics\.readonly, their OneRoster URIs/);
    } finally {
      await home.remove();
    }
  });
});
