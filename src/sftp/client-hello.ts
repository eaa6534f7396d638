/** The algorithms a client offers in its first KEXINIT (client to server lists). */
export interface ClientOffer {
  readonly kex: readonly string[];
  readonly hostKey: readonly string[];
  readonly cipher: readonly string[];
  readonly mac: readonly string[];
  readonly compression: readonly string[];
}

// RFC 4253: an identification line is at most 255 characters, a packet at most 35,000 bytes.
const MAX_IDENT = 255;
const MAX_PACKET = 35_000;
const KEXINIT = 20;

/**
 * What a client said before any encryption: its identification line and its first KEXINIT. Read
 * beside ssh2, which keeps neither when it refuses a handshake, so the refusal can be explained.
 * Holds at most one packet and stops listening once it has it.
 */
export class ClientHello {
  /** The client's first line, SSH or not, without its line end. */
  ident: string | undefined;
  offer: ClientOffer | undefined;
  private buffer = Buffer.alloc(0);
  private done = false;

  /** Takes the client's next bytes; true once nothing more is needed. */
  push(chunk: Buffer): boolean {
    if (this.done) return true;
    this.buffer = Buffer.concat([this.buffer, chunk]);
    if (this.ident === undefined) {
      const newline = this.buffer.indexOf(10);
      if (newline === -1 && this.buffer.length <= MAX_IDENT + 2) return false;
      const end = newline === -1 ? MAX_IDENT : newline;
      this.ident = this.buffer.subarray(0, end).toString("latin1").replace(/\r$/, "").slice(0, MAX_IDENT);
      if (newline === -1 || !this.ident.startsWith("SSH-")) return this.finish();
      this.buffer = this.buffer.subarray(newline + 1);
    }
    if (this.buffer.length < 5) return false;
    const length = this.buffer.readUInt32BE(0);
    if (length > MAX_PACKET || length < 1 + this.buffer[4]!) return this.finish();
    if (this.buffer.length < 4 + length) return false;
    this.offer = parseKexInit(this.buffer.subarray(5, 4 + length - this.buffer[4]!));
    return this.finish();
  }

  private finish(): true {
    this.done = true;
    this.buffer = Buffer.alloc(0);
    return true;
  }
}

function parseKexInit(payload: Buffer): ClientOffer | undefined {
  if (payload[0] !== KEXINIT) return undefined;
  const lists: string[][] = [];
  let offset = 17; // message type and 16-byte cookie
  for (let i = 0; i < 8; i++) {
    if (offset + 4 > payload.length) return undefined;
    const length = payload.readUInt32BE(offset);
    if (offset + 4 + length > payload.length) return undefined;
    const text = payload.subarray(offset + 4, offset + 4 + length).toString("latin1");
    lists.push(text === "" ? [] : text.split(","));
    offset += 4 + length;
  }
  const [kex, hostKey, cipher, , mac, , compression] = lists;
  return { kex: kex!, hostKey: hostKey!, cipher: cipher!, mac: mac!, compression: compression! };
}
