/**
 * IP address classification for live egress: which addresses are "public" (reachable by any allowed
 * host) and which are loopback / private / link-local / CGNAT / unspecified / … (reachable only when
 * the allowlist names the address itself).
 *
 * Pure functions over the textual forms `node:net` accepts; IPv4-mapped, IPv4-compatible, NAT64
 * (64:ff9b::/96) and 6to4 (2002::/16) IPv6 addresses are classified by the IPv4 address they embed,
 * so `::ffff:127.0.0.1` is loopback like `127.0.0.1`.
 */
import { isIPv4, isIPv6 } from "node:net"

export type AddressClass =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "unspecified"
  | "multicast"
  | "reserved"

/** Parse dotted-quad IPv4 into a 32-bit unsigned number (undefined when not plain dotted-quad). */
export const parseIPv4 = (s: string): number | undefined => {
  if (!isIPv4(s)) return undefined
  const parts = s.split(".").map(Number)
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3]
}

/** Parse IPv6 (optionally bracketed, zone id dropped) into 8 16-bit groups. */
export const parseIPv6 = (input: string): ReadonlyArray<number> | undefined => {
  let s = input.startsWith("[") && input.endsWith("]") ? input.slice(1, -1) : input
  const zone = s.indexOf("%")
  if (zone >= 0) s = s.slice(0, zone)
  if (!isIPv6(s)) return undefined
  // an embedded dotted IPv4 tail becomes two groups
  const lastColon = s.lastIndexOf(":")
  const tail = s.slice(lastColon + 1)
  if (tail.includes(".")) {
    const v4 = parseIPv4(tail)
    if (v4 === undefined) return undefined
    s = s.slice(0, lastColon + 1) + ((v4 >>> 16) & 0xffff).toString(16) + ":" + (v4 & 0xffff).toString(16)
  }
  const halves = s.split("::")
  const head = halves[0] === "" ? [] : halves[0].split(":")
  const rest = halves.length > 1 ? (halves[1] === "" ? [] : halves[1].split(":")) : []
  const fill = halves.length > 1 ? 8 - head.length - rest.length : 0
  const groups = [...head, ...Array<string>(fill).fill("0"), ...rest].map((g) => parseInt(g, 16))
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined
}

const inV4 = (a: number, base: string, bits: number): boolean => {
  const b = parseIPv4(base)!
  if (bits === 0) return true
  const mask = bits === 32 ? 0xffffffff : (~((1 << (32 - bits)) - 1)) >>> 0
  return ((a & mask) >>> 0) === ((b & mask) >>> 0)
}

export const classifyIPv4 = (a: number): AddressClass => {
  if (inV4(a, "0.0.0.0", 8)) return "unspecified" // "this network"; 0.0.0.0 itself
  if (inV4(a, "127.0.0.0", 8)) return "loopback"
  if (inV4(a, "10.0.0.0", 8) || inV4(a, "172.16.0.0", 12) || inV4(a, "192.168.0.0", 16)) return "private"
  if (inV4(a, "169.254.0.0", 16)) return "link-local"
  if (inV4(a, "100.64.0.0", 10)) return "cgnat"
  if (inV4(a, "224.0.0.0", 4)) return "multicast"
  if (
    inV4(a, "240.0.0.0", 4) || // reserved + 255.255.255.255 broadcast
    inV4(a, "192.0.0.0", 24) || // IETF protocol assignments
    inV4(a, "192.0.2.0", 24) || inV4(a, "198.51.100.0", 24) || inV4(a, "203.0.113.0", 24) || // documentation
    inV4(a, "198.18.0.0", 15) // benchmarking
  ) return "reserved"
  return "public"
}

const v4FromGroups = (hi: number, lo: number): number => ((hi << 16) >>> 0) + lo

export const classifyIPv6 = (g: ReadonlyArray<number>): AddressClass => {
  const zeroUpTo = (n: number): boolean => g.slice(0, n).every((x) => x === 0)
  if (zeroUpTo(8)) return "unspecified"
  if (zeroUpTo(7) && g[7] === 1) return "loopback"
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible)
  if (zeroUpTo(5) && (g[5] === 0xffff || g[5] === 0)) return classifyIPv4(v4FromGroups(g[6], g[7]))
  // 64:ff9b::/96 NAT64
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return classifyIPv4(v4FromGroups(g[6], g[7]))
  // 2002::/16 6to4 embeds the IPv4 in groups 1-2
  if (g[0] === 0x2002) return classifyIPv4(v4FromGroups(g[1], g[2]))
  if ((g[0] & 0xfe00) === 0xfc00) return "private" // fc00::/7 unique local
  if ((g[0] & 0xffc0) === 0xfe80) return "link-local" // fe80::/10
  if ((g[0] & 0xffc0) === 0xfec0) return "private" // fec0::/10 deprecated site-local
  if ((g[0] & 0xff00) === 0xff00) return "multicast"
  if (g[0] === 0x2001 && g[1] === 0x0db8) return "reserved" // documentation
  if (g[0] === 0x0100 && g.slice(1, 4).every((x) => x === 0)) return "reserved" // discard-only 100::/64
  return "public"
}

/** Classify a textual IP address; undefined when it is not an IP address. */
export const classify = (ip: string): AddressClass | undefined => {
  const v4 = parseIPv4(ip)
  if (v4 !== undefined) return classifyIPv4(v4)
  const v6 = parseIPv6(ip)
  return v6 === undefined ? undefined : classifyIPv6(v6)
}

/** Canonical text of an IP address (IPv4 dotted, IPv6 lower-case fully expanded), for comparisons. */
export const canonicalIp = (ip: string): string | undefined => {
  const v4 = parseIPv4(ip)
  if (v4 !== undefined) return [v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255].join(".")
  const v6 = parseIPv6(ip)
  return v6 === undefined ? undefined : v6.map((x) => x.toString(16)).join(":")
}
