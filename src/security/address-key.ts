import { isIPv4, isIPv6 } from "node:net";

/**
 * The key under which the defender counts and bans a client address. IPv4 addresses stand for
 * themselves (also when written IPv4-mapped, `::ffff:192.0.2.1`); an IPv6 address stands for its
 * /64, since one host is routinely given a whole /64 and could otherwise change address per try.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return "unknown";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address)) return address;
  const bare = address.replace(/\/64$/, "");
  if (!isIPv6(bare)) return address;
  return `${expandIPv6(bare).slice(0, 4).join(":")}::/64`;
}

/** The eight groups of an IPv6 address, without leading zeros. */
function expandIPv6(address: string): string[] {
  const [head, tail] = address.toLowerCase().split("::") as [string, string | undefined];
  const groups = (text: string | undefined) => (text ? text.split(":") : []);
  const left = groups(head);
  const right = groups(tail);
  const middle = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...middle, ...right].map((g) => g.replace(/^0+(?=.)/, ""));
}
