import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import { RosterdockHome, ROOT, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";
import { postgresMissing, startPostgres, type PostgresServer } from "../support/postgres.ts";
import { V2_SIGNATURE } from "../../src/sftp/proxy-header.ts";

const run = promisify(execFile);
const HAPROXY = "/usr/sbin/haproxy";

function haproxyMissing(): string | undefined {
  if (existsSync(HAPROXY)) return undefined;
  if (process.env.CI === "true") throw new Error("haproxy is required (installed by .ci/run)");
  return "haproxy is not installed";
}

const missing = requireTool("sftp") ?? requireTool("ssh-keyscan", ["-h"]) ?? haproxyMissing() ?? postgresMissing();
const HOST_KEY_ALGORITHMS = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"] as const;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** One substitution that must match exactly once, so the test breaks loudly if deploy/haproxy.cfg changes shape. */
function substitute(text: string, pattern: RegExp, replacement: string): string {
  const matches = text.match(new RegExp(pattern.source, "gm"));
  assert.equal(matches?.length, 1, `deploy/haproxy.cfg should have one line matching ${pattern}`);
  return text.replace(new RegExp(pattern.source, "m"), replacement);
}

/** deploy/haproxy.cfg with only its addresses and ports changed to this test's. */
async function haproxyConfig(ports: { sftp: number; stats: number }, nodes: { a: ServerProcess; b: ServerProcess }): Promise<string> {
  let text = await readFile(join(ROOT, "deploy", "haproxy.cfg"), "utf8");
  text = substitute(text, /^(\s*bind) :22$/, `$1 127.0.0.1:${ports.sftp}`);
  text = substitute(text, /^(\s*server node-a) 10\.0\.0\.11:2222 check port 8080$/, `$1 127.0.0.1:${nodes.a.sftpPort} check port ${nodes.a.httpPort}`);
  text = substitute(text, /^(\s*server node-b) 10\.0\.0\.12:2222 check port 8080$/, `$1 127.0.0.1:${nodes.b.sftpPort} check port ${nodes.b.httpPort}`);
  text = substitute(text, /^(\s*bind) 127\.0\.0\.1:8404$/, `$1 127.0.0.1:${ports.stats}`);
  return text;
}

/** HAProxy's view of each SFTP server: `UP`, `DOWN`… and the last check's result. */
async function serverStates(statsPort: number): Promise<Record<string, { status: string; check: string }>> {
  const response = await fetch(`http://127.0.0.1:${statsPort}/stats;csv`);
  const [head = "", ...rows] = (await response.text()).trim().split("\n");
  const columns = head.replace(/^# /, "").split(",");
  const states: Record<string, { status: string; check: string }> = {};
  for (const row of rows) {
    const cells = row.split(",");
    const get = (name: string) => cells[columns.indexOf(name)] ?? "";
    if (get("pxname") === "rosterdock_sftp" && get("svname").startsWith("node-")) states[get("svname")] = { status: get("status"), check: get("check_status") };
  }
  return states;
}

function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The host keys OpenSSH's ssh-keyscan is shown through HAProxy, by key type. */
async function keyscan(port: number): Promise<Record<string, string>> {
  const { stdout } = await run("ssh-keyscan", ["-p", String(port), "-t", "ed25519,ecdsa,rsa", "127.0.0.1"], { timeout: 30_000 });
  const keys: Record<string, string> = {};
  for (const line of stdout.split("\n").filter((l) => l && !l.startsWith("#"))) {
    const [, type = "", base64 = ""] = line.split(" ");
    keys[type] = sha256Fingerprint(Buffer.from(base64, "base64"));
  }
  return keys;
}

/** The host key a node presents for one algorithm, asked directly (with the PROXY LOCAL header a health check would send). */
async function hostKeyDirect(port: number, algorithm: string): Promise<string> {
  const sock: Socket = await new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
  sock.write(Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0, 0])]));
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let seen: string | undefined;
    client.on("error", () => (seen ? resolve(seen) : reject(new Error(`no ${algorithm} host key from port ${port}`))));
    client.on("close", () => (seen ? resolve(seen) : reject(new Error(`no ${algorithm} host key from port ${port}`))));
    client.connect({
      sock,
      username: "probe",
      password: "probe",
      algorithms: { serverHostKey: [algorithm as never] },
      hostVerifier: (key: Buffer) => {
        seen = sha256Fingerprint(key);
        return false;
      },
    });
  });
}

describe("two nodes on one PostgreSQL database behind HAProxy (deploy/haproxy.cfg)", { skip: missing }, () => {
  let postgres: PostgresServer;
  let homes: { a: RosterdockHome; b: RosterdockHome };
  let nodes: { a: ServerProcess; b: ServerProcess };
  let haproxy: ChildProcess;
  let haproxyOutput = "";
  let workDir: string;
  let login: SftpLogin;
  const ports = { sftp: 0, stats: 0 };

  before(async () => {
    postgres = await startPostgres();
    const databaseUrl = await postgres.createDatabase();
    ports.sftp = await freePort();
    ports.stats = await freePort();
    const env = {
      ROSTERDOCK_DATABASE_URL: databaseUrl,
      ROSTERDOCK_SFTP_PROXY_PROTOCOL: "true",
      ROSTERDOCK_SFTP_TRUSTED_PROXIES: "127.0.0.1",
      ROSTERDOCK_PUBLIC_SFTP_PORT: String(ports.sftp),
      // Uploads only: processing syncs on PostgreSQL is tested elsewhere.
      ROSTERDOCK_QUIET_SECONDS: "3600",
    };
    homes = { a: await RosterdockHome.create(env), b: await RosterdockHome.create(env) };
    // Both nodes start together on the empty database: migrations and host keys are made once.
    const [a, b] = await Promise.all([homes.a.serve(), homes.b.serve()]);
    nodes = { a, b };

    workDir = await mkdtemp(join(tmpdir(), "rosterdock-haproxy-"));
    const cfg = join(workDir, "haproxy.cfg");
    await writeFile(cfg, await haproxyConfig(ports, nodes));
    await writeFile(join(workDir, "students.csv"), "Student_Number,First_Name,Last_Name,Grade_Level,SchoolID\n1001,Ana,Lopez,5,100\n");
    haproxy = spawn(HAPROXY, ["-f", cfg, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
    haproxy.stdout!.on("data", (d) => (haproxyOutput += d));
    haproxy.stderr!.on("data", (d) => (haproxyOutput += d));
    await waitFor(
      async () => {
        if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${haproxyOutput}`);
        const states = await serverStates(ports.stats).catch(() => ({}) as Record<string, { status: string }>);
        return states["node-a"]?.status === "UP" && states["node-b"]?.status === "UP";
      },
      30_000,
      "HAProxy to see both nodes UP",
    );

    const created = await homes.a.createDistrict("lincoln", ["--allow-ip", "127.0.0.1"]);
    login = { username: created.username, password: created.password, port: ports.sftp };
  });

  after(async () => {
    if (haproxy && haproxy.exitCode === null) {
      haproxy.kill("SIGTERM");
      await new Promise((resolve) => haproxy.once("exit", resolve));
    }
    await nodes?.a.stop();
    await nodes?.b.stop();
    await homes?.a.remove();
    await homes?.b.remove();
    await postgres?.stop();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("tells districts HAProxy's port, not a node's", async () => {
    const shown = await homes.b.json(["district", "show", "lincoln"]);
    assert.equal(shown.sftp.port, ports.sftp);
  });

  it("takes OpenSSH sftp uploads through HAProxy, on both nodes, each logged with the client's address", async () => {
    const fromA = nodes.a.logs.length;
    const fromB = nodes.b.logs.length;
    for (let i = 1; i <= 4; i++) {
      const result = await runSftp(login, [`put students.csv night-${i}.csv`], { cwd: workDir });
      assert.equal(result.code, 0, result.stderr);
    }
    const uploads = await homes.b.json(["uploads", "lincoln"]);
    assert.deepEqual(uploads.map((u: { path: string; status: string }) => `${u.path} ${u.status}`).sort(), [1, 2, 3, 4].map((i) => `/night-${i}.csv accepted`));
    // leastconn with one session at a time alternates: each node took some.
    for (const [node, from] of [[nodes.a, fromA], [nodes.b, fromB]] as const) {
      const logins = node.logs.slice(from).filter((e) => e.event === "sftp.login.succeeded");
      assert.ok(logins.length >= 1, "each node logged in some uploads");
      for (const entry of logins) assert.deepEqual([entry.ip, entry.via, entry.district], ["127.0.0.1", "127.0.0.1", "lincoln"]);
    }
  });

  it("checks the district's allow-list against the client's address: refused from 127.0.0.2, logged as 127.0.0.2", async () => {
    const from = [nodes.a.logs.length, nodes.b.logs.length];
    const result = await runSftp(login, ["put students.csv refused.csv"], { cwd: workDir, extra: ["-o", "BindAddress=127.0.0.2", "-o", "NumberOfPasswordPrompts=1"] });
    assert.notEqual(result.code, 0);
    const failed = await waitFor(
      async () => [...nodes.a.logs.slice(from[0]), ...nodes.b.logs.slice(from[1])].find((e) => e.event === "sftp.login.failed"),
      10_000,
      "the refused login's log line",
    );
    assert.deepEqual([failed.ip, failed.reason, failed.username], ["127.0.0.2", "address_not_allowed", login.username]);
    const uploads = await homes.a.json(["uploads", "lincoln"]);
    assert.equal(uploads.some((u: { path: string }) => u.path === "/refused.csv"), false);
  });

  it("presents the same host keys through HAProxy as each node does directly", async () => {
    const direct = async (node: ServerProcess) => Promise.all(HOST_KEY_ALGORITHMS.map((algorithm) => hostKeyDirect(node.sftpPort, algorithm)));
    const [a, b] = [await direct(nodes.a), await direct(nodes.b)];
    assert.deepEqual(a, b);
    assert.equal(new Set(a).size, 3);
    const stored = await homes.a.json(["hostkey", "show"]);
    const storedSha = JSON.stringify(stored);
    for (const fingerprint of a) assert.ok(storedSha.includes(fingerprint), `${fingerprint} is one of the stored keys`);
    // Through HAProxy, several times so that both nodes answer.
    for (let i = 0; i < 4; i++) {
      const scanned = await keyscan(ports.sftp);
      assert.deepEqual([scanned["ssh-ed25519"], scanned["ecdsa-sha2-nistp256"], scanned["ssh-rsa"]], a);
    }
  });

  it("marks a stopped node down by its /healthz, and the next uploads go on through the other", async () => {
    assert.equal(await nodes.b.stop(), 0);
    // At once, before any check has noticed: HAProxy's redispatch sends a refused connection to node A.
    const fromA = nodes.a.logs.length;
    const first = await runSftp(login, ["put students.csv after-stop-1.csv"], { cwd: workDir });
    assert.equal(first.code, 0, first.stderr);
    const down = await waitFor(
      async () => {
        const states = await serverStates(ports.stats);
        return states["node-b"]?.status.startsWith("DOWN") ? states : undefined;
      },
      20_000,
      "HAProxy to mark node-b DOWN",
    );
    assert.equal(down["node-a"]?.status, "UP");
    assert.match(down["node-b"]?.check ?? "", /^L4CON|^L7STS|^L4TOUT/);
    const second = await runSftp(login, ["put students.csv after-stop-2.csv"], { cwd: workDir });
    assert.equal(second.code, 0, second.stderr);
    const names = (await homes.a.json(["uploads", "lincoln"])).map((u: { path: string; status: string }) => `${u.path} ${u.status}`);
    assert.ok(names.includes("/after-stop-1.csv accepted") && names.includes("/after-stop-2.csv accepted"), names.join(","));
    assert.equal(nodes.a.logs.slice(fromA).filter((e) => e.event === "sftp.login.succeeded").length, 2);
    assert.match(haproxyOutput, /node-b is DOWN/);
  });
});
