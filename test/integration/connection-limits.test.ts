import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import ssh2, { type SFTPWrapper } from "ssh2";
import { RosterdockHome, ROOT, waitFor, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";

const missing = requireTool("sftp");

interface FloodCounts {
  event: string;
  attempted: number;
  connected: number;
  failed: number;
  closedByServer: number;
  open: number;
}

/**
 * Raw sockets held by a child process whose descriptor limit is raised to its hard limit,
 * so that thousands of sockets fit whatever this test process's own soft limit is. It runs at
 * the lowest priority: a real attacker's CPU is not the server's.
 */
class Flood {
  private readonly lines: FloodCounts[] = [];

  private constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on("line", (line) => this.lines.push(JSON.parse(line) as FloodCounts));
  }

  static async start(port: number, groups: Array<{ address: string; count: number; banner?: boolean }>): Promise<Flood> {
    const script = join(ROOT, "test", "support", "socket-flood.ts");
    const child = spawn("sh", ["-c", `ulimit -S -n "$(ulimit -H -n)"; exec nice -n 19 "${process.execPath}" --import tsx "$0" "$1" "$2"`, script, String(port), JSON.stringify(groups)], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "inherit"],
    });
    const flood = new Flood(child);
    await flood.next("started");
    return flood;
  }

  async next(event: string, timeoutMs = 30_000): Promise<FloodCounts> {
    const seen = this.lines.length;
    if (event === "report") this.child.stdin!.write("report\n");
    return waitFor(async () => this.lines.slice(event === "report" ? seen : 0).find((l) => l.event === event), timeoutMs, `flood ${event}`);
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.stdin!.end();
    await exited;
  }
}

/** `neverAuthenticate`: keys are agreed, then the client never answers the login prompt; called when it gets there. */
function connectSsh(port: number, login: { username: string; password?: string }, options: { neverAuthenticate?: () => void } = {}): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.once("ready", () => resolve(client));
    // A connection the server closes may report errors after it was resolved.
    client.on("error", reject);
    client.once("close", () => reject(new Error("closed before login")));
    client.connect({
      host: "127.0.0.1",
      port,
      username: login.username,
      readyTimeout: 20_000,
      ...(options.neverAuthenticate ? { authHandler: options.neverAuthenticate } : { password: login.password }),
    });
  });
}

function openSftp(client: ssh2.Client): Promise<SFTPWrapper> {
  return new Promise((resolve, reject) => client.sftp((error, sftp) => (error ? reject(error) : resolve(sftp))));
}

function openForWrite(sftp: SFTPWrapper, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => sftp.open(path, "w", (error, handle) => (error ? reject(error) : resolve(handle))));
}

function closed(client: ssh2.Client): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => client.once("close", () => resolve(Date.now() - started)));
}

function descriptorsOf(server: ServerProcess): number {
  return readdirSync(`/proc/${server.child.pid}/fd`).length;
}

async function health(server: ServerProcess): Promise<{ status: number; elapsedMs: number; body: any }> {
  const started = Date.now();
  const response = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`, { signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.json(), elapsedMs: Date.now() - started };
}

async function timedUpload(login: SftpLogin, name: string): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), "rosterdock-files-"));
  await writeFile(join(dir, name), "School_Number,School_Name\n1,Lincoln Elementary\n");
  const started = Date.now();
  const result = await runSftp(login, [`put ${name}`], { cwd: dir });
  assert.equal(result.code, 0, result.stderr);
  return Date.now() - started;
}

/**
 * Another district's upload stays under 2 s, as asked; on a machine so loaded (other processes,
 * not the flood) that an idle upload in the same run takes over a second, within 2× that idle one.
 */
function assertUploadBound(ms: number, idle: number, what: string): void {
  assert.ok(ms < Math.max(2000, 2 * idle), `upload took ${ms} ms ${what} (idle: ${idle} ms)`);
}

const addresses = (from: number, count: number) => Array.from({ length: count }, (_, i) => `127.0.0.${from + i}`);

describe("SFTP connection limits", { skip: missing }, () => {
  // One data folder for the three servers below, started one after the other with their own limits.
  let home: RosterdockHome;
  let greedy: { username: string; password: string };
  let innocentAccount: { username: string; password: string };

  before(async () => {
    home = await RosterdockHome.create();
    // One after the other: the first creates the database.
    innocentAccount = await home.createDistrict("innocent");
    greedy = await home.createDistrict("greedy");
  });

  after(async () => {
    await home?.remove();
  });

  describe("with the default limits", () => {
    let server: ServerProcess;
    let innocent: SftpLogin;
    const clients: ssh2.Client[] = [];

    before(async () => {
      server = await home.serve();
      innocent = { ...innocentAccount, port: server.sftpPort };
    });

    after(async () => {
      for (const client of clients) client.end();
      await server?.stop();
    });

    it("refuses thousands of silent and banner-only sockets at accept, past the per-address caps, while another district uploads within 2 s and /healthz answers", async () => {
      const idle = await timedUpload(innocent, "schools-idle.csv");
      const flood = await Flood.start(server.sftpPort, [
        { address: "127.0.0.2", count: 1500, banner: true },
        { address: "127.0.0.2", count: 1500 },
        ...addresses(3, 5).map((address, i) => ({ address, count: 200, banner: i % 2 === 0 })),
      ]);
      try {
        // While the sockets are still arriving.
        const during = await timedUpload(innocent, "schools-during.csv");
        assertUploadBound(during, idle, "during the flood");
        const settled = await flood.next("settled");
        assert.equal(settled.attempted, 4000);

        const after = await timedUpload(innocent, "schools-after.csv");
        assertUploadBound(after, idle, "with the flood held");
        const { status, body, elapsedMs } = await health(server);
        assert.equal(status, 200);
        assert.ok(elapsedMs < 1000, `/healthz took ${elapsedMs} ms`);
        assert.equal(body.status, "ok");
        assert.equal(body.sftp, "ok");
        // 20 from each of the six flooding addresses at most; the rest were closed at accept.
        assert.ok(body.connections.unauthenticated <= 6 * 20, JSON.stringify(body.connections));
        assert.ok(body.connections.refused.unauthenticated_per_address >= 4000 - 6 * 20 - 50, JSON.stringify(body.connections));
        assert.ok(body.connections.atLimit.includes("unauthenticated_per_address"));
        assert.ok(descriptorsOf(server) < 400, `the server holds ${descriptorsOf(server)} descriptors`);
        // The flood's own view, once it has caught up with the closes: only the admitted sockets remain.
        await waitFor(async () => (await flood.next("report")).open <= 6 * 20, 10_000, "the flood to see its refused sockets closed");

        for (const ip of ["127.0.0.2", "127.0.0.3", "127.0.0.7"]) {
          assert.ok(
            server.logs.some((e) => e.event === "sftp.connection.refused" && e.limit === "unauthenticated_per_address" && e.ip === ip && e.max === 20),
            `refusals of ${ip} are logged`,
          );
        }
        // Logged once per address and period, not once per socket.
        assert.ok(server.logs.filter((e) => e.event === "sftp.connection.refused").length < 50);
      } finally {
        await flood.stop();
      }
    });

    it("refuses one district's channel, handle and connection flood at the caps while another district keeps working", async () => {
      // The descriptor counts below need the earlier flood gone.
      await waitFor(async () => (await health(server)).body.connections.unauthenticated === 0, 10_000, "earlier connections to close");
      const idle = await timedUpload(innocent, "schools-idle-2.csv");
      const first = await connectSsh(server.sftpPort, greedy);
      clients.push(first);
      const channels = await Promise.allSettled(Array.from({ length: 10 }, () => openSftp(first)));
      const opened = channels.flatMap((c) => (c.status === "fulfilled" ? [c.value] : []));
      assert.equal(opened.length, 4, "4 SFTP channels per connection");
      assert.ok(server.logs.some((e) => e.event === "sftp.connection.refused" && e.limit === "channels_per_connection" && e.district === "greedy" && e.ip === "127.0.0.1"));

      // 64 open files per channel; refused opens leave no descriptor behind.
      const before = descriptorsOf(server);
      const sftp = opened[0]!;
      const opens = await Promise.allSettled(Array.from({ length: 264 }, (_, i) => openForWrite(sftp, `/f${i}.csv`)));
      const refused = opens.flatMap((o) => (o.status === "rejected" ? [String(o.reason)] : []));
      assert.equal(opens.length - refused.length, 64);
      assert.match(refused[0]!, /At most 64 files may be open at once/);
      const grown = descriptorsOf(server) - before;
      assert.ok(grown >= 54 && grown < 64 + 20, `the server's descriptors grew by ${grown}`);
      assert.ok(server.logs.some((e) => e.event === "sftp.open.refused" && e.limit === "handles_per_session" && e.district === "greedy"));

      // Closing a channel closes its files and frees its place.
      const channelClosed = new Promise((resolve) => sftp.once("close", resolve));
      sftp.end();
      await channelClosed;
      await waitFor(async () => descriptorsOf(server) < before + 10, 5000, "the channel's files to be closed");
      opened[0] = await openSftp(first);

      // 20 connections per district: this one and 19 more. Logged in 5 at a time, within the 20
      // handshakes one address may have under way.
      const more: string[] = [];
      for (let wave = 0; wave < 5; wave++) {
        const results = await Promise.all(
          Array.from({ length: 5 }, async () => {
            const client = await connectSsh(server.sftpPort, greedy);
            clients.push(client);
            return openSftp(client).then(
              () => "open",
              (error: Error) => error.message,
            );
          }),
        );
        more.push(...results);
      }
      assert.equal(more.filter((m) => m === "open").length, 19, JSON.stringify(more));
      assert.match(more.find((m) => m !== "open")!, /Channel open failure/);
      assert.ok(server.logs.some((e) => e.event === "sftp.connection.refused" && e.limit === "connections_per_district" && e.district === "greedy" && e.max === 20));

      const elapsed = await timedUpload(innocent, "schools.csv");
      assertUploadBound(elapsed, idle, "for the other district");
      const { body } = await health(server);
      assert.ok(body.connections.authenticated >= 20, JSON.stringify(body.connections));
      assert.ok(body.connections.channels >= 4 + 19, JSON.stringify(body.connections));
      assert.ok(body.connections.atLimit.includes("connections_per_district"));
      assert.ok(body.connections.atLimit.includes("channels_per_connection"));
    });
  });

  describe("timeouts", () => {
    let server: ServerProcess;
    const district = () => greedy;

    before(async () => {
      server = await home.serve({
        ROSTERDOCK_SFTP_LOGIN_TIMEOUT_SECONDS: "1",
        ROSTERDOCK_SFTP_IDLE_TIMEOUT_SECONDS: "2",
        ROSTERDOCK_SFTP_MAX_UNAUTHENTICATED: "30",
      });
    });

    after(async () => {
      await server?.stop();
    });

    it("closes silent, banner-only and never-authenticating connections after the login timeout, past the total cap", async () => {
      // A client stuck at the login prompt. On a loaded machine its key exchange alone may outlast the
      // 1 s timeout (logged as such); then another one is made, until one gets to the prompt in time.
      let stuck: Promise<unknown> | undefined;
      for (let attempt = 1; !stuck; attempt++) {
        let authenticating!: () => void;
        const atLogin = new Promise<boolean>((resolve) => (authenticating = () => resolve(true)));
        const client = connectSsh(server.sftpPort, district(), { neverAuthenticate: authenticating }).catch((error: Error) => error);
        if (await Promise.race([atLogin, client.then(() => false)])) stuck = client;
        else assert.ok(attempt < 10, "no client got to the login prompt within the login timeout in 10 attempts");
      }
      const flood = await Flood.start(server.sftpPort, [
        { address: "127.0.0.2", count: 20 },
        { address: "127.0.0.3", count: 20, banner: true },
      ]);
      try {
        const settled = await flood.next("settled");
        assert.equal(settled.connected, 40);
        // The total of 30 refused 10 of them, or 11 if the stuck client had not timed out yet.
        assert.ok(settled.closedByServer >= 10, JSON.stringify(settled));
        await waitFor(async () => (await flood.next("report")).open === 0, 5000, "the flood's sockets to be closed");
        assert.match(String(await stuck), /closed before login|ECONNRESET/);
      } finally {
        await flood.stop();
      }
      const timedOut = server.logs.filter((e) => e.event === "sftp.connection.timed_out" && e.stage === "login");
      assert.ok(timedOut.some((e) => e.ip === "127.0.0.2" && e.phase === "identification" && e.seconds === 1));
      assert.ok(timedOut.some((e) => e.ip === "127.0.0.3" && e.phase === "key_exchange"));
      assert.ok(timedOut.some((e) => e.ip === "127.0.0.1" && e.phase === "authentication"));
      assert.ok(server.logs.some((e) => e.event === "sftp.connection.refused" && e.limit === "unauthenticated" && e.max === 30));
      // Timed out connections are not logged a second time as failed handshakes.
      assert.ok(!server.logs.some((e) => e.event === "sftp.handshake_failed" && e.ip === "127.0.0.2"));
      const { body } = await health(server);
      assert.equal(body.connections.unauthenticated, 0);
      assert.ok(body.connections.timedOut.login >= 30, JSON.stringify(body.connections));
    });
  });

  describe("idle timeout", () => {
    let server: ServerProcess;

    before(async () => {
      // The default login timeout: a login slowed by a loaded machine must not be what closes these.
      server = await home.serve({ ROSTERDOCK_SFTP_IDLE_TIMEOUT_SECONDS: "2" });
    });

    after(async () => {
      await server?.stop();
    });

    it("closes a logged-in connection idle past the idle timeout, and keeps one that sends requests", async () => {
      // The busy connection first, sending a request every 500 ms from then on, so that however long the
      // idle one's login takes on a loaded machine, only the idle one is ever idle.
      const busyClient = await connectSsh(server.sftpPort, greedy);
      let busyClosed = false;
      busyClient.once("close", () => (busyClosed = true));
      const busy = await openSftp(busyClient);
      let pinging = true;
      const pinger = (async () => {
        while (pinging) {
          await new Promise<void>((resolve, reject) => busy.readdir("/", (error) => (error ? reject(error) : resolve())));
          await new Promise((r) => setTimeout(r, 500));
        }
      })().catch((error: Error) => error);
      const idleClient = await connectSsh(server.sftpPort, greedy);
      let idleClosedAt = 0;
      idleClient.once("close", () => (idleClosedAt = Date.now()));
      await openSftp(idleClient);
      // The idle clock starts again at the channel request, the idle connection's last.
      const lastRequest = Date.now();
      try {
        // Until the idle one is closed, and for longer than the timeout in all.
        await waitFor(async () => idleClosedAt > 0 && Date.now() >= lastRequest + 3500, 20_000, "the idle connection to be closed");
      } finally {
        pinging = false;
      }
      assert.equal(await pinger, undefined, "every request of the busy connection was answered");
      const after = idleClosedAt - lastRequest;
      assert.ok(after >= 1500 && after < 3500, `the idle connection closed ${after} ms after its last request`);
      assert.equal(busyClosed, false, "a connection sending requests stays open");
      busyClient.end();
      assert.ok(server.logs.some((e) => e.event === "sftp.connection.timed_out" && e.stage === "idle" && e.district === "greedy" && e.ip === "127.0.0.1" && e.seconds === 2));
      assert.ok((await health(server)).body.connections.timedOut.idle >= 1);
    });
  });

  describe("descriptors", () => {
    let server: ServerProcess;
    let innocent: SftpLogin;

    before(async () => {
      // A low hard limit, and a lower soft one that bin/rosterdock must raise to it.
      server = await home.serve({ ROSTERDOCK_DESCRIPTOR_RESERVE: "150" }, { shell: "ulimit -S -n 100 && ulimit -H -n 300" });
      innocent = { ...innocentAccount, port: server.sftpPort };
    });

    after(async () => {
      await server?.stop();
    });

    it("raises the soft limit to the hard one, and refuses SFTP connections near it while HTTP keeps answering", async () => {
      const idle = await timedUpload(innocent, "schools-idle.csv");
      const initial = await health(server);
      assert.equal(initial.body.descriptors.limit, 300);
      assert.equal(initial.body.descriptors.reserve, 150);
      assert.ok(server.logs.some((e) => e.event === "process.descriptors" && e.soft === 300 && e.hard === 300));

      const flood = await Flood.start(server.sftpPort, addresses(2, 20).map((address) => ({ address, count: 20 })));
      try {
        await flood.next("settled");
        assert.ok(descriptorsOf(server) < 300 - 50, `the server holds ${descriptorsOf(server)} of 300 descriptors`);
        const { status, body } = await health(server);
        assert.equal(status, 200);
        assert.equal(body.descriptors.refusingConnections, true);
        assert.ok(body.connections.refused.descriptors > 0, JSON.stringify(body.connections));
        assert.ok(server.logs.some((e) => e.event === "sftp.connection.refused" && e.limit === "descriptors"));
      } finally {
        await flood.stop();
      }
      await waitFor(async () => (await health(server)).body.connections.unauthenticated === 0, 5000, "the flood's connections to close");
      const elapsed = await timedUpload(innocent, "schools.csv");
      assertUploadBound(elapsed, idle, "once the flood ended");
    });
  });
});
