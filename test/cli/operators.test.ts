import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RosterdockHome } from "../support/rosterdock-process.ts";
import { verifySecret } from "../../src/security/secrets.ts";

describe("rosterdock operator", () => {
  it("creates an operator whose password is printed once and stored only as a hash; lists, disables, resets; audits each", async () => {
    const home = await RosterdockHome.create();
    try {
      const created = await home.json(["operator", "create", "Ada@Example.org"]);
      assert.deepEqual(Object.keys(created).sort(), ["email", "password"]);
      assert.equal(created.email, "ada@example.org");
      assert.match(created.password, /^[A-Za-z0-9][A-Za-z0-9_-]{22}[A-Za-z0-9]$/);

      const again = await home.cli(["operator", "create", "ADA@example.org"]);
      assert.equal(again.code, 4, again.stderr);
      assert.match(again.stderr, /ERR_OPERATOR_EXISTS/);
      assert.equal((await home.cli(["operator", "create", "not-an-email"])).code, 2);

      const { default: Database } = await import("better-sqlite3");
      const read = () => new Database(`${home.dataDir}/rosterdock.sqlite`, { readonly: true });
      let db = read();
      const stored = db.prepare("select * from operators").all() as { email: string; password_hash: string }[];
      db.close();
      assert.equal(stored.length, 1);
      assert.ok(!JSON.stringify(stored).includes(created.password));
      assert.ok(await verifySecret(created.password, stored[0]!.password_hash));

      const list = await home.json(["operator", "list"]);
      assert.deepEqual(list.map((o: any) => [o.email, o.status, o.lastSignInAt]), [["ada@example.org", "active", null]]);

      const reset = await home.json(["operator", "reset-password", "ada@example.org"]);
      assert.equal(reset.email, "ada@example.org");
      assert.notEqual(reset.password, created.password);
      db = read();
      const after = db.prepare("select password_hash from operators").get() as { password_hash: string };
      db.close();
      assert.ok(await verifySecret(reset.password, after.password_hash));
      assert.ok(!(await verifySecret(created.password, after.password_hash)));

      const disabled = await home.json(["operator", "disable", "ADA@example.org"]);
      assert.equal(disabled.status, "disabled");
      assert.equal((await home.cli(["operator", "disable", "nobody@example.org"])).code, 3);

      db = read();
      const audit = db.prepare("select action, details from audit_events where action like 'operator.%' order by id").all() as { action: string; details: string }[];
      db.close();
      assert.deepEqual(
        audit.map((a) => [a.action, JSON.parse(a.details).email]),
        [
          ["operator.created", "ada@example.org"],
          ["operator.password_reset", "ada@example.org"],
          ["operator.disabled", "ada@example.org"],
        ],
      );
      assert.ok(!audit.some((a) => a.details.includes(created.password) || a.details.includes(reset.password)));
    } finally {
      await home.remove();
    }
  });
});
