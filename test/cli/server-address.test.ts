import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RosterdockHome } from "../support/rosterdock-process.ts";
import { requireTool, runSftp } from "../support/sftp-client.ts";

describe("CLI commands tell districts the address the server really uses", () => {
  it("before any server: this shell's environment, and it says so", async () => {
    const home = await RosterdockHome.create({ ROSTERDOCK_SFTP_PORT: "2222", ROSTERDOCK_PUBLIC_HOST: "sftp.example.org" });
    try {
      const created = await home.json(["district", "create", "lincoln", "--name", "Lincoln"]);
      assert.deepEqual({ ...created.sftp, password: "" }, { host: "sftp.example.org", port: 2222, username: "lincoln", password: "", source: "environment" });
      const shown = await home.json(["district", "show", "lincoln"]);
      assert.deepEqual(shown.sftp, { host: "sftp.example.org", port: 2222, username: "lincoln", source: "environment" });
      const text = await home.cli(["district", "show", "lincoln"]);
      assert.match(text.stdout, /SFTP\s+sftp\.example\.org:2222 \(from this shell's environment: no server has started on this database yet\)/);
    } finally {
      await home.remove();
    }
  });

  it("once serve has started on a random port: the bound port and the server's public host, whatever this shell says", { skip: requireTool("sftp") }, async () => {
    const home = await RosterdockHome.create();
    const server = await home.serve();
    try {
      assert.notEqual(server.sftpPort, 0);
      // Another shell, configured differently: the server's values still win, and the text says both.
      const elsewhere = { ROSTERDOCK_SFTP_PORT: "2222", ROSTERDOCK_PUBLIC_HOST: "elsewhere.example.org" };
      const createdRun = await home.cli(["district", "create", "lincoln", "--name", "Lincoln", "--json"], elsewhere);
      assert.equal(createdRun.code, 0, createdRun.stderr);
      const created = JSON.parse(createdRun.stdout);
      assert.deepEqual({ ...created.sftp, password: "" }, { host: "127.0.0.1", port: server.sftpPort, username: "lincoln", password: "", source: "server" });

      const shown = await home.json(["district", "show", "lincoln"]);
      assert.deepEqual(shown.sftp, { host: "127.0.0.1", port: server.sftpPort, username: "lincoln", source: "server" });
      const text = await home.cli(["district", "show", "lincoln"], elsewhere);
      assert.match(text.stdout, new RegExp(`SFTP\\s+127\\.0\\.0\\.1:${server.sftpPort} \\(as the server published it when it started, \\d{4}-[^;]+; this shell's environment would say elsewhere\\.example\\.org:2222\\)`));
      const keys = await home.cli(["hostkey", "show"]);
      assert.match(keys.stdout, new RegExp(`Districts connect to 127\\.0\\.0\\.1 port ${server.sftpPort} \\(as the server published it`));
      assert.equal((await home.json(["hostkey", "show"])).length, 3, "hostkey show --json stays the list of keys");

      const rotated = await home.json(["district", "rotate-password", "lincoln"]);
      assert.equal(rotated.sftp.port, server.sftpPort);
      // What the district was told is where it can log in.
      const login = await runSftp({ port: rotated.sftp.port, username: rotated.sftp.username, password: rotated.sftp.password }, ["pwd"]);
      assert.equal(login.code, 0, login.stderr);

      // The admin API answers the same, and the client's token endpoint is the server's reachable URL.
      const admin = await home.json(["token", "create", "--name", "ops", "--scope", "admin"]);
      const viaApi = await fetch(`http://127.0.0.1:${server.httpPort}/api/v1/districts`, {
        method: "POST",
        headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
        body: JSON.stringify({ slug: "adams", name: "Adams" }),
      });
      assert.equal(viaApi.status, 201);
      assert.deepEqual({ ...(await viaApi.json()).sftp, password: "" }, { host: "127.0.0.1", port: server.sftpPort, username: "adams", password: "", source: "server" });
      const client = await home.cli(["client", "create", "--name", "gradebook"]);
      assert.match(client.stdout, new RegExp(`Token endpoint: http://127\\.0\\.0\\.1:${server.httpPort}/oauth/token`));
    } finally {
      await server.stop();
      await home.remove();
    }
  });
});
