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
    const pair = spec.generate();
    await db
      .insertInto("host_keys")
      .values({ algorithm: spec.algorithm, private_key: pair.private, created_at: isoNow(clock) })
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
