import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ClientHello } from "../../src/sftp/client-hello.ts";

function kexinitPacket(lists: string[]): Buffer {
  const parts = [Buffer.from([20]), Buffer.alloc(16, 7)];
  for (const list of lists) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(Buffer.byteLength(list));
    parts.push(length, Buffer.from(list));
  }
  parts.push(Buffer.alloc(5)); // first_kex_packet_follows and reserved
  const payload = Buffer.concat(parts);
  const padding = 8 - ((payload.length + 5) % 8) + 8;
  const header = Buffer.alloc(5);
  header.writeUInt32BE(1 + payload.length + padding);
  header[4] = padding;
  return Buffer.concat([header, payload, Buffer.alloc(padding)]);
}

const LISTS = ["diffie-hellman-group-exchange-sha256,ext-info-c", "ssh-rsa", "aes128-ctr", "aes128-ctr", "hmac-sha1", "hmac-sha1", "none", "none", "", ""];

describe("ClientHello", () => {
  it("reads the identification and the client's offer, however the bytes are split", () => {
    const bytes = Buffer.concat([Buffer.from("SSH-2.0-JSCH-0.1.54\r\n"), kexinitPacket(LISTS), Buffer.from("more")]);
    const hello = new ClientHello();
    let done = false;
    for (let i = 0; i < bytes.length && !done; i++) done = hello.push(bytes.subarray(i, i + 1));
    assert.ok(done);
    assert.equal(hello.ident, "SSH-2.0-JSCH-0.1.54");
    assert.deepEqual(hello.offer, {
      kex: ["diffie-hellman-group-exchange-sha256", "ext-info-c"],
      hostKey: ["ssh-rsa"],
      cipher: ["aes128-ctr"],
      mac: ["hmac-sha1"],
      compression: ["none"],
    });
  });

  it("stops at a first line that is not SSH, and at a line or packet longer than SSH allows", () => {
    const http = new ClientHello();
    assert.equal(http.push(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")), true);
    assert.equal(http.ident, "GET / HTTP/1.1");
    assert.equal(http.offer, undefined);

    const endless = new ClientHello();
    assert.equal(endless.push(Buffer.alloc(300, 65)), true);
    assert.equal(endless.ident?.length, 255);

    const huge = new ClientHello();
    const header = Buffer.alloc(5);
    header.writeUInt32BE(1_000_000);
    assert.equal(huge.push(Buffer.concat([Buffer.from("SSH-2.0-x\r\n"), header])), true);
    assert.equal(huge.offer, undefined);
  });

  it("waits while the identification line is incomplete", () => {
    const hello = new ClientHello();
    assert.equal(hello.push(Buffer.from("SSH-2.0-Open")), false);
    assert.equal(hello.ident, undefined);
  });
});
