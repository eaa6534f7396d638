import { randomBytes, randomInt, scrypt as scryptCallback, timingSafeEqual } from "node:crypto";

const PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const ALPHANUMERIC = PASSWORD_ALPHABET.slice(0, 62);

/**
 * A password a district admin can type into PowerSchool: letters, digits, `-` and `_` only,
 * starting and ending with a letter or digit so no form trims or misreads it. 24 chars ≈ 142 bits.
 */
export function generatePassword(length = 24): string {
  let password = "";
  for (let i = 0; i < length; i++) {
    const alphabet = i === 0 || i === length - 1 ? ALPHANUMERIC : PASSWORD_ALPHABET;
    password += alphabet[randomInt(alphabet.length)];
  }
  return password;
}

/** Random URL-safe text with `bytes` bytes of entropy. */
export function randomToken(bytes: number): string {
  return randomBytes(bytes).toString("base64url");
}

/** scrypt's cost parameters, stored with every hash so they can be raised later. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** Derives a key; the server passes its hash pool's, so hashing runs off the main thread. */
export type DeriveKey = (secret: string, salt: Buffer, keyLength: number, params: ScryptParams) => Promise<Buffer>;

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 };
export const SCRYPT_MAXMEM = 64 * 1024 * 1024;

/** On libuv's threadpool: fine for one-shot CLI commands, not for a server (see HashPool). */
export const deriveOnThreadpool: DeriveKey = (secret, salt, keyLength, params) =>
  new Promise((resolve, reject) =>
    scryptCallback(secret, salt, keyLength, { ...params, maxmem: SCRYPT_MAXMEM }, (error, key) => (error ? reject(error) : resolve(key))),
  );

/** `scrypt$N$r$p$salt$hash`, salt and hash in base64url. */
export async function hashSecret(secret: string, derive: DeriveKey = deriveOnThreadpool): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(secret, salt, SCRYPT.keyLength, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p });
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString("base64url"), key.toString("base64url")].join("$");
}

/** Compares in constant time; a malformed hash never matches. */
export async function verifySecret(secret: string, encoded: string, derive: DeriveKey = deriveOnThreadpool): Promise<boolean> {
  const parts = encoded.split("$");
  if (parts.length !== 6 || parts[0] !== "scrypt") return false;
  const [, n, r, p, saltText, hashText] = parts as [string, string, string, string, string, string];
  const expected = Buffer.from(hashText, "base64url");
  const key = await derive(secret, Buffer.from(saltText, "base64url"), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}
