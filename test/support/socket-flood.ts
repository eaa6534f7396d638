// Opens many raw TCP sockets to a port and holds them, as a scanner or a descriptor-exhaustion attack does.
// Run as a child process (its own descriptor limit, raised with `ulimit`), driven over stdin/stdout:
//   argv[2]: port; argv[3]: JSON [{ "address": "127.0.0.2", "count": 1000, "banner": true }, ...]
//   prints {"event":"settled", ...} once every socket connected or failed; a line "report" on stdin
//   prints the counts again; the end of stdin closes everything and exits.
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";

interface Group {
  address: string;
  count: number;
  /** Sends an SSH identification line and nothing more; otherwise the socket stays silent. */
  banner?: boolean;
}

const port = Number(process.argv[2]);
const groups = JSON.parse(process.argv[3] ?? "[]") as Group[];
const sockets = new Set<Socket>();
const counts = { attempted: 0, connected: 0, failed: 0, closedByServer: 0, open: 0 };
let pending = 0;

function report(event: string): void {
  process.stdout.write(`${JSON.stringify({ event, ...counts, open: sockets.size })}\n`);
}

function settleOne(): void {
  if (--pending === 0) report("settled");
}

for (const group of groups) {
  for (let i = 0; i < group.count; i++) {
    counts.attempted++;
    pending++;
    let settled = false;
    let connected = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      settleOne();
    };
    const socket = connect({ host: "127.0.0.1", port, localAddress: group.address });
    sockets.add(socket);
    socket.on("connect", () => {
      connected = true;
      counts.connected++;
      if (group.banner) socket.write("SSH-2.0-x\r\n");
      // A refused socket is closed by the server at once: wait a moment before calling this one settled.
      setTimeout(settle, 200);
    });
    socket.on("data", () => undefined);
    socket.on("error", () => {
      if (!connected) counts.failed++;
    });
    socket.on("close", () => {
      sockets.delete(socket);
      if (connected) counts.closedByServer++;
      settle();
    });
  }
}

report("started");

createInterface({ input: process.stdin })
  .on("line", (line) => {
    if (line.trim() === "report") report("report");
  })
  .on("close", () => {
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
