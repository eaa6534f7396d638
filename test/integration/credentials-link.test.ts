import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { RosterdockHome, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp } from "../support/sftp-client.ts";

const missing = requireTool("sftp");

/** The token at the end of a credentials link. */
function tokenOf(link: string): string {
  const match = /\/handoff\/([A-Za-z0-9_-]{43})$/.exec(link);
  assert.ok(match, `not a credentials link: ${link}`);
  return match[1]!;
}

function passwordOn(html: string): string | undefined {
  return /<code class="secret">([^<]+)<\/code>/.exec(html)?.[1];
}

describe("credentials link with the real server, CLI and OpenSSH sftp", { skip: missing }, () => {
  let home: RosterdockHome;
  let server: ServerProcess;
  const secrets: string[] = [];

  before(async () => {
    home = await RosterdockHome.create();
    server = await home.serve();
  });

  after(async () => {
    await server?.stop();
    await home?.remove();
  });

  const visit = async (link: string, method: "GET" | "POST") => {
    const response = await fetch(`http://127.0.0.1:${server.httpPort}/handoff/${tokenOf(link)}`, { method });
    return { status: response.status, html: await response.text() };
  };
  const login = (password: string) => runSftp({ port: server.sftpPort, username: "lincoln", password }, ["ls"]);

  it("hands over the password once; after rotation the old link is dead and the old password no longer logs in", async () => {
    const created = await home.json(["district", "create", "lincoln", "--name", "Lincoln Unified"]);
    secrets.push(created.sftp.password, tokenOf(created.credentialsLink));
    assert.deepEqual(Object.keys(created.sftp).sort(), ["host", "password", "port", "source", "username"]);
    assert.ok(created.credentialsLink.startsWith(`http://127.0.0.1:${server.httpPort}/handoff/`), "under the URL the running server published");

    const before = await visit(created.credentialsLink, "GET");
    assert.equal(before.status, 200);
    assert.equal(passwordOn(before.html), undefined);
    const revealed = await visit(created.credentialsLink, "POST");
    assert.equal(passwordOn(revealed.html), created.sftp.password);
    assert.ok(revealed.html.includes(`<code>${server.sftpPort}</code>`));
    assert.equal((await login(passwordOn(revealed.html)!)).code, 0, "the revealed password logs in");
    const again = await visit(created.credentialsLink, "POST");
    assert.equal(again.status, 410);
    assert.equal(passwordOn(again.html), undefined);

    const rotated = await home.json(["district", "rotate-password", "lincoln"]);
    secrets.push(rotated.sftp.password, tokenOf(rotated.credentialsLink));
    assert.notEqual(rotated.credentialsLink, created.credentialsLink);
    const renewed = await home.json(["district", "new-link", "lincoln"]);
    secrets.push(tokenOf(renewed.credentialsLink));
    assert.equal(renewed.sftp.password, undefined, "new-link prints the link, not the password");

    const replaced = await visit(rotated.credentialsLink, "POST");
    assert.equal(replaced.status, 410);
    assert.equal(passwordOn(replaced.html), undefined);
    assert.match(replaced.html, /replaced/);

    const fresh = await visit(renewed.credentialsLink, "POST");
    const password = passwordOn(fresh.html);
    assert.ok(password);
    secrets.push(password);
    const refused = await login(created.sftp.password);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /Permission denied/);
    assert.notEqual((await login(rotated.sftp.password)).code, 0, "nor the password new-link replaced");
    assert.equal((await login(password)).code, 0, "the newest link's password logs in");

    const shown = await home.json(["district", "show", "lincoln"]);
    assert.equal(shown.credentialsLinkStatus.state, "used");
  });

  it("revoke-link ends an unused link; text output prints the link", async () => {
    const text = await home.cli(["district", "new-link", "lincoln"]);
    assert.equal(text.code, 0, text.stderr);
    const link = /(http:\/\/\S+\/handoff\/[A-Za-z0-9_-]{43})/.exec(text.stdout)?.[1];
    assert.ok(link, text.stdout);
    secrets.push(tokenOf(link));
    assert.deepEqual(await home.json(["district", "revoke-link", "lincoln"]), { slug: "lincoln", revoked: 1 });
    const revoked = await visit(link, "POST");
    assert.equal(revoked.status, 410);
    assert.match(revoked.html, /revoked/);
    assert.equal(passwordOn(revoked.html), undefined);
    assert.match((await home.cli(["district", "revoke-link", "lincoln"])).stdout, /no credentials link that could still be used/);
  });

  it("logs reveals and refusals with the address, never a token or a password", async () => {
    await server.waitForLog((e) => e.event === "handoff.revealed" && e.ip === "127.0.0.1");
    await server.waitForLog((e) => e.event === "handoff.refused" && e.reason === "revoked" && e.ip === "127.0.0.1");
    const logs = JSON.stringify(server.logs);
    for (const secret of secrets) assert.ok(!logs.includes(secret));
  });
});
