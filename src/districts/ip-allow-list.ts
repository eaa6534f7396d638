import { BlockList, isIP } from "node:net";
import { RosterdockError } from "../errors.ts";

/** Validates and normalises `10.0.0.0/8`, `192.0.2.7` or `2001:db8::/32`. */
export function parseCidr(text: string): string {
  const [address = "", prefixText, ...rest] = text.trim().split("/");
  const family = isIP(address);
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!family || rest.length > 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) {
    throw new RosterdockError("ERR_INVALID_CIDR", `"${text}" is not an IP address or CIDR range (for example 203.0.113.0/24).`);
  }
  return `${address}/${prefix}`;
}

/** An empty list allows every address. */
export function isAddressAllowed(allowList: readonly string[], address: string): boolean {
  if (allowList.length === 0) return true;
  const plain = address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  if (!family) return false;
  const list = new BlockList();
  for (const cidr of allowList) {
    const [net = "", prefix = "0"] = cidr.split("/");
    list.addSubnet(net, Number(prefix), isIP(net) === 6 ? "ipv6" : "ipv4");
  }
  return list.check(plain, family === 6 ? "ipv6" : "ipv4");
}
