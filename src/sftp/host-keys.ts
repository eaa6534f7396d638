import { createHash } from "node:crypto";
import ssh2 from "ssh2";
import type { Kysely } from "kysely";
import type { Database } from "../db/schema.ts";
import type { Clock } from "../clock.ts";
import { isoNow } from "../clock.ts";

const { utils } = ssh2;

/** The three host keys every Rosterdock server holds, generated on first start and never regenerated. */
const KEY_SPECS = [
  { algorithm: "ssh-ed25519", generate: () => utils.generateKeyPairSync("ed25519") },
  { algorithm: "ecdsa-sha2-nistp256", generate: () => utils.generateKeyPairSync("ecdsa", { bits: 256 }) },
  // Old Java clients (JSch 0.1.5x, likely inside PowerSchool) know no other key type than RSA and ECDSA.
  { algorithm: "ssh-rsa", generate: () => utils.generateKeyPairSync("rsa", { bits: 3072 }) },
] as const;

export interface HostKey {
  readonly algorithm: string;
  readonly privateKey: string;
  /** As OpenSSH prints it: `SHA256:` + unpadded base64. */
  readonly sha256: string;
  /** As older tools print it: `MD5:` + colon-separated hex. */
  readonly md5: string;
}

export function fingerprints(publicSsh: Buffer): { sha256: string; md5: string } {
  const sha256 = createHash("sha256").update(publicSsh).digest("base64").replace(/=+$/, "");
  const md5 = createHash("md5").update(publicSsh).digest("hex").match(/../g)!.join(":");
  return { sha256: `SHA256:${sha256}`, md5: `MD5:${md5}` };
}

/** Tries before giving up on generating a key ssh2 can read back. */
const GENERATE_TRIES = 8;

/**
 * A new private key, checked by reading it back: ssh2 now and then writes an Ed25519 key in a
 * form its own parser refuses ("Malformed OpenSSH private key"), about 4 in 1000. Stored, such a
 * key would stop every later start, so it is thrown away and generated again.
 */
export function generateHostKey(algorithm: string, generate: () => { private: string } = specOf(algorithm).generate): string {
  let lastError = "";
  for (let i = 0; i < GENERATE_TRIES; i++) {
    const candidate = generate().private;
    const parsed = utils.parseKey(candidate);
    if (!(parsed instanceof Error)) return candidate;
    lastError = parsed.message;
  }
  throw new Error(`Could not generate a readable ${algorithm} host key in ${GENERATE_TRIES} tries: ${lastError}`);
}

function specOf(algorithm: string): (typeof KEY_SPECS)[number] {
  const spec = KEY_SPECS.find((s) => s.algorithm === algorithm);
  if (spec === undefined) throw new Error(`No host key type ${algorithm}`);
  return spec;
}

function describe(algorithm: string, privateKey: string): HostKey {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw new Error(`Stored host key ${algorithm} cannot be read: ${parsed.message}`);
  return { algorithm, privateKey, ...fingerprints(parsed.getPublicSSH()) };
}

/**
 * Loads the host keys, creating any that are missing. Concurrent first starts (a CLI command
 * beside the server) are safe: the insert keeps whichever key was stored first.
 */
export async function ensureHostKeys(db: Kysely<Database>, clock: Clock): Promise<HostKey[]> {
  const stored = new Map((await db.selectFrom("host_keys").selectAll().execute()).map((row) => [row.algorithm, row]));
  for (const spec of KEY_SPECS) {
    if (stored.has(spec.algorithm)) continue;
    const privateKey = generateHostKey(spec.algorithm);
    await db
      .insertInto("host_keys")
      .values({ algorithm: spec.algorithm, private_key: privateKey, created_at: isoNow(clock) })
      .onConflict((oc) => oc.column("algorithm").doNothing())
      .execute();
  }
  const rows = await db.selectFrom("host_keys").selectAll().execute();
  const order = KEY_SPECS.map((s) => s.algorithm as string);
  return rows
    .filter((row) => order.includes(row.algorithm))
    .sort((a, b) => order.indexOf(a.algorithm) - order.indexOf(b.algorithm))
    .map((row) => describe(row.algorithm, row.private_key));
}
