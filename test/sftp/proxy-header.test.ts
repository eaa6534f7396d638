import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BlockList, createServer, connect, isIP, type AddressInfo, type Socket } from "node:net";
import fc from "fast-check";
import { Command, INETProtocol, IPv4Address, IPv4ProxyAddress, Peer, TransportProtocol, V1ProxyProtocol, V2ProxyProtocol } from "proxy-protocol-js";
import { parseProxyHeader, readProxyHeader, V1_MAX_LENGTH, V2_MAX_LENGTH, V2_SIGNATURE } from "../../src/sftp/proxy-header.ts";
import { loadConfig } from "../../src/config.ts";

// Headers are built here by hand from the spec (haproxy.org/download/2.6/doc/proxy-protocol.txt),
// not with the library the parser uses, so a shared misreading cannot pass.

function v1(family: "TCP4" | "TCP6", source: string, destination: string, sourcePort: number, destinationPort: number): Buffer {
  return Buffer.from(`PROXY ${family} ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`, "latin1");
}

/** command 0 LOCAL, 1 PROXY; family 1 INET, 2 INET6 (high nibble), transport 1 STREAM. */
function v2(command: number, family: number, addresses: Buffer, tlvs: Buffer = Buffer.alloc(0), transport = 1): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = (family << 4) | transport;
  head.writeUInt16BE(addresses.length + tlvs.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, addresses, tlvs]);
}

function addressBlock(source: number[], destination: number[], sourcePort: number, destinationPort: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sourcePort, 0);
  ports.writeUInt16BE(destinationPort, 2);
  return Buffer.concat([Buffer.from(source), Buffer.from(destination), ports]);
}

/** Whether `text` is the IPv6 address of these 16 bytes (any spelling). */
function sameIpv6(text: string, bytes: number[]): boolean {
  const full = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(":");
  const list = new BlockList();
  list.addAddress(full, "ipv6");
  return isIP(text) === 6 && list.check(text, "ipv6");
}

const port = fc.integer({ min: 0, max: 65535 });
const bytes = (n: number) => fc.array(fc.integer({ min: 0, max: 255 }), { minLength: n, maxLength: n });
const after = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

describe("PROXY protocol headers", () => {
  it("reads HAProxy's v2 header for an IPv4 client and leaves the SSH bytes after it", () => {
    const header = v2(1, 1, addressBlock([203, 0, 113, 9], [10, 0, 0, 2], 51000, 2222));
    const parsed = parseProxyHeader(Buffer.concat([header, Buffer.from("SSH-2.0-OpenSSH_9.2\r\n")]));
    assert.deepEqual(parsed, {
      state: "complete",
      length: header.length,
      header: { version: 2, command: "proxy", source: { address: "203.0.113.9", port: 51000 }, destination: { address: "10.0.0.2", port: 2222 } },
    });
  });

  it("reads v1 TCP4 and TCP6 lines", () => {
    assert.deepEqual(parseProxyHeader(v1("TCP4", "192.0.2.7", "10.0.0.2", 40000, 2222)), {
      state: "complete",
      length: 42,
      header: { version: 1, command: "proxy", source: { address: "192.0.2.7", port: 40000 }, destination: { address: "10.0.0.2", port: 2222 } },
    });
    const six = parseProxyHeader(v1("TCP6", "2001:DB8::7", "::ffff:192.0.2.8", 1, 2));
    assert.deepEqual(six.state === "complete" && six.header.command === "proxy" && [six.header.source.address, six.header.destination.address], ["2001:db8::7", "192.0.2.8"]);
  });

  it("takes v2 LOCAL (health checks), v1 UNKNOWN and v2 without IP addresses as the proxy's own connection", () => {
    const local = v2(0, 0, Buffer.alloc(0));
    assert.deepEqual(parseProxyHeader(local), { state: "complete", length: 16, header: { version: 2, command: "local" } });
    // LOCAL discards whatever address block comes with it.
    assert.deepEqual(parseProxyHeader(v2(0, 1, Buffer.alloc(3))), { state: "complete", length: 19, header: { version: 2, command: "local" } });
    assert.deepEqual(parseProxyHeader(Buffer.from("PROXY UNKNOWN\r\n")), { state: "complete", length: 15, header: { version: 1, command: "local" } });
    assert.deepEqual(parseProxyHeader(Buffer.from("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")), { state: "complete", length: 35, header: { version: 1, command: "local" } });
    assert.deepEqual(parseProxyHeader(v2(1, 0, Buffer.alloc(0))), { state: "complete", length: 16, header: { version: 2, command: "local" } });
    assert.deepEqual(parseProxyHeader(v2(1, 3, Buffer.alloc(216))), { state: "complete", length: 232, header: { version: 2, command: "local" } });
  });

  it("writes an IPv4-mapped IPv6 source as IPv4, so allow-lists and caps see one address", () => {
    const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 4];
    const parsed = parseProxyHeader(v2(1, 2, addressBlock(mapped, mapped, 1, 2)));
    assert.equal(parsed.state === "complete" && parsed.header.command === "proxy" && parsed.header.source.address, "198.51.100.4");
  });

  it("says a connection that does not begin like a header has none, as soon as its first byte shows it", () => {
    assert.equal(parseProxyHeader(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n")).state, "missing");
    assert.equal(parseProxyHeader(Buffer.from("S")).state, "missing");
    assert.equal(parseProxyHeader(Buffer.from("PROXZ")).state, "missing");
    assert.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01])).state, "missing");
    assert.equal(parseProxyHeader(Buffer.alloc(0)).state, "incomplete");
    assert.equal(parseProxyHeader(Buffer.from("PROX")).state, "incomplete");
  });

  it("refuses malformed headers, saying what is wrong", () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from("PROXY TCP4 999.0.0.1 10.0.0.2 1 2\r\n"), /not an IPv4 address/],
      [Buffer.from("PROXY TCP4 ::1 10.0.0.2 1 2\r\n"), /not an IPv4 address/],
      [Buffer.from("PROXY TCP6 10.0.0.1 ::1 1 2\r\n"), /not an IPv6 address/],
      [Buffer.from("PROXY TCP4 10.0.0.1 10.0.0.2 65536 2\r\n"), /out of range/],
      [Buffer.from("PROXY TCP4 10.0.0.1 10.0.0.2 1\r\n"), /v1:/],
      [Buffer.from("PROXY UDP4 10.0.0.1 10.0.0.2 1 2\r\n"), /v1:/],
      [Buffer.from("PROXY TCP4 10.0.0.1  10.0.0.2 1 2\r\n"), /v1:/],
      [Buffer.from("PROXY TCP4 10.0.0.1 10.0.0.2 1 2 3\r\n"), /v1:/],
      [Buffer.from("PROXY TCP4 10.0.0.1\t10.0.0.2 1 2\r\n"), /printable/],
      [Buffer.from(`PROXY TCP4 ${"1".repeat(120)}`), /no CRLF within 107 bytes/],
      [Buffer.concat([V2_SIGNATURE, Buffer.from([0x11])]), /version 1/],
      [v2(2, 1, addressBlock([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)), /unknown command 2/],
      [v2(1, 1, Buffer.alloc(11)), /shorter than address family/],
      [v2(1, 4, Buffer.alloc(12)), /address family/],
      [v2(1, 1, addressBlock([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), Buffer.alloc(0), 2), /not a TCP stream/],
    ];
    for (const [input, detail] of cases) {
      const parsed = parseProxyHeader(input);
      assert.equal(parsed.state, "malformed", input.toString("latin1"));
      assert.match(parsed.state === "malformed" ? parsed.detail : "", detail);
    }
  });

  it("reads headers built by proxy-protocol-js's own builders", () => {
    const one = new V1ProxyProtocol(INETProtocol.TCP4, new Peer("192.0.2.1", 1234), new Peer("10.0.0.1", 2222)).build();
    const parsedOne = parseProxyHeader(Buffer.from(one, "latin1"));
    assert.equal(parsedOne.state === "complete" && parsedOne.header.command === "proxy" && parsedOne.header.source.port, 1234);
    const two = new V2ProxyProtocol(Command.PROXY, TransportProtocol.STREAM, new IPv4ProxyAddress(IPv4Address.createFrom([192, 0, 2, 1]), 1234, IPv4Address.createFrom([10, 0, 0, 1]), 2222)).build();
    const parsedTwo = parseProxyHeader(Buffer.from(two));
    assert.equal(parsedTwo.state === "complete" && parsedTwo.header.command === "proxy" && parsedTwo.header.source.address, "192.0.2.1");
  });

  it("never throws on arbitrary bytes, and a header it finds fits in them and within the protocol's bounds", () => {
    const anything = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }).map((a) => Uint8Array.from([...V2_SIGNATURE, ...a])),
      fc.uint8Array({ maxLength: 120 }).map((a) => Uint8Array.from([...Buffer.from("PROXY "), ...a])),
      fc.string({ maxLength: 120 }).map((s) => Uint8Array.from(Buffer.from(`PROXY ${s}\r\n`))),
    );
    fc.assert(
      fc.property(anything, (array) => {
        const input = Buffer.from(array);
        const parsed = parseProxyHeader(input);
        assert.ok(["incomplete", "missing", "malformed", "complete"].includes(parsed.state));
        if (parsed.state === "complete") {
          assert.ok(parsed.length <= input.length && parsed.length <= Math.max(V1_MAX_LENGTH, V2_MAX_LENGTH));
          if (parsed.header.command === "proxy") assert.ok(isIP(parsed.header.source.address) && parsed.header.source.port <= 65535);
        }
        if (parsed.state === "incomplete") assert.ok(input.length < V2_MAX_LENGTH);
      }),
      { numRuns: 5000 },
    );
  });

  it("round-trips every valid v1 header, with whatever follows it left alone, and finds every prefix incomplete", () => {
    const header = fc.oneof(
      fc.tuple(fc.ipV4(), fc.ipV4(), port, port).map(([s, d, sp, dp]) => ({ family: "TCP4" as const, s, d, sp, dp })),
      fc.tuple(fc.ipV6(), fc.ipV6(), port, port).map(([s, d, sp, dp]) => ({ family: "TCP6" as const, s, d, sp, dp })),
    );
    fc.assert(
      fc.property(header, after, ({ family, s, d, sp, dp }, rest) => {
        const built = v1(family, s, d, sp, dp);
        const parsed = parseProxyHeader(Buffer.concat([built, rest]));
        // IPv4-mapped IPv6 reads as IPv4, as in v2, so allow-lists and caps see one address.
        const plain = (text: string) => /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(text) ? text.slice(7) : text.toLowerCase();
        assert.deepEqual(parsed, { state: "complete", length: built.length, header: { version: 1, command: "proxy", source: { address: plain(s), port: sp }, destination: { address: plain(d), port: dp } } });
        for (let cut = 0; cut < built.length; cut++) assert.equal(parseProxyHeader(built.subarray(0, cut)).state, "incomplete");
      }),
      { numRuns: 500 },
    );
  });

  it("round-trips every valid v2 header, TLVs skipped, whatever follows left alone, every prefix incomplete", () => {
    const header = fc.oneof(
      fc.tuple(bytes(4), bytes(4), port, port).map(([s, d, sp, dp]) => ({ family: 1, s, d, sp, dp })),
      fc.tuple(bytes(16), bytes(16), port, port).map(([s, d, sp, dp]) => ({ family: 2, s, d, sp, dp })),
    );
    const tlvs = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a));
    fc.assert(
      fc.property(header, tlvs, after, ({ family, s, d, sp, dp }, extra, rest) => {
        const built = v2(1, family, addressBlock(s, d, sp, dp), extra);
        const parsed = parseProxyHeader(Buffer.concat([built, rest]));
        assert.equal(parsed.state, "complete");
        if (parsed.state !== "complete" || parsed.header.command !== "proxy") return;
        assert.equal(parsed.length, built.length);
        assert.deepEqual([parsed.header.version, parsed.header.source.port, parsed.header.destination.port], [2, sp, dp]);
        for (const [text, raw] of [[parsed.header.source.address, s], [parsed.header.destination.address, d]] as const) {
          const mapped = raw.length === 16 && raw.slice(0, 10).every((b) => b === 0) && raw[10] === 0xff && raw[11] === 0xff;
          if (raw.length === 4 || mapped) assert.equal(text, raw.slice(-4).join("."));
          else assert.ok(sameIpv6(text, raw), `${text} is not ${raw.join(",")}`);
        }
        for (let cut = 0; cut < built.length; cut++) assert.equal(parseProxyHeader(built.subarray(0, cut)).state, "incomplete");
      }),
      { numRuns: 300 },
    );
  });
});

/** A connected pair of loopback sockets: [the server's, the client's]. */
async function socketPair(): Promise<{ server: Socket; client: Socket; close(): void }> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  const accepted = new Promise<Socket>((resolve) => listener.once("connection", resolve));
  const client = connect((listener.address() as AddressInfo).port, "127.0.0.1");
  client.on("error", () => undefined);
  const server = await accepted;
  listener.close();
  return { server, client, close: () => (server.destroy(), client.destroy()) };
}

describe("reading a PROXY header off a socket", () => {
  it("hands on every byte after a header sent a byte at a time, to a reader that comes later", async () => {
    const { server, client, close } = await socketPair();
    try {
      const header = v2(1, 1, addressBlock([203, 0, 113, 9], [127, 0, 0, 1], 5000, 22));
      const payload = Buffer.concat([header, Buffer.from("SSH-2.0-Test\r\n"), Buffer.alloc(3000, 7)]);
      const read = readProxyHeader(server, 5000);
      for (let i = 0; i < header.length + 4; i++) {
        client.write(payload.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, 2));
      }
      client.end(payload.subarray(header.length + 4));
      const result = await read;
      assert.equal(result.state === "complete" && result.header.command === "proxy" && result.header.source.address, "203.0.113.9");
      assert.equal(server.isPaused(), true);
      await new Promise((r) => setTimeout(r, 50));
      const chunks: Buffer[] = [];
      server.on("data", (chunk: Buffer) => chunks.push(chunk));
      server.resume();
      await new Promise((resolve) => server.once("end", resolve));
      assert.deepEqual(Buffer.concat(chunks), payload.subarray(header.length));
    } finally {
      close();
    }
  });

  it("says when the header is missing, too slow or cut short", async () => {
    const missing = await socketPair();
    const read = readProxyHeader(missing.server, 5000);
    missing.client.write("SSH-2.0-OpenSSH_9.2\r\n");
    assert.equal((await read).state, "missing");
    missing.close();

    const slow = await socketPair();
    slow.client.write("PROXY TCP4 ");
    const started = Date.now();
    assert.deepEqual(await readProxyHeader(slow.server, 300), { state: "timeout", received: 11 });
    assert.ok(Date.now() - started >= 290);
    slow.close();

    const cut = await socketPair();
    const reading = readProxyHeader(cut.server, 5000);
    cut.client.end(V2_SIGNATURE.subarray(0, 5));
    assert.deepEqual(await reading, { state: "closed", received: 5 });
    cut.close();
  });
});

describe("PROXY protocol settings", () => {
  it("is off by default, and needs trusted proxies when on", () => {
    const base = { ROSTERDOCK_DATA_DIR: "/tmp/x" };
    const off = loadConfig(base);
    assert.deepEqual([off.sftpProxyProtocol, off.sftpTrustedProxies], [false, []]);
    const on = loadConfig({ ...base, ROSTERDOCK_SFTP_PROXY_PROTOCOL: "true", ROSTERDOCK_SFTP_TRUSTED_PROXIES: " 10.0.0.5, 10.0.1.0/28 ,2001:db8::/32" });
    assert.deepEqual([on.sftpProxyProtocol, on.sftpTrustedProxies], [true, ["10.0.0.5/32", "10.0.1.0/28", "2001:db8::/32"]]);
    assert.throws(() => loadConfig({ ...base, ROSTERDOCK_SFTP_PROXY_PROTOCOL: "true" }), /ROSTERDOCK_SFTP_TRUSTED_PROXIES must name the proxies' addresses/);
    assert.throws(() => loadConfig({ ...base, ROSTERDOCK_SFTP_TRUSTED_PROXIES: "10.0.0.0/33" }), /ROSTERDOCK_SFTP_TRUSTED_PROXIES must list IP addresses or CIDR ranges, got "10.0.0.0\/33"/);
    // A bad PROXY_PROTOCOL value is reported alone, not again as a missing list.
    assert.throws(
      () => loadConfig({ ...base, ROSTERDOCK_SFTP_PROXY_PROTOCOL: "maybe" }),
      (error: Error & { details?: { problems: string[] } }) => error.details?.problems.length === 1,
    );
  });
});
