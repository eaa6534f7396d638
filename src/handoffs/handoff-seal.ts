import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

/**
 * The cryptography of a one-time credentials link. The link carries a 256-bit random token; the
 * server keeps only values derived from it with HKDF-SHA256 under distinct labels: a lookup value
 * to find the row, and (never stored) the AES-256-GCM key the password is sealed with. Knowing
 * the lookup value, or anything else in the row, gives nothing toward the key: only the link
 * opens the password. A 256-bit random token cannot be guessed, so the lookup is a fast HKDF
 * rather than scrypt (which bearer tokens use for their shorter secret): a wrong link costs the
 * server one hash, not a slot on the hashing threads.
 */

const TOKEN_BYTES = 32;
/** base64url of 32 bytes, without padding. */
export const HANDOFF_TOKEN = /^[A-Za-z0-9_-]{43}$/;

const LOOKUP_LABEL = "rosterdock credentials link: lookup v1";
const KEY_LABEL = "rosterdock credentials link: sealing key v1";
const SEALED_VERSION = "v1";

export function newHandoffToken(): string {
  return randomBytes(TOKEN_BYTES).toString("base64url");
}

function derive(token: string, label: string): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(token, "utf8"), Buffer.alloc(0), label, 32));
}

/** What the row is found by: base64url, 43 characters. */
export function handoffLookup(token: string): string {
  return derive(token, LOOKUP_LABEL).toString("base64url");
}

/**
 * `v1.<iv>.<ciphertext>.<tag>` (base64url). `context` (the row's district and lookup) is bound as
 * additional data, so a sealed password copied into another row does not open there.
 */
export function sealWithToken(token: string, secret: string, context: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", derive(token, KEY_LABEL), iv);
  cipher.setAAD(Buffer.from(context, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return [SEALED_VERSION, iv, ciphertext, cipher.getAuthTag()].map((part) => (typeof part === "string" ? part : part.toString("base64url"))).join(".");
}

/** The sealed secret, or undefined when the token, the context or the sealed text is not the right one. */
export function openWithToken(token: string, sealed: string, context: string): string | undefined {
  return openWithKey(derive(token, KEY_LABEL), sealed, context);
}

/** Opens with a given key; exported so tests can show that keys made from the row's contents fail. */
export function openWithKey(key: Buffer, sealed: string, context: string): string | undefined {
  const parts = sealed.split(".");
  if (parts.length !== 4 || parts[0] !== SEALED_VERSION || key.length !== 32) return undefined;
  const [iv, ciphertext, tag] = parts.slice(1).map((p) => Buffer.from(p, "base64url")) as [Buffer, Buffer, Buffer];
  if (iv.length !== 12 || tag.length !== 16) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, iv);
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

/** The additional data a district's sealed password is bound to. */
export function sealContext(districtId: number, lookup: string): string {
  return `district:${districtId}:link:${lookup}`;
}
