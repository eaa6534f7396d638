import assert from "node:assert/strict";
import { connect } from "node:net";
import type { SshAlgorithms } from "../../src/sftp/ssh-algorithms.ts";

// Markers inside the key exchange list that are not algorithms (RFC 8308, OpenSSH's strict KEX).
const PSEUDO_KEX = /^(ext-info-[cs]|kex-strict-[cs]-v00@openssh\.com)$/;

/** The server's KEXINIT, read the way any client reads it: the server's own offer, not our source. */
export async function offeredOnTheWire(port: number): Promise<SshAlgorithms> {
  const socket = connect(port, "127.0.0.1");
  try {
    socket.write("SSH-2.0-RosterdockProbe\r\n");
    let buffer = Buffer.alloc(0);
    for await (const chunk of socket) {
      buffer = Buffer.concat([buffer, chunk as Buffer]);
      const newline = buffer.indexOf("\n");
      if (newline === -1 || buffer.length < newline + 5) continue;
      const packet = buffer.subarray(newline + 1);
      const length = packet.readUInt32BE(0);
      if (packet.length < 4 + length) continue;
      assert.equal(packet[5], 20, "the server's first packet is its KEXINIT");
      const lists: string[][] = [];
      let offset = 5 + 17;
      for (let i = 0; i < 8; i++) {
        const size = packet.readUInt32BE(offset);
        lists.push(packet.subarray(offset + 4, offset + 4 + size).toString("latin1").split(",").filter(Boolean));
        offset += 4 + size;
      }
      const [kex, hostKey, cipherCs, cipherSc, macCs, macSc, compressionCs, compressionSc] = lists;
      assert.deepEqual(cipherSc, cipherCs);
      assert.deepEqual(macSc, macCs);
      assert.deepEqual(compressionSc, compressionCs);
      return { kex: kex!.filter((k) => !PSEUDO_KEX.test(k)), hostKey: hostKey!, cipher: cipherCs!, mac: macCs!, compression: compressionCs! };
    }
    throw new Error("the server closed before sending its KEXINIT");
  } finally {
    socket.destroy();
  }
}
