// The hash flood of `npm run bench -- attack`, run by FloodProcess (flood-process.ts): wrong
// secrets for a known OAuth client at POST /oauth/token, and wrong SSH passwords for a known
// district (ssh2's client), each from many local addresses, a fixed number in flight per address,
// each attempt followed at once by the next until the end.
import { request } from "node:http";
import { createInterface } from "node:readline";
import ssh2 from "ssh2";

interface Settings {
  httpPort: number;
  sftpPort: number;
  http: { clientId: string; addresses: string[]; perAddress: number };
  ssh: { username: string; addresses: string[]; perAddress: number };
  /** After an attempt turned away without a check (HTTP 429 or 503, SSH connection dropped). */
  pauseMs: number;
}

const settings = JSON.parse(process.argv[2]!) as Settings;
const http = { sent: 0, statuses: {} as Record<string, number>, errors: 0 };
const ssh = { attempted: 0, refused: 0, dropped: 0, loggedIn: 0 };
let running = true;
let guess = 0;

function report(event: string): void {
  process.stdout.write(`${JSON.stringify({ event, http, ssh })}\n`);
}

/** Resolves to whether the attempt was turned away without being checked. */
function postSecret(address: string): Promise<boolean> {
  const body = new URLSearchParams({ grant_type: "client_credentials", client_id: settings.http.clientId, client_secret: `wrong-${++guess}` }).toString();
  http.sent++;
  return new Promise((resolve) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: settings.httpPort,
        localAddress: address,
        path: "/oauth/token",
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) },
        agent: false,
        timeout: 60_000,
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          http.statuses[String(res.statusCode)] = (http.statuses[String(res.statusCode)] ?? 0) + 1;
          resolve(res.statusCode === 429 || res.statusCode === 503);
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => {
      http.errors++;
      resolve(true);
    });
    req.end(body);
  });
}

function guessPassword(address: string): Promise<boolean> {
  ssh.attempted++;
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let settled = false;
    const done = (outcome: "loggedIn" | "refused" | "dropped") => {
      if (settled) return;
      settled = true;
      ssh[outcome]++;
      client.end();
      resolve(outcome === "dropped");
    };
    client.on("ready", () => done("loggedIn"));
    client.on("error", (error: Error & { level?: string }) => done(error.level === "client-authentication" ? "refused" : "dropped"));
    client.on("close", () => done("dropped"));
    client.connect({ host: "127.0.0.1", port: settings.sftpPort, localAddress: address, username: settings.ssh.username, password: `wrong-${++guess}`, tryKeyboard: false, readyTimeout: 60_000 });
  });
}

async function loop(attempt: (address: string) => Promise<boolean>, address: string): Promise<void> {
  while (running) {
    const turnedAway = await attempt(address);
    // Without a pause, attempts turned away at once would make this a plain request flood, bounded only by CPU.
    await new Promise((r) => (turnedAway ? setTimeout(r, settings.pauseMs) : setImmediate(r)));
  }
}

for (const address of settings.http.addresses) for (let i = 0; i < settings.http.perAddress; i++) void loop(postSecret, address);
for (const address of settings.ssh.addresses) for (let i = 0; i < settings.ssh.perAddress; i++) void loop(guessPassword, address);
report("started");

createInterface({ input: process.stdin })
  .on("line", (line) => {
    if (line.trim() === "report") report("report");
  })
  .on("close", () => {
    running = false;
    report("final");
    process.exit(0);
  });
