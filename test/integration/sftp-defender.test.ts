import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { RosterdockHome, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";
import { WebhookReceiver } from "../support/webhook-receiver.ts";

const missing = requireTool("sftp");
const PARALLEL = 200;
const LIMIT = 10;

/** What a login attempt by the ssh2 client came to. */
type Outcome = "ready" | "refused" | "dropped";

/** One SSH login from `localAddress` with ssh2's client, a real SSH client in this process. */
function sshLogin(port: number, localAddress: string, auth: { username: string; password?: string; privateKey?: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let settled = false;
    const done = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      client.end();
      resolve(outcome);
    };
    client.on("ready", () => done("ready"));
    client.on("error", (error: Error & { level?: string }) => done(error.level === "client-authentication" ? "refused" : "dropped"));
    client.on("close", () => done("dropped"));
    client.connect({ host: "127.0.0.1", port, localAddress, readyTimeout: 120_000, tryKeyboard: false, ...auth });
  });
}

/** A logged-in SFTP session kept open, to see the server end it. */
function openSession(port: number, login: { username: string; password: string }): Promise<{ closed: Promise<number>; end(): void }> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    const closed = new Promise<number>((r) => client.on("close", () => r(Date.now())));
    client.on("error", () => undefined);
    client.on("ready", () =>
      client.sftp((error) => {
        if (error) return reject(error);
        resolve({ closed, end: () => client.end() });
      }),
    );
    client.connect({ host: "127.0.0.1", port, readyTimeout: 60_000, ...login });
  });
}

/** Whether a TCP connection from `localAddress` is answered with an SSH identification, or closed first. */
function banner(port: number, localAddress: string): Promise<"banner" | "closed"> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, localAddress });
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on("data", (chunk) => {
      if (chunk.toString("latin1").startsWith("SSH-")) {
        clearTimeout(timer);
        socket.destroy();
        resolve("banner");
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve("closed");
    });
  });
}

function postForm(port: number, localAddress: string, path: string, form: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = new URLSearchParams(form).toString();
    const req = request({ host: "127.0.0.1", port, localAddress, path, method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) }, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function api(port: number, token: string, method: string, path: string): Promise<{ status: number; body: any }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: await response.json() };
}

const BIND = (address: string) => ["-o", `BindAddress=${address}`];

describe("the defender, against a real server and real SSH clients", { skip: missing, timeout: 15 * 60_000 }, () => {
  let home: RosterdockHome;
  let server: ServerProcess;
  let lincoln: SftpLogin;
  let jefferson: SftpLogin;
  let adams: SftpLogin;
  let receiver: WebhookReceiver;
  let files: string;

  const failures = (ip: string, reasons: string[]) =>
    server.logs.filter((e) => e.event === "sftp.login.failed" && e.ip === ip && reasons.includes(e.reason));

  before(async () => {
    home = await RosterdockHome.create({ ROSTERDOCK_LOGIN_MAX_FAILURES: String(LIMIT), ROSTERDOCK_LOGIN_MAX_ACCOUNTS: "5" });
    lincoln = { ...(await home.createDistrict("lincoln")), port: 0 };
    jefferson = { ...(await home.createDistrict("jefferson")), port: 0 };
    adams = { ...(await home.createDistrict("adams")), port: 0 };
    receiver = await WebhookReceiver.start();
    await home.json(["webhook", "add", receiver.url, "--event", "district.under_attack"]);
    server = await home.serve();
    for (const login of [lincoln, jefferson, adams]) login.port = server.sftpPort;
    files = await mkdtemp(join(tmpdir(), "rosterdock-defender-"));
    await writeFile(join(files, "students.csv"), "Student_Number,First_Name,Last_Name\n1,Ann,Lee\n");
  });

  after(async () => {
    await server?.stop();
    await receiver?.close();
    await home?.remove();
  });

  it("checks at most the limit of 200 simultaneous wrong passwords, bans that address for that account only, and flags the district", async () => {
    const outcomes = await Promise.all(Array.from({ length: PARALLEL }, (_, i) => sshLogin(server.sftpPort, "127.0.0.2", { username: "lincoln", password: `guess-${i}` })));
    assert.equal(outcomes.filter((o) => o === "ready").length, 0);
    const checked = failures("127.0.0.2", ["bad_password"]);
    assert.ok(checked.length >= 1 && checked.length <= LIMIT, `${checked.length} passwords were checked`);
    assert.ok(failures("127.0.0.2", ["too_many_failures", "banned"]).length > 0);

    const bans = await waitFor(async () => {
      const list = await home.json(["bans", "list"]);
      return list.length > 0 && list;
    });
    assert.deepEqual(
      bans.map((b: any) => [b.address, b.account, b.strikes]),
      [["127.0.0.2", "lincoln", 1]],
    );
    const minutes = (Date.parse(bans[0].bannedUntil) - Date.parse(bans[0].bannedAt)) / 60_000;
    assert.equal(minutes, 30);

    // Districts behind the same address are not locked out; the guessed one is.
    const other = await runSftp(jefferson, ["put students.csv"], { cwd: files, extra: BIND("127.0.0.2") });
    assert.equal(other.code, 0, other.stderr);
    const guessed = await runSftp(lincoln, ["ls"], { extra: BIND("127.0.0.2") });
    assert.notEqual(guessed.code, 0);
    assert.equal(failures("127.0.0.2", ["bad_password"]).length, checked.length, "the right password of a banned pair is not even checked");

    const shown = await home.json(["district", "show", "lincoln"]);
    assert.deepEqual(shown.underAttack.addresses, ["127.0.0.2"]);
    assert.equal((await home.json(["district", "show", "jefferson"])).underAttack, null);
    const hook = await waitFor(async () => receiver.received.find((r) => JSON.parse(r.body).event === "district.under_attack"));
    assert.equal(JSON.parse(hook.body).district, "lincoln");
    assert.equal(JSON.parse(hook.body).data.address, "127.0.0.2");
  });

  it("counts 200 simultaneous wrong public keys the same way", async () => {
    const key = ssh2.utils.generateKeyPairSync("ed25519");
    const outcomes = await Promise.all(Array.from({ length: PARALLEL }, () => sshLogin(server.sftpPort, "127.0.0.3", { username: "adams", privateKey: key.private })));
    assert.equal(outcomes.filter((o) => o === "ready").length, 0);
    const checked = failures("127.0.0.3", ["bad_key"]);
    assert.ok(checked.length >= 1 && checked.length <= LIMIT, `${checked.length} keys were checked`);
    await waitFor(async () => (await home.json(["bans", "list", "127.0.0.3"])).some((b: any) => b.account === "adams"));
  });

  it("bans an address guessing across accounts outright: its connections are dropped before the SSH banner, also after a restart", async () => {
    assert.equal(await banner(server.sftpPort, "127.0.0.4"), "banner");
    await Promise.all(Array.from({ length: PARALLEL }, (_, i) => sshLogin(server.sftpPort, "127.0.0.4", { username: `guess${i % 40}`, password: `guess-${i}` })));
    const checked = failures("127.0.0.4", ["bad_password", "unknown_user"]);
    assert.ok(checked.length >= 1 && checked.length <= LIMIT * 5, `${checked.length} passwords were checked`);
    await waitFor(async () => (await home.json(["bans", "list", "127.0.0.4"])).some((b: any) => b.account === null));
    assert.equal(await banner(server.sftpPort, "127.0.0.4"), "closed");
    await server.waitForLog((e) => e.event === "sftp.connection.refused" && e.ip === "127.0.0.4");

    await server.stop();
    server = await home.serve();
    for (const login of [lincoln, jefferson, adams]) login.port = server.sftpPort;
    assert.equal(await banner(server.sftpPort, "127.0.0.4"), "closed");
    assert.equal(await banner(server.sftpPort, "127.0.0.5"), "banner");
  });

  it("`bans clear` lifts the bans of a running server", async () => {
    const cleared = await home.cli(["bans", "clear", "--json"]);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.ok(JSON.parse(cleared.stdout).lifted >= 3);
    assert.deepEqual(await home.json(["bans", "list"]), []);
    await waitFor(async () => (await banner(server.sftpPort, "127.0.0.4")) === "banner", 15_000, "the address to be let in again");
    const back = await runSftp(lincoln, ["ls"], { extra: BIND("127.0.0.2") });
    assert.equal(back.code, 0, back.stderr);
  });

  it("keeps another district's SFTP upload under 2 s (and 2× idle) during a flood of 200 wrong OAuth client secrets", async (t) => {
    const client = await home.json(["client", "create", "--name", "gradebook"]);
    const upload = async () => {
      const started = Date.now();
      const result = await runSftp(jefferson, ["put students.csv"], { cwd: files });
      assert.equal(result.code, 0, result.stderr);
      return Date.now() - started;
    };
    const idle = Math.max(await upload(), await upload());

    // 20 addresses × 10 wrong secrets: all within their limits, so every one goes to be hashed.
    let answered = 0;
    const flood = Promise.all(
      Array.from({ length: PARALLEL }, (_, i) =>
        postForm(server.httpPort, `127.0.1.${1 + (i % 20)}`, "/oauth/token", { grant_type: "client_credentials", client_id: client.clientId, client_secret: `wrong-${i}` }).finally(() => answered++),
      ),
    );
    // Measured once the burst of requests is in and hashes are queued: what is tested is hashing, not 200 HTTP requests arriving at once.
    await waitFor(async () => answered >= PARALLEL / 2 || server.logs.filter((e) => e.event === "http.auth.failed").length >= 20, 60_000, "the flood to be under way");
    const during: number[] = [];
    let overlapping = 0;
    for (let i = 0; i < 3; i++) {
      during.push(await upload());
      if (answered < PARALLEL) overlapping++;
    }
    const statuses = await flood;
    assert.ok(statuses.every((s) => s === 401 || s === 429 || s === 503), JSON.stringify(statuses));
    const hashed = server.logs.filter((e) => e.event === "http.auth.failed").length;
    // The idle baseline again once the flood is answered: the load other processes put on the machine
    // changes over the seconds the flood lasts, and the uploads during it are judged against both.
    const idleAfter = Math.max(await upload(), await upload());
    t.diagnostic(`upload: idle ${idle} ms before and ${idleAfter} ms after, during the flood ${during.join(", ")} ms (${overlapping} while secrets were still being checked); ${hashed} secrets checked, ${statuses.filter((s) => s === 503).length} refused busy`);
    assert.ok(overlapping >= 1, "no upload overlapped the hashing");
    // Under 2 s, as asked; on a machine so loaded that an idle upload takes over a second, within 2× idle.
    const bound = Math.max(2000, 2 * Math.max(idle, idleAfter));
    assert.ok(during.every((ms) => ms < bound), `idle ${idle} ms before and ${idleAfter} ms after, during the flood ${during.join(", ")} ms (${hashed} secrets checked)`);

    // From one address, the rate limit and the defender stop it: at most the limit is hashed.
    const before = server.logs.filter((e) => e.event === "http.auth.failed").length;
    const single = await Promise.all(
      Array.from({ length: PARALLEL }, (_, i) => postForm(server.httpPort, "127.0.1.99", "/oauth/token", { grant_type: "client_credentials", client_id: client.clientId, client_secret: `wrong-${i}` })),
    );
    assert.ok(single.filter((s) => s === 429).length >= PARALLEL - LIMIT);
    assert.ok(server.logs.filter((e) => e.event === "http.auth.failed").length - before <= LIMIT);
    await waitFor(async () => (await home.json(["bans", "list", "127.0.1.99"])).some((b: any) => b.account === `client:${client.clientId}`));
  });

  it("ends a district's open session when it is disabled (API) or its password rotated (CLI)", async () => {
    const { token } = await home.json(["token", "create", "--name", "ops", "--scope", "admin"]);

    const rotatedSession = await openSession(server.sftpPort, jefferson);
    const rotated = await home.json(["district", "rotate-password", "jefferson"]);
    const rotatedAt = Date.now();
    const closedAt = await Promise.race([rotatedSession.closed, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
    assert.ok(closedAt > 0, "the session of a district whose password was rotated stays open");
    assert.ok(closedAt - rotatedAt < 10_000);
    await server.waitForLog((e) => e.event === "sftp.session.ended" && e.district === "jefferson" && e.reason === "password_rotated");
    jefferson.password = rotated.sftp.password;

    const disabledSession = await openSession(server.sftpPort, adams);
    const stillOpen = await openSession(server.sftpPort, jefferson);
    assert.equal((await api(server.httpPort, token, "POST", "/api/v1/districts/adams/disable")).status, 200);
    // From the answer, not the request: checking the new token's hash may take a while on a loaded machine.
    // Sessions are also checked every 5 s; "at once" is well before that.
    const answered = Date.now();
    const ended = await Promise.race([disabledSession.closed, new Promise<number>((r) => setTimeout(() => r(-1), 5000))]);
    assert.ok(ended > 0 && ended - answered < 2000, `disabling through the API ends the session at once (${ended - answered} ms after the answer)`);
    await server.waitForLog((e) => e.event === "sftp.session.ended" && e.district === "adams" && e.reason === "disabled");
    assert.equal(await Promise.race([stillOpen.closed, new Promise<number>((r) => setTimeout(() => r(-1), 500))]), -1, "another district's session stays open");
    stillOpen.end();
  });

  it("lists and lifts bans through the admin API", async () => {
    const { token } = await home.json(["token", "create", "--name", "ops-bans", "--scope", "admin"]);
    const client = await home.json(["client", "create", "--name", "reports"]);
    for (let i = 0; i < LIMIT; i++) {
      assert.equal(await postForm(server.httpPort, "127.0.1.100", "/oauth/token", { grant_type: "client_credentials", client_id: client.clientId, client_secret: `wrong-${i}` }), 401);
    }
    assert.equal(await postForm(server.httpPort, "127.0.1.100", "/oauth/token", { grant_type: "client_credentials", client_id: client.clientId, client_secret: client.clientSecret }), 429);
    await waitFor(async () => (await api(server.httpPort, token, "GET", "/api/v1/bans?address=127.0.1.100")).body.length > 0);
    const listed = await api(server.httpPort, token, "GET", "/api/v1/bans");
    assert.equal(listed.status, 200);
    assert.ok(listed.body.some((b: any) => b.address === "127.0.1.100"));
    const lifted = await api(server.httpPort, token, "DELETE", "/api/v1/bans?address=127.0.1.100");
    assert.equal(lifted.status, 200);
    assert.ok(lifted.body.lifted >= 1);
    assert.deepEqual((await api(server.httpPort, token, "GET", "/api/v1/bans?address=127.0.1.100")).body, []);
  });
});
