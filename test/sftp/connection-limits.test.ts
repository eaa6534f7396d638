import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readdirSync } from "node:fs";
import { Writable } from "node:stream";
import pino from "pino";
import { ConnectionLimits, addressKey, type ConnectionLimitSettings, type TimeoutStage } from "../../src/sftp/connection-limits.ts";
import { DescriptorBudget, readDescriptorLimits } from "../../src/sftp/descriptor-budget.ts";

function capturingLogger() {
  const lines: any[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, stream), lines };
}

const SETTINGS: ConnectionLimitSettings = {
  loginTimeoutSeconds: 30,
  idleTimeoutSeconds: 600,
  maxUnauthenticatedPerAddress: 2,
  maxUnauthenticated: 3,
  maxConnectionsPerDistrict: 2,
  maxConnectionsPerAddress: 3,
  maxConnections: 4,
  maxChannelsPerConnection: 2,
};

function limits(settings: Partial<ConnectionLimitSettings> = {}) {
  const { logger, lines } = capturingLogger();
  // No descriptor limit known: only the counts decide.
  const connections = new ConnectionLimits({ ...SETTINGS, ...settings }, new DescriptorBudget(undefined, 256, logger), logger);
  const timeouts: TimeoutStage[] = [];
  const admit = (address: string) => connections.admit(address, 1234, (stage) => timeouts.push(stage));
  return { connections, lines, timeouts, admit };
}

describe("addressKey", () => {
  it("counts IPv4 (also IPv4-mapped) by address and IPv6 by /64", () => {
    assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
    assert.equal(addressKey("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:0db8:0001:0002:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
    assert.equal(addressKey("2001:db8::1"), "2001:db8:0:0::/64");
    assert.equal(addressKey("::1"), "0:0:0:0::/64");
    assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  });
});

describe("ConnectionLimits", () => {
  it("caps connections not logged in per address and in total, and frees their places on release", () => {
    const { connections, admit, lines } = limits();
    const a1 = admit("192.0.2.1");
    const a2 = admit("192.0.2.1");
    assert.ok(a1 && a2);
    assert.equal(admit("192.0.2.1"), undefined);
    assert.ok(admit("192.0.2.2"));
    assert.equal(admit("192.0.2.3"), undefined, "the total of 3 is reached");
    assert.deepEqual(connections.report().atLimit, ["unauthenticated_per_address", "unauthenticated"]);
    a1.release();
    a1.release();
    assert.equal(connections.report().unauthenticated, 2);
    assert.ok(admit("192.0.2.3"));
    const refused = lines.filter((l) => l.event === "sftp.connection.refused");
    assert.deepEqual(
      refused.map((l) => [l.limit, l.ip, l.max]),
      [
        ["unauthenticated_per_address", "192.0.2.1", 2],
        ["unauthenticated", "192.0.2.3", 3],
      ],
    );
    assert.deepEqual(connections.report().refused.unauthenticated_per_address, 1);
  });

  it("logs one refusal per source and period, however many follow", () => {
    const { connections, admit, lines } = limits();
    admit("192.0.2.1");
    admit("192.0.2.1");
    for (let i = 0; i < 1000; i++) admit("192.0.2.1");
    assert.equal(lines.filter((l) => l.event === "sftp.connection.refused").length, 1);
    assert.equal(connections.report().refused.unauthenticated_per_address, 1000);
  });

  it("moves a connection to the logged-in counts, capped per district, per address and in total", () => {
    const { connections, admit, lines } = limits({ maxUnauthenticatedPerAddress: 10, maxUnauthenticated: 10 });
    const lincoln = { id: 1, slug: "lincoln" };
    const jefferson = { id: 2, slug: "jefferson" };
    const tickets = Array.from({ length: 6 }, (_, i) => admit(i < 4 ? "192.0.2.1" : "192.0.2.2")!);
    assert.equal(tickets[0]!.authenticate(lincoln, {}), true);
    assert.equal(tickets[1]!.authenticate(lincoln, {}), true);
    assert.equal(tickets[2]!.authenticate(lincoln, { ip: "192.0.2.1" }), false, "2 per district");
    assert.equal(tickets[2]!.authenticate(jefferson, {}), true);
    assert.equal(tickets[3]!.authenticate(jefferson, {}), false, "3 per address");
    assert.equal(tickets[4]!.authenticate(jefferson, {}), true);
    tickets[0]!.release();
    assert.equal(tickets[5]!.authenticate(lincoln, {}), true);
    const report = connections.report();
    assert.equal(report.authenticated, 4);
    assert.equal(report.unauthenticated, 1, "the refused one stays counted until it closes");
    assert.ok(report.atLimit.includes("connections"));
    assert.deepEqual(
      lines.filter((l) => l.event === "sftp.connection.refused").map((l) => [l.limit, l.district]),
      [
        ["connections_per_district", "lincoln"],
        ["connections_per_address", "jefferson"],
      ],
    );
    for (const ticket of tickets) ticket.release();
    assert.deepEqual([connections.report().authenticated, connections.report().unauthenticated], [0, 0]);
  });

  it("caps channels per connection and gives their places back", () => {
    const { connections, admit } = limits();
    const ticket = admit("192.0.2.1")!;
    ticket.authenticate({ id: 1, slug: "lincoln" }, {});
    assert.equal(ticket.openChannel({}), true);
    assert.equal(ticket.openChannel({}), true);
    assert.equal(ticket.openChannel({}), false);
    ticket.closeChannel();
    assert.equal(ticket.openChannel({}), true);
    assert.equal(connections.report().channels, 2);
    ticket.release();
    assert.equal(connections.report().channels, 0);
  });

  it("times out a connection that does not log in, and one idle after logging in", async () => {
    const { connections, admit, timeouts } = limits({ loginTimeoutSeconds: 0.05, idleTimeoutSeconds: 0.3 });
    const silent = admit("192.0.2.1")!;
    const active = admit("192.0.2.2")!;
    active.authenticate({ id: 1, slug: "lincoln" }, {});
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 50));
      active.touch();
    }
    assert.deepEqual(timeouts, ["login"], "requests keep a logged-in connection open");
    await new Promise((r) => setTimeout(r, 600));
    assert.deepEqual(timeouts, ["login", "idle"]);
    assert.deepEqual(connections.report().timedOut, { login: 1, idle: 1 });
    silent.release();
    active.release();
  });
});

describe("DescriptorBudget", () => {
  it("counts the process's open descriptors and keeps the reserve, refusing connections before files", async () => {
    const { logger } = capturingLogger();
    const open = readdirSync("/proc/self/fd").length;
    const budget = new DescriptorBudget({ soft: open + 100, hard: open + 100 }, 60, logger);
    await budget.start();
    assert.ok(Math.abs(budget.open - open) <= 3, `counted ${budget.open}, expected about ${open}`);
    assert.equal(budget.hasRoom("connection"), true);
    const files = Array.from({ length: 50 }, () => openSync("/dev/null", "r"));
    try {
      // Sockets are counted as they come; other descriptors at the next sample.
      for (let i = 0; i < 50; i++) budget.opened();
      assert.equal(budget.hasRoom("connection"), false);
      assert.equal(budget.hasRoom("file"), true);
      assert.equal(budget.report()?.refusingConnections, true);
    } finally {
      for (const fd of files) closeSync(fd);
      budget.stop();
    }
  });

  it("reads the descriptor limit, and keeps at least half of it for SFTP", () => {
    const limits = readDescriptorLimits();
    assert.ok(limits && limits.soft > 0 && limits.hard >= limits.soft);
    assert.equal(new DescriptorBudget({ soft: 200, hard: 200 }, 500, capturingLogger().logger).reserve, 100);
  });
});
