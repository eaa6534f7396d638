import { isIP, type Socket } from "node:net";
import { AddressFamilyType, Command, INETProtocol, TransportProtocol, V1BinaryProxyProtocol, V2ProxyProtocol } from "proxy-protocol-js";

// proxy-protocol-js decodes a header it is given whole, but does not say where a v2 header ends
// (it ignores the length field and hands back TLVs and the SSH bytes after them as `data`), has
// no v1 `PROXY UNKNOWN\r\n` short form, reads past a short buffer (NaN ports) and checks no
// address. So the framing (where the header ends, how much may arrive, LOCAL and UNKNOWN) and the
// checks of what it decoded are here; the decoding of a framed TCP4/TCP6 or v2 PROXY header is its.

/** The v2 signature (spec section 2.2): "\r\n\r\n\0\r\nQUIT\n". */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_SIGNATURE = Buffer.from("PROXY ", "latin1");
/** A v1 line is at most 107 bytes, CRLF included (spec section 2.1). */
export const V1_MAX_LENGTH = 107;
/** A v2 header is 16 bytes and at most 65,535 more: bounded memory whatever arrives. */
export const V2_MAX_LENGTH = 16 + 0xffff;

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * What the proxy said: the client's connection (`proxy`), or a connection of the proxy's own
 * (v2 `LOCAL`, health checks; v1 `UNKNOWN`; v2 with no IP addresses), which stands for itself.
 */
export type ProxyHeader =
  | { readonly version: 1 | 2; readonly command: "proxy"; readonly source: Endpoint; readonly destination: Endpoint }
  | { readonly version: 1 | 2; readonly command: "local" };

export type ProxyHeaderParse =
  | { readonly state: "incomplete" }
  | { readonly state: "missing"; readonly detail: string }
  | { readonly state: "malformed"; readonly detail: string }
  | { readonly state: "complete"; readonly header: ProxyHeader; readonly length: number };

/**
 * Reads a PROXY protocol v1 or v2 header from the first bytes of a connection. `incomplete` while
 * the bytes so far could still begin one; `length` is the header's, so what follows is the client's.
 */
export function parseProxyHeader(input: Buffer): ProxyHeaderParse {
  if (startsLike(input, V2_SIGNATURE)) return input.length < V2_SIGNATURE.length ? { state: "incomplete" } : parseV2(input);
  if (startsLike(input, V1_SIGNATURE)) return input.length < V1_SIGNATURE.length ? { state: "incomplete" } : parseV1(input);
  return { state: "missing", detail: `the connection began with ${JSON.stringify(input.subarray(0, 24).toString("latin1"))}` };
}

function startsLike(input: Buffer, signature: Buffer): boolean {
  const n = Math.min(input.length, signature.length);
  return input.subarray(0, n).equals(signature.subarray(0, n));
}

function parseV1(input: Buffer): ProxyHeaderParse {
  const crlf = input.subarray(0, V1_MAX_LENGTH).indexOf("\r\n");
  if (crlf === -1) return input.length >= V1_MAX_LENGTH ? malformed(`v1: no CRLF within ${V1_MAX_LENGTH} bytes`) : { state: "incomplete" };
  const line = input.subarray(0, crlf);
  if (line.some((byte) => byte < 0x20 || byte > 0x7e)) return malformed("v1: the line holds bytes that are not printable ASCII");
  const length = crlf + 2;
  const text = line.toString("latin1");
  // "UNKNOWN" may be followed by anything, which the receiver ignores (section 2.1).
  if (text === "PROXY UNKNOWN" || text.startsWith("PROXY UNKNOWN ")) return { state: "complete", header: { version: 1, command: "local" }, length };
  let decoded: V1BinaryProxyProtocol;
  try {
    decoded = V1BinaryProxyProtocol.parse(new Uint8Array(input.subarray(0, length)));
  } catch (error) {
    return malformed(`v1: ${describe(error)}`);
  }
  const family = decoded.inetProtocol === INETProtocol.TCP4 ? 4 : decoded.inetProtocol === INETProtocol.TCP6 ? 6 : 0;
  if (family === 0) return malformed(`v1: unknown protocol in ${JSON.stringify(text)}`);
  const endpoints = [decoded.source, decoded.destination];
  for (const { ipAddress, port } of endpoints) {
    if (isIP(ipAddress) !== family) return malformed(`v1: ${JSON.stringify(ipAddress)} is not an IPv${family} address`);
    if (port > 65535) return malformed(`v1: port ${port} is out of range`);
  }
  const [source, destination] = endpoints.map(({ ipAddress, port }) => ({ address: v1Address(ipAddress), port })) as [Endpoint, Endpoint];
  return { state: "complete", header: { version: 1, command: "proxy", source, destination }, length };
}

function parseV2(input: Buffer): ProxyHeaderParse {
  if (input.length > 12 && input[12]! >> 4 !== 2) return malformed(`v2: version ${input[12]! >> 4} (only 2 exists)`);
  if (input.length < 16) return { state: "incomplete" };
  const length = 16 + input.readUInt16BE(14);
  if (input.length < length) return { state: "incomplete" };
  const command = input[12]! & 0x0f;
  if (command === Command.LOCAL) return { state: "complete", header: { version: 2, command: "local" }, length };
  if (command !== Command.PROXY) return malformed(`v2: unknown command ${command}`);
  let decoded: V2ProxyProtocol;
  try {
    decoded = V2ProxyProtocol.parse(new Uint8Array(input.subarray(0, length)));
  } catch (error) {
    return malformed(`v2: ${describe(error)}`);
  }
  const family = decoded.addressFamilyType;
  // No IP addresses to take: the receiver uses the connection's own (section 2.2).
  if (family === AddressFamilyType.UNSPEC || family === AddressFamilyType.UNIX) return { state: "complete", header: { version: 2, command: "local" }, length };
  if (decoded.transportProtocol !== TransportProtocol.STREAM) return malformed("v2: the proxied connection is not a TCP stream");
  const address = decoded.proxyAddress as { sourceAddress: { address: number[] }; sourcePort: number; destinationAddress: { address: number[] }; destinationPort: number };
  const source = { address: ipText(address.sourceAddress.address), port: address.sourcePort };
  const destination = { address: ipText(address.destinationAddress.address), port: address.destinationPort };
  return { state: "complete", header: { version: 2, command: "proxy", source, destination }, length };
}

/** As v2 addresses read: IPv6 in lower case, IPv4-mapped IPv6 as IPv4. */
function v1Address(text: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  return mapped ? mapped[1]! : text.toLowerCase();
}

/** Four bytes as dotted IPv4; sixteen as compressed IPv6, or dotted IPv4 when IPv4-mapped. */
export function ipText(bytes: readonly number[]): string {
  if (bytes.length === 4) return bytes.join(".");
  const mapped = bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return bytes.slice(12).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
}

function malformed(detail: string): ProxyHeaderParse {
  return { state: "malformed", detail };
}

/** proxy-protocol-js throws objects with a message that are not Errors. */
function describe(error: unknown): string {
  return typeof error === "object" && error !== null && "message" in error ? String((error as { message: unknown }).message) : String(error);
}

export type ProxyHeaderRead =
  | { readonly state: "complete"; readonly header: ProxyHeader }
  | { readonly state: "missing" | "malformed"; readonly detail: string }
  | { readonly state: "closed"; readonly received: number }
  | { readonly state: "timeout"; readonly received: number };

/**
 * Reads the header off a fresh socket before anyone else sees a byte. On `complete` the socket is
 * paused with the bytes after the header put back (`unshift`), so ssh2 reads the client's
 * identification as if the header had never been there.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number): Promise<ProxyHeaderRead> {
  return new Promise((resolve) => {
    let buffer: Buffer = Buffer.alloc(0);
    const finish = (result: ProxyHeaderRead) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onError);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      const parsed = parseProxyHeader(buffer);
      if (parsed.state === "incomplete") return;
      socket.pause();
      if (parsed.state !== "complete") return finish(parsed);
      const rest = buffer.subarray(parsed.length);
      if (rest.length > 0) socket.unshift(rest);
      finish({ state: "complete", header: parsed.header });
    };
    const onClose = () => finish({ state: "closed", received: buffer.length });
    // A reset is followed by `close`, which settles the read.
    const onError = () => undefined;
    const timer = setTimeout(() => {
      socket.pause();
      finish({ state: "timeout", received: buffer.length });
    }, timeoutMs);
    timer.unref();
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.on("error", onError);
  });
}
