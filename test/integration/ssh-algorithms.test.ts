import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import ssh2 from "ssh2";
import { RosterdockHome, ROOT, type ServerProcess } from "../support/rosterdock-process.ts";
import { requireTool, runSftp, type SftpLogin } from "../support/sftp-client.ts";
import { offeredOnTheWire } from "../support/ssh-offer.ts";
import { sshAlgorithms, type SshAlgorithms } from "../../src/sftp/ssh-algorithms.ts";

const run = promisify(execFile);
const missing = requireTool("sftp") ?? requireTool("ssh", ["-V"]) ?? requireTool("java", ["-version"]);
const CI = process.env.CI === "true";
const JSCH_CLASSPATH = "/usr/share/java/jsch.jar:/usr/share/java/jzlib.jar";

type Kind = keyof SshAlgorithms;
const KINDS: readonly Kind[] = ["kex", "hostKey", "cipher", "mac", "compression"];
const AEAD = /gcm|poly1305/;
const GROUP_EXCHANGE = "diffie-hellman-group-exchange-sha256";
const JSCH_KINDS: Record<Kind, string> = { kex: "kex", hostKey: "hostkey", cipher: "cipher", mac: "mac", compression: "compression" };

/** What this OpenSSH build can be told to use, per kind (`ssh -Q`). */
function openSshSupport(): Record<Kind, Set<string>> {
  const query = (...names: string[]) => {
    for (const name of names) {
      const result = spawnSync("ssh", ["-Q", name], { encoding: "utf8" });
      if (result.status === 0) return new Set(result.stdout.split("\n").filter(Boolean));
    }
    return new Set<string>();
  };
  // OpenSSH picks compression only through Compression=no|yes, and `yes` means zlib@openssh.com first.
  const compression = new Set(["none", ...[...query("compression")].filter((c) => c === "zlib@openssh.com")]);
  return { kex: query("kex"), hostKey: query("HostKeyAlgorithms", "key-sig", "key"), cipher: query("cipher"), mac: query("mac"), compression };
}

function openSshOptions(kind: Kind, algorithm: string, offered: SshAlgorithms): string[] {
  switch (kind) {
    case "kex":
      return ["-o", `KexAlgorithms=${algorithm}`];
    case "hostKey":
      return ["-o", `HostKeyAlgorithms=${algorithm}`];
    case "cipher":
      return ["-o", `Ciphers=${algorithm}`];
    case "mac":
      // GCM and ChaCha20-Poly1305 bring their own integrity check: a MAC is only used beside CTR.
      return ["-o", `Ciphers=${offered.cipher.find((c) => !AEAD.test(c))}`, "-o", `MACs=${algorithm}`];
    case "compression":
      return ["-o", `Compression=${algorithm === "none" ? "no" : "yes"}`];
  }
}

/** Waits for a log entry written after `from` (an index into server.logs). */
async function logAfter(server: ServerProcess, from: number, predicate: (entry: any) => boolean, timeoutMs = 10_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = server.logs.slice(from).find(predicate);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching log entry; last: ${JSON.stringify(server.logs.slice(-5))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Says, visibly, that this client build cannot try an offered algorithm; outside CI the case is skipped. */
function unsupported(t: TestContext, message: string): void {
  if (CI) t.diagnostic(message);
  else t.skip(message);
}

describe("SSH algorithms the SFTP server offers", { skip: missing }, () => {
  let home: RosterdockHome;
  let server: ServerProcess;
  let login: SftpLogin;
  let offered: SshAlgorithms;
  let workDir: string;
  /** `kind:algorithm` → the clients that completed a login with it, or said why they could not. */
  const tested = new Map<string, string[]>();
  const untested = new Map<string, string[]>();
  const note = (map: Map<string, string[]>, kind: Kind, algorithm: string, what: string) => map.set(`${kind}:${algorithm}`, [...(map.get(`${kind}:${algorithm}`) ?? []), what]);

  /**
   * One JSch run (a JVM start compiles JschAlgorithms.java, seconds each time) logging in once per
   * offered algorithm, plus once forcing group exchange, which must fail. Started by the first test needing it.
   */
  let jschRun: Promise<{ lines: string[]; from: number }> | undefined;
  const jsch = () =>
    (jschRun ??= (async () => {
      const specs = [...KINDS.flatMap((kind) => offered[kind].map((algorithm) => `${JSCH_KINDS[kind]}:${algorithm}`)), `kex:${GROUP_EXCHANGE}`];
      const from = server.logs.length;
      const { stdout } = await run(
        "java",
        ["-cp", JSCH_CLASSPATH, join(ROOT, "test/fixtures/jsch/JschAlgorithms.java"), "127.0.0.1", String(server.sftpPort), login.username, login.password, ...specs],
        { timeout: 120_000 },
      );
      const lines = stdout.split("\n").filter(Boolean);
      assert.equal(lines.length, specs.length, stdout);
      return { lines, from };
    })());

  before(async () => {
    home = await RosterdockHome.create();
    const created = await home.createDistrict("lincoln");
    server = await home.serve();
    login = { ...created, port: server.sftpPort };
    offered = await offeredOnTheWire(server.sftpPort);
    workDir = await mkdtemp(join(tmpdir(), "rosterdock-algorithms-"));
    await writeFile(join(workDir, "probe.bin"), randomBytes(256 * 1024));
  });

  after(async () => {
    await server?.stop();
    await home?.remove();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it("offers on the wire exactly the list in src/sftp/ssh-algorithms.ts, and no group exchange", () => {
    // The list without ROSTERDOCK_ALLOW_SSH_RSA is checked the same way in sftp-intake.test.ts.
    assert.deepEqual(offered, sshAlgorithms({ allowSshRsa: true }));
    assert.ok(!offered.kex.some((k) => k.includes("group-exchange")), offered.kex.join(","));
  });

  it("lists every offered algorithm in docs/operations.md", async () => {
    const guide = await readFile(join(ROOT, "docs", "operations.md"), "utf8");
    // The table only: the section also names what is not offered.
    const section = (guide.split("## SSH algorithms")[1]?.split("\n## ")[0] ?? "").split("\n").filter((line) => line.startsWith("| ")).join("\n");
    for (const kind of KINDS) for (const algorithm of offered[kind]) assert.ok(section.includes(`\`${algorithm}\``), `${kind} ${algorithm} is missing from the guide's SSH algorithms section`);
  });

  for (const kind of KINDS) {
    it(`completes an OpenSSH sftp login and transfer with each offered ${kind}, one at a time`, async (t) => {
      const support = openSshSupport()[kind];
      for (const algorithm of offered[kind]) {
        await t.test(algorithm, async (st) => {
          if (!support.has(algorithm)) {
            note(untested, kind, algorithm, "OpenSSH");
            return unsupported(st, `not tried: this OpenSSH build (ssh -Q) cannot be told to use ${kind} ${algorithm}`);
          }
          const from = server.logs.length;
          // The data-path algorithms carry a 256 KiB upload; a key exchange or host key is proven by a login.
          const commands = kind === "kex" || kind === "hostKey" ? ["ls -l"] : [`put probe.bin probe-${kind}.bin`, "ls -l"];
          const result = await runSftp(login, commands, { cwd: workDir, extra: openSshOptions(kind, algorithm, offered) });
          assert.equal(result.code, 0, result.stderr);
          const succeeded = await logAfter(server, from, (e) => e.event === "sftp.login.succeeded" && /OpenSSH/.test(e.client));
          assert.equal(succeeded.ssh[kind], algorithm, JSON.stringify(succeeded.ssh));
          if (kind === "mac") assert.doesNotMatch(succeeded.ssh.cipher, AEAD);
          note(tested, kind, algorithm, "OpenSSH");
        });
      }
    });
  }

  it("completes a JSch login (PowerSchool's kind of client) with each offered algorithm JSch has, ssh-rsa included", async (t) => {
    const { lines, from } = await jsch();
    const stdout = lines.join("\n");
    assert.deepEqual(lines.filter((line) => line.startsWith("failed") && !line.includes(GROUP_EXCHANGE)), [], "JSch has these algorithms, yet could not log in with them");
    const logins = server.logs.slice(from).filter((e) => e.event === "sftp.login.succeeded" && /JSCH/i.test(e.client));
    for (const kind of KINDS) {
      for (const algorithm of offered[kind]) {
        const line = lines.find((l) => l.endsWith(` ${JSCH_KINDS[kind]} ${algorithm}`))!;
        if (line.startsWith("ok")) {
          assert.ok(logins.some((e) => e.ssh[kind] === algorithm), `no JSch login negotiated ${kind} ${algorithm}`);
          note(tested, kind, algorithm, "JSch");
        } else {
          note(untested, kind, algorithm, "JSch");
        }
      }
    }
    t.diagnostic(`JSch (${JSCH_CLASSPATH}) lacks: ${lines.filter((l) => l.startsWith("unsupported")).map((l) => l.slice("unsupported ".length)).join(", ") || "nothing"}`);
    // What old Java clients rely on: SHA-1 RSA signatures, and an exchange without curve25519.
    assert.ok(lines.includes("ok hostkey ssh-rsa"), stdout);
    assert.ok(lines.includes("ok kex ecdh-sha2-nistp256"), stdout);
    assert.ok(lines.includes("ok kex diffie-hellman-group14-sha1"), stdout);
  });

  it("has tried every offered algorithm with a real client, or says which client build lacks it", (t) => {
    const report: string[] = [];
    for (const kind of KINDS) {
      for (const algorithm of offered[kind]) {
        const key = `${kind}:${algorithm}`;
        assert.ok(tested.has(key) || untested.get(key)?.includes("OpenSSH"), `${key} was neither tried with OpenSSH nor reported missing from this OpenSSH build`);
        if (!tested.has(key)) report.push(`${key} (lacking in: ${untested.get(key)!.join(", ")})`);
      }
    }
    t.diagnostic(report.length ? `offered but untried by any client here: ${report.join("; ")}` : "every offered algorithm completed a login with a real client");
  });

  describe("a failed handshake is logged at info with the client's address, identification and the reason", () => {
    it("refuses group exchange to OpenSSH, which says there is no matching key exchange", async () => {
      for (const gex of ["diffie-hellman-group-exchange-sha256", "diffie-hellman-group-exchange-sha1"]) {
        const from = server.logs.length;
        const result = await runSftp(login, ["ls"], { extra: ["-o", "LogLevel=INFO", "-o", `KexAlgorithms=${gex}`] });
        assert.notEqual(result.code, 0);
        assert.match(result.stderr, /no matching key exchange method found/);
        const failed = await logAfter(server, from, (e) => e.event === "sftp.handshake_failed");
        assert.equal(failed.level, 30, "logged at info");
        assert.equal(failed.reason, "no_matching_kex");
        assert.equal(failed.ip, "127.0.0.1");
        assert.match(failed.client, /^SSH-2\.0-OpenSSH_/);
        assert.ok(failed.clientOffers.includes(gex), JSON.stringify(failed));
        assert.deepEqual(failed.serverOffers, offered.kex);
        assert.match(failed.msg, /key exchange/);
      }
    });

    it("refuses group exchange to JSch too, and logs it", async () => {
      const { lines, from } = await jsch();
      assert.match(lines.find((line) => line.includes(GROUP_EXCHANGE)) ?? "", /^failed kex diffie-hellman-group-exchange-sha256: .*Algorithm negotiation fail/);
      const failed = await logAfter(server, from, (e) => e.event === "sftp.handshake_failed" && /JSCH/i.test(e.client));
      assert.equal(failed.reason, "no_matching_kex");
      assert.deepEqual(failed.clientOffers, [GROUP_EXCHANGE]);
    });

    it("names a host key type or cipher the client insists on and the server lacks", async () => {
      for (const [option, reason, stderr] of [
        ["HostKeyAlgorithms=ssh-dss", "no_matching_host_key", /no matching host key type found/],
        ["Ciphers=aes128-cbc", "no_matching_cipher", /no matching cipher found/],
      ] as const) {
        const from = server.logs.length;
        const result = await runSftp(login, ["ls"], { extra: ["-o", "LogLevel=INFO", "-o", option] });
        assert.match(result.stderr, stderr);
        const failed = await logAfter(server, from, (e) => e.event === "sftp.handshake_failed");
        assert.equal(failed.reason, reason);
        assert.equal(failed.clientOffers[0], option.split("=")[1]);
      }
    });

    it("tells a client that rejected the host key from one that never spoke SSH", async () => {
      const from = server.logs.length;
      // A changed host key looks like this from the server: keys offered, then the client hangs up.
      const known = join(workDir, "known_hosts");
      const otherKey = ssh2.utils.generateKeyPairSync("ed25519").public;
      await writeFile(known, `[127.0.0.1]:${server.sftpPort} ${otherKey}\n`);
      const rejected = await runSftp(login, ["ls"], { extra: ["-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${known}`, "-o", "HostKeyAlgorithms=ssh-ed25519"] });
      assert.match(rejected.stderr, /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
      const hungUp = await logAfter(server, from, (e) => e.event === "sftp.handshake_failed");
      assert.equal(hungUp.reason, "closed_during_handshake");
      assert.match(hungUp.client, /OpenSSH/);

      const probe = async (send: string | undefined) => {
        const at = server.logs.length;
        const socket = connect(server.sftpPort, "127.0.0.1");
        await new Promise((resolve) => socket.once("connect", resolve));
        if (send) socket.write(send);
        await new Promise((r) => setTimeout(r, 200));
        socket.destroy();
        return logAfter(server, at, (e) => e.event === "sftp.handshake_failed");
      };
      const silent = await probe(undefined);
      assert.equal(silent.reason, "closed_before_identification");
      assert.equal(silent.ip, "127.0.0.1");
      assert.equal(silent.level, 30);
      const http = await probe("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.equal(http.reason, "bad_identification");
      assert.equal(http.client, "GET / HTTP/1.1");
      const quitter = await probe("SSH-2.0-Quitter_1.0\r\n");
      assert.equal(quitter.reason, "closed_during_handshake");
      assert.equal(quitter.client, "SSH-2.0-Quitter_1.0");
    });

    it("never logs the password", () => {
      assert.ok(!server.logs.some((e) => JSON.stringify(e).includes(login.password)));
    });
  });
});
