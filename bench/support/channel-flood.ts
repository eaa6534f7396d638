// The channel flood of `npm run bench -- attack`, run by FloodProcess (flood-process.ts): one
// logged-in district opening as many connections, SFTP channels per connection and open files per
// channel as it can (ssh2's client), holding them, and trying again for more every `retryMs`.
import { createInterface } from "node:readline";
import ssh2, { type SFTPWrapper } from "ssh2";

interface Settings {
  port: number;
  address: string;
  username: string;
  password: string;
  connections: number;
  channelsPerConnection: number;
  handlesPerChannel: number;
  /** Connections logged in at once (the server admits 20 handshakes per address). */
  wave: number;
  retryMs: number;
}

const settings = JSON.parse(process.argv[2]!) as Settings;
const counts = {
  connectionsAttempted: 0,
  connectionsLoggedIn: 0,
  connectionsFailed: 0,
  channelsOpened: 0,
  channelsRefused: 0,
  handlesOpened: 0,
  handlesRefused: 0,
  heldConnections: 0,
  heldChannels: 0,
  heldHandles: 0,
};
const refusals: Record<string, number> = {};
const clients = new Set<ssh2.Client>();
let running = true;
let fileNumber = 0;

function refusal(error: unknown): void {
  // The server's own words, numbers taken out so that alike refusals count together.
  const message = (error instanceof Error ? error.message : String(error)).replace(/\d+/g, "N").slice(0, 120);
  refusals[message] = (refusals[message] ?? 0) + 1;
}

function report(event: string): void {
  process.stdout.write(`${JSON.stringify({ event, ...counts, refusals })}\n`);
}

function login(): Promise<ssh2.Client | undefined> {
  counts.connectionsAttempted++;
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let ready = false;
    client.once("ready", () => {
      ready = true;
      counts.connectionsLoggedIn++;
      counts.heldConnections++;
      clients.add(client);
      resolve(client);
    });
    client.on("error", (error) => {
      if (!ready) {
        counts.connectionsFailed++;
        refusal(error);
        resolve(undefined);
      }
    });
    client.once("close", () => {
      if (ready) {
        counts.heldConnections--;
        clients.delete(client);
      } else resolve(undefined);
    });
    client.connect({ host: "127.0.0.1", port: settings.port, localAddress: settings.address, username: settings.username, password: settings.password, readyTimeout: 60_000 });
  });
}

function channel(client: ssh2.Client): Promise<SFTPWrapper | undefined> {
  return new Promise((resolve) =>
    client.sftp((error, sftp) => {
      if (error) {
        counts.channelsRefused++;
        refusal(error);
        return resolve(undefined);
      }
      counts.channelsOpened++;
      counts.heldChannels++;
      sftp.once("close", () => counts.heldChannels--);
      resolve(sftp);
    }),
  );
}

/** Opens files for writing until the server refuses one. */
async function handles(sftp: SFTPWrapper): Promise<void> {
  const opened = await Promise.allSettled(
    Array.from(
      { length: settings.handlesPerChannel },
      () =>
        new Promise<void>((resolve, reject) =>
          sftp.open(`/flood-${process.pid}-${++fileNumber}.csv`, "w", (error) => {
            if (error) return reject(error);
            counts.handlesOpened++;
            counts.heldHandles++;
            resolve();
          }),
        ),
    ),
  );
  for (const result of opened) {
    if (result.status === "rejected") {
      counts.handlesRefused++;
      refusal(result.reason);
    }
  }
}

async function fill(client: ssh2.Client, channels: number): Promise<void> {
  const opened = await Promise.all(Array.from({ length: channels }, () => channel(client)));
  await Promise.all(opened.flatMap((sftp) => (sftp ? [handles(sftp)] : [])));
}

async function attack(): Promise<void> {
  for (let done = 0; done < settings.connections && running; done += settings.wave) {
    const wave = Math.min(settings.wave, settings.connections - done);
    const logged = await Promise.all(Array.from({ length: wave }, () => login()));
    await Promise.all(logged.flatMap((client) => (client ? [fill(client, settings.channelsPerConnection)] : [])));
  }
  report("started");
  // Keep asking: one more connection, and one more channel on each held connection.
  while (running) {
    await new Promise((r) => setTimeout(r, settings.retryMs));
    if (!running) break;
    const client = await login();
    if (client) await fill(client, settings.channelsPerConnection);
    await Promise.all([...clients].map((c) => fill(c, 1)));
  }
}

void attack();

createInterface({ input: process.stdin })
  .on("line", (line) => {
    if (line.trim() === "report") report("report");
  })
  .on("close", () => {
    running = false;
    report("final");
    for (const client of clients) client.end();
    process.exit(0);
  });
