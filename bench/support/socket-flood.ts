// The banner flood of `npm run bench -- attack`, run by FloodProcess (flood-process.ts): raw TCP
// sockets to the SFTP port, held, as a scanner or a descriptor-exhaustion attack does. Each group's
// sockets come from one local address and either send an SSH identification line and nothing more
// (`banner`) or stay silent. A socket the server closes (refused at accept, or timed out) is
// opened again after `reconnectMs`, so the pressure lasts as long as the phase.
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";

interface Settings {
  port: number;
  groups: Array<{ address: string; count: number; banner: boolean }>;
  /** Negative: never reconnect. */
  reconnectMs: number;
}

const settings = JSON.parse(process.argv[2]!) as Settings;
const sockets = new Set<Socket>();
const counts = { attempted: 0, connected: 0, failed: 0, closedByServer: 0, peakOpen: 0 };
const errors: Record<string, number> = {};
let running = true;

function report(event: string): void {
  process.stdout.write(`${JSON.stringify({ event, ...counts, open: sockets.size, errors })}\n`);
}

function open(address: string, banner: boolean): void {
  if (!running) return;
  counts.attempted++;
  let connected = false;
  const socket = connect({ host: "127.0.0.1", port: settings.port, localAddress: address });
  sockets.add(socket);
  socket.on("connect", () => {
    connected = true;
    counts.connected++;
    counts.peakOpen = Math.max(counts.peakOpen, sockets.size);
    if (banner) socket.write("SSH-2.0-flood\r\n");
  });
  socket.on("data", () => undefined);
  socket.on("error", (error: NodeJS.ErrnoException) => {
    if (!connected) counts.failed++;
    errors[error.code ?? "other"] = (errors[error.code ?? "other"] ?? 0) + 1;
  });
  socket.on("close", () => {
    sockets.delete(socket);
    if (!running) return;
    if (connected) counts.closedByServer++;
    // Spread over the delay, so reconnects do not arrive in lockstep waves.
    if (settings.reconnectMs >= 0) setTimeout(() => open(address, banner), settings.reconnectMs * (0.5 + Math.random()));
  });
}

for (const group of settings.groups) {
  for (let i = 0; i < group.count; i++) open(group.address, group.banner);
}
report("started");

createInterface({ input: process.stdin })
  .on("line", (line) => {
    if (line.trim() === "report") report("report");
  })
  .on("close", () => {
    running = false;
    report("final");
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
