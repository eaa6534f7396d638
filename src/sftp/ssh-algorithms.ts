/**
 * Every SSH algorithm the SFTP server offers, in preference order. Each one is exercised by a real
 * client in test/integration/ssh-algorithms.test.ts, which reads this list off the wire: an
 * algorithm added here without a client that completes a login with it fails that test.
 * docs/operations.md lists them for districts' admins.
 */
export interface SshAlgorithms {
  readonly kex: readonly string[];
  readonly hostKey: readonly string[];
  readonly cipher: readonly string[];
  readonly mac: readonly string[];
  readonly compression: readonly string[];
}

export function sshAlgorithms(options: { allowSshRsa: boolean }): SshAlgorithms {
  const { allowSshRsa } = options;
  return {
    // No diffie-hellman-group-exchange-*: ssh2 only implements its client side, so a client that
    // picked it was disconnected mid-handshake (JSch and some OpenSSH setups prefer it).
    kex: [
      "curve25519-sha256",
      "curve25519-sha256@libssh.org",
      "ecdh-sha2-nistp256",
      "ecdh-sha2-nistp384",
      "ecdh-sha2-nistp521",
      "diffie-hellman-group14-sha256",
      "diffie-hellman-group16-sha512",
      // The only exchange JSch before 0.1.51 (no ECDH) has left without group exchange.
      ...(allowSshRsa ? ["diffie-hellman-group14-sha1"] : []),
    ],
    // One entry per stored host key (host-keys.ts); the RSA key signs three ways.
    hostKey: ["ssh-ed25519", "ecdsa-sha2-nistp256", ...(allowSshRsa ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [])],
    cipher: [
      "aes128-gcm@openssh.com",
      "aes256-gcm@openssh.com",
      "chacha20-poly1305@openssh.com",
      // JSch and other older clients have nothing newer than CTR.
      "aes128-ctr",
      "aes192-ctr",
      "aes256-ctr",
    ],
    // Used only with the CTR ciphers; GCM and ChaCha20-Poly1305 carry their own integrity check.
    mac: ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"],
    // Compression starts only after login, as in OpenSSH's server: plain `zlib` would inflate what
    // anonymous clients send, and a client that has only `zlib` sends uncompressed instead.
    compression: ["none", "zlib@openssh.com"],
  };
}
