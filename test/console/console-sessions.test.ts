import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { RosterdockHome } from "../support/rosterdock-process.ts";
import { BackendHomes, selectedBackends } from "../support/backends.ts";

/** A cookie jar of one cookie, enough for the console's session. */
class Visitor {
  cookie = "";
  constructor(private base: string) {}

  async request(path: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const response = await fetch(`${this.base}${path}`, {
      method: init.method ?? (init.form ? "POST" : "GET"),
      redirect: "manual",
      headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...(init.form ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
      ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    });
    const set = response.headers.get("set-cookie");
    if (set) this.cookie = set.split(";")[0]!;
    return response;
  }

  async token(path: string): Promise<string> {
    const html = await (await this.request(path)).text();
    return /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  }

  async signIn(email: string, password: string): Promise<Response> {
    return this.request("/sign-in", { form: { _csrf: await this.token("/sign-in"), email, password } });
  }
}

for (const backend of selectedBackends()) describe(`console sessions (${backend.name})`, { skip: backend.skip }, () => {
  const homes = new BackendHomes(backend.name);
  after(() => homes.close());

  it("are kept in the database across a restart, end when the operator is disabled, and are Secure behind https", async () => {
    const database = await homes.create();
    const url = database.env.ROSTERDOCK_DATABASE_URL;
    const home = await RosterdockHome.create(url ? { ROSTERDOCK_DATABASE_URL: url } : {});
    try {
      const ada = await home.json(["operator", "create", "ada@example.org"]);
      let server = await home.serve();
      const visitor = new Visitor(`http://127.0.0.1:${server.httpPort}`);
      const signedIn = await visitor.signIn("ADA@example.org", ada.password);
      assert.equal(signedIn.status, 303);
      assert.equal(signedIn.headers.get("location"), "/");
      const cookie = signedIn.headers.get("set-cookie") ?? "";
      assert.match(cookie, /HttpOnly/);
      assert.match(cookie, /SameSite=Lax/);
      assert.doesNotMatch(cookie, /Secure/);
      assert.equal((await visitor.request("/")).status, 200);
      await server.stop();

      server = await home.serve({ ROSTERDOCK_HTTP_PORT: String(new URL(`http://x:${server.httpPort}`).port) });
      const home2 = new Visitor(`http://127.0.0.1:${server.httpPort}`);
      home2.cookie = visitor.cookie;
      assert.equal((await home2.request("/")).status, 200, "the session outlives a restart");

      const disabled = await home.cli(["operator", "disable", "ada@example.org"]);
      assert.equal(disabled.code, 0, disabled.stderr);
      const after = await home2.request("/");
      assert.equal(after.status, 303);
      assert.equal(after.headers.get("location"), "/sign-in");
      assert.equal((await home2.signIn("ada@example.org", ada.password)).status, 401);
      await server.stop();

      server = await home.serve({ ROSTERDOCK_PUBLIC_URL: "https://rosterdock.example.org" });
      const secure = await fetch(`http://127.0.0.1:${server.httpPort}/sign-in`);
      assert.equal(secure.headers.getSetCookie().length, 1);
      assert.match(secure.headers.getSetCookie()[0]!, /^rosterdock_session=[^;]+;.*HttpOnly.*SameSite=Lax; Secure$/);
      assert.match(secure.headers.get("strict-transport-security") ?? "", /max-age/);
      await server.stop();
    } finally {
      await home.remove();
      await database.remove();
    }
  });
});
