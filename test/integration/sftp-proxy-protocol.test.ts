import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import ssh2 from "ssh2";
import { RosterdockHome, type ServerProcess } from "../support/rosterdock-process.ts";
import { V2_SIGNATURE } from "../../src/sftp/proxy-header.ts";

// The SFTP server behind a proxy that speaks PROXY protocol, played here by the test writing the
// header itself on a loopback connection, then handing the socket to ssh2's client.

function v2Header(source: string, sourcePort: number): Buffer {
  const head = Buffer.from([0x21, 0x11, 0, 12]);
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(2222, 2);
  return Buffer.concat([V2_SIGNATURE, head, Buffer.from(source.split(".").map(Number)), Buffer.from([127, 0, 0, 1]), ports]);
}
const V2_LOCAL = Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]);

type Outcome = "ready" | "refused" | "dropped";

function tcp(port: number, localAddress = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Writes `header` (if any), then logs in over the same connection with ssh2's client. */
async function loginThrough(port: number, header: Buffer | string | undefined, auth: { username: string; password: string }, localAddress?: string): Promise<Outcome> {
  const sock = await tcp(port, localAddress);
  if (header !== undefined) sock.write(header);
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let settled = false;
    const done = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      client.end();
      sock.destroy();
      resolve(outcome);
    };
    client.on("ready", () => done("ready"));
    client.on("error", (error: Error & { level?: string }) => done(error.level === "client-authentication" ? "refused" : "dropped"));
    client.on("close", () => done("dropped"));
    client.connect({ sock, username: auth.username, password: auth.password, readyTimeout: 60_000, tryKeyboard: false });
  });
}

/** Sends raw bytes and resolves with what the server answered before closing the connection. */
async function raw(port: number, bytes: Buffer | string | undefined, localAddress?: string): Promise<string> {
  const socket = await tcp(port, localAddress);
  socket.on("error", () => undefined);
  if (bytes !== undefined) socket.write(bytes);
  let answer = "";
  socket.on("data", (chunk: Buffer) => (answer += chunk.toString("latin1")));
  await new Promise((resolve) => socket.once("close", resolve));
  return answer;
}

async function logAfter(server: ServerProcess, from: number, predicate: (entry: any) => boolean, timeoutMs = 10_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = server.logs.slice(from).find(predicate);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching log entry; last: ${JSON.stringify(server.logs.slice(-5))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("SFTP with PROXY protocol on", () => {
  let home: RosterdockHome;
  let server: ServerProcess;
  let lincoln: { username: string; password: string };
  let adams: { username: string; password: string };

  before(async () => {
    home = await RosterdockHome.create({
      ROSTERDOCK_SFTP_PROXY_PROTOCOL: "true",
      ROSTERDOCK_SFTP_TRUSTED_PROXIES: "127.0.0.1,127.0.0.2",
      // Long enough for a key exchange and a failed login on a loaded machine, short enough to wait out once.
      ROSTERDOCK_SFTP_LOGIN_TIMEOUT_SECONDS: "5",
      ROSTERDOCK_LOGIN_MAX_FAILURES: "3",
      ROSTERDOCK_LOGIN_MAX_ACCOUNTS: "2",
      ROSTERDOCK_SFTP_MAX_UNAUTHENTICATED_PER_ADDRESS: "2",
    });
    lincoln = await home.createDistrict("lincoln", ["--allow-ip", "203.0.113.0/24"]);
    adams = await home.createDistrict("adams");
    server = await home.serve();
  });

  after(async () => {
    await server?.stop();
    await home?.remove();
  });

  it("checks a district's allow-list against the client's address in a v2 header, and logs that address", async () => {
    const from = server.logs.length;
    assert.equal(await loginThrough(server.sftpPort, v2Header("203.0.113.9", 50123), lincoln), "ready");
    const logged = await logAfter(server, from, (e) => e.event === "sftp.login.succeeded" && e.district === "lincoln");
    assert.deepEqual([logged.ip, logged.via], ["203.0.113.9", "127.0.0.1"]);

    // The same district from another client address, through the same proxy: refused by its allow-list.
    const refusedFrom = server.logs.length;
    assert.equal(await loginThrough(server.sftpPort, "PROXY TCP4 198.51.100.7 127.0.0.1 40000 2222\r\n", lincoln), "refused");
    const refused = await logAfter(server, refusedFrom, (e) => e.event === "sftp.login.failed" && e.username === lincoln.username);
    assert.deepEqual([refused.ip, refused.reason], ["198.51.100.7", "address_not_allowed"]);
  });

  it("takes v2 LOCAL and v1 UNKNOWN as the proxy's own connection", async () => {
    for (const header of [V2_LOCAL, "PROXY UNKNOWN\r\n"]) {
      const from = server.logs.length;
      assert.equal(await loginThrough(server.sftpPort, header, adams, "127.0.0.2"), "ready");
      const logged = await logAfter(server, from, (e) => e.event === "sftp.login.succeeded" && e.district === "adams");
      assert.deepEqual([logged.ip, logged.via], ["127.0.0.2", "127.0.0.2"]);
      // The allow-list holds the proxy's own connection to what it is: not a district's address.
      assert.equal(await loginThrough(server.sftpPort, header, lincoln), "refused");
    }
  });

  it("reads a header that arrives in the same packet as the client's SSH identification", async () => {
    const from = server.logs.length;
    const answer = await raw(server.sftpPort, Buffer.concat([v2Header("203.0.113.20", 1), Buffer.from("SSH-2.0-OpenSSH_9.2\r\n"), Buffer.from([0, 0, 0, 12, 10, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])]));
    assert.match(answer, /^SSH-2\.0-Rosterdock\r\n/);
    // Ident read whole and right: what followed it was the broken packet, not the header.
    const failed = await logAfter(server, from, (e) => e.event === "sftp.handshake_failed");
    assert.equal(failed.ip, "203.0.113.20");
    assert.equal(failed.client, "SSH-2.0-OpenSSH_9.2");
    assert.notEqual(failed.reason, "bad_identification");
  });

  it("refuses, and logs why, a connection from an untrusted address, without a header, with a malformed one or a slow one", async () => {
    const cases: [string, Buffer | string | undefined, string | undefined, Record<string, unknown>][] = [
      ["untrusted", v2Header("203.0.113.9", 1), "127.0.0.3", { event: "sftp.handshake_failed", reason: "proxy_untrusted", ip: "127.0.0.3" }],
      ["missing", "SSH-2.0-OpenSSH_9.2\r\n", undefined, { event: "sftp.handshake_failed", reason: "proxy_header_missing", ip: "127.0.0.1" }],
      ["malformed", "PROXY TCP4 203.0.113.999 127.0.0.1 1 2\r\nSSH-2.0-OpenSSH_9.2\r\n", undefined, { event: "sftp.handshake_failed", reason: "proxy_header_malformed", ip: "127.0.0.1" }],
      ["slow", "PROXY TCP4 203.0.", undefined, { event: "sftp.connection.timed_out", stage: "login", phase: "proxy_header", ip: "127.0.0.1" }],
    ];
    for (const [name, bytes, localAddress, expected] of cases) {
      const from = server.logs.length;
      const started = Date.now();
      const answer = await raw(server.sftpPort, bytes, localAddress);
      assert.equal(answer, "", `${name}: refused before any SSH`);
      const logged = await logAfter(server, from, (e) => e.event === expected.event);
      for (const [field, value] of Object.entries(expected)) assert.equal(logged[field], value, `${name}: ${field}`);
      if (name === "slow") assert.ok(Date.now() - started >= 4900, "the login timeout applies to the header");
      if (name === "untrusted") assert.equal(logged.refused, 1);
      assert.equal(typeof logged.msg, "string");
    }
    const health = await (await fetch(`http://127.0.0.1:${server.httpPort}/healthz`)).json();
    assert.equal(health.connections.timedOut.login, 1, "the slow header counts as a login timeout");
  });

  it("bans and caps the client's address, not the proxy's", async () => {
    const guesser = "203.0.113.50";
    // Wrong passwords at two accounts (ROSTERDOCK_LOGIN_MAX_ACCOUNTS) ban the address for every account.
    const outcomes: Outcome[] = [];
    for (const username of ["nobody1", "nobody2"]) outcomes.push(await loginThrough(server.sftpPort, v2Header(guesser, 1000 + outcomes.length), { username, password: "wrong" }));
    assert.deepEqual(outcomes, ["refused", "refused"]);
    const from = server.logs.length;
    assert.equal(await loginThrough(server.sftpPort, v2Header(guesser, 2000), adams), "dropped");
    const dropped = await logAfter(server, from, (e) => e.event === "sftp.connection.refused" && e.reason === "banned");
    assert.deepEqual([dropped.ip, dropped.via], [guesser, "127.0.0.1"]);
    // Its neighbour and the proxy itself are not banned.
    assert.equal(await loginThrough(server.sftpPort, v2Header("203.0.113.51", 2001), adams), "ready");
    assert.equal(await loginThrough(server.sftpPort, V2_LOCAL, adams), "ready");

    // Two connections not logged in from one client fill its cap; a third from it is refused, another client's is not.
    const held = [await tcp(server.sftpPort), await tcp(server.sftpPort)];
    // Each has its place in the caps once the server, its header read, speaks SSH to it.
    const banners = held.map((socket) => new Promise((resolve) => socket.once("data", resolve)));
    held[0]!.write(v2Header("203.0.113.77", 1));
    held[1]!.write(v2Header("203.0.113.77", 2));
    await Promise.all(banners);
    const capFrom = server.logs.length;
    assert.equal(await raw(server.sftpPort, v2Header("203.0.113.77", 3)), "");
    const capped = await logAfter(server, capFrom, (e) => e.event === "sftp.connection.refused");
    assert.deepEqual([capped.limit, capped.ip], ["unauthenticated_per_address", "203.0.113.77"]);
    assert.equal(await loginThrough(server.sftpPort, v2Header("203.0.113.78", 4), adams), "ready");
    for (const socket of held) socket.destroy();
  });

  it("logs a scanner going around the proxy once a minute, however often it connects", async () => {
    const from = server.logs.length;
    for (let i = 0; i < 5; i++) assert.equal(await raw(server.sftpPort, "SSH-2.0-scanner\r\n", "127.0.0.4"), "");
    // The first refusal's line, however late a loaded machine delivers it; then a while for any other.
    await logAfter(server, from, (e) => e.event === "sftp.handshake_failed" && e.ip === "127.0.0.4");
    await new Promise((r) => setTimeout(r, 300));
    const lines = server.logs.slice(from).filter((e) => e.event === "sftp.handshake_failed" && e.ip === "127.0.0.4");
    assert.deepEqual(
      lines.map((e) => [e.reason, e.refused]),
      [["proxy_untrusted", 1]],
    );
  });
});

describe("SFTP with PROXY protocol off (the default)", () => {
  let home: RosterdockHome;
  let server: ServerProcess;

  before(async () => {
    home = await RosterdockHome.create();
    server = await home.serve();
  });

  after(async () => {
    await server?.stop();
    await home?.remove();
  });

  it("answers a PROXY header like any other bad SSH identification: refused and logged", async () => {
    for (const header of [v2Header("203.0.113.9", 1), Buffer.from("PROXY TCP4 203.0.113.9 127.0.0.1 1 2222\r\n")]) {
      const from = server.logs.length;
      await raw(server.sftpPort, Buffer.concat([header, Buffer.from("SSH-2.0-OpenSSH_9.2\r\n")]));
      const failed = await logAfter(server, from, (e) => e.event === "sftp.handshake_failed");
      assert.equal(failed.reason, "bad_identification");
      assert.equal(failed.ip, "127.0.0.1");
    }
  });
});
