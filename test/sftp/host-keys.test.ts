import { describe, it } from "node:test";
import assert from "node:assert/strict";
import ssh2 from "ssh2";
import { generateHostKey } from "../../src/sftp/host-keys.ts";

describe("host key generation", () => {
  it("throws away a generated key that cannot be read back and generates another", () => {
    const good = ssh2.utils.generateKeyPairSync("ed25519").private;
    const outputs = ["-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n", good];
    let calls = 0;
    const key = generateHostKey("ssh-ed25519", () => ({ private: outputs[calls++]! }));
    assert.equal(calls, 2);
    assert.equal(key, good);
    assert.ok(!(ssh2.utils.parseKey(key) instanceof Error));
  });

  it("gives up with a clear error when no readable key comes out", () => {
    assert.throws(() => generateHostKey("ssh-ed25519", () => ({ private: "not a key" })), /Could not generate a readable ssh-ed25519 host key in 8 tries/);
  });

  it("generates readable keys of every type the server offers", () => {
    for (const algorithm of ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]) {
      const parsed = ssh2.utils.parseKey(generateHostKey(algorithm));
      assert.ok(!(parsed instanceof Error), algorithm);
    }
  });
});
