/**
 * URL and host normalisation for live `net.fetch`, and the compiled `net_policy.allowed_domains`.
 *
 * Hosts are compared in one canonical form on both sides (the URL a program asks for and every
 * allowlist entry): the WHATWG URL parser's host (lower-case, IDNA → punycode, every numeric IPv4
 * spelling such as `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` → dotted quad, IPv6 compressed in
 * brackets, userinfo split off), then one trailing dot removed.
 */
import { canonicalIp, classify } from "./Address.js"

/** Canonical host of a parsed URL (`[::1]` keeps its brackets; `example.com.` → `example.com`). */
export const hostOf = (url: URL): string => (url.hostname.endsWith(".") ? url.hostname.slice(0, -1) : url.hostname)

/** The IP address a canonical host denotes, without brackets; undefined for a domain name. */
export const ipOfHost = (host: string): string | undefined => {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
  return classify(bare) === undefined ? undefined : bare
}

/** Normalise one allowlist host (no wildcard) the way URLs are normalised; undefined when invalid. */
export const normaliseHost = (raw: string): string | undefined => {
  const t = raw.trim()
  if (t === "" || /[\s/@?#\\]/.test(t)) return undefined
  // a bare IPv6 literal needs brackets to parse as a host
  const asHost = t.includes(":") && !t.startsWith("[") ? `[${t}]` : t
  let url: URL
  try {
    url = new URL(`http://${asHost}/`)
  } catch {
    return undefined
  }
  if (url.port !== "" || url.username !== "" || url.password !== "") return undefined
  const h = hostOf(url)
  return h === "" ? undefined : h
}

export interface Allowlist {
  /** true when `allowed_domains` is empty: any host whose addresses are all public */
  readonly any: boolean
  readonly exact: ReadonlySet<string>
  /** normalised suffixes of `*.suffix` entries */
  readonly suffixes: ReadonlyArray<string>
  /** canonical IPs of entries that are IP literals: the only non-public addresses ever reachable */
  readonly addresses: ReadonlySet<string>
  /** the entries as written, for messages */
  readonly written: ReadonlyArray<string>
}

/** Compile `allowed_domains`; `Left`-style result: a list of problems naming each bad entry. */
export const compileAllowlist = (
  entries: ReadonlyArray<string>
): { readonly ok: true; readonly allowlist: Allowlist } | { readonly ok: false; readonly problems: ReadonlyArray<string> } => {
  const exact = new Set<string>()
  const suffixes: Array<string> = []
  const addresses = new Set<string>()
  const problems: Array<string> = []
  entries.forEach((e, i) => {
    if (e.startsWith("*.")) {
      const s = normaliseHost(e.slice(2))
      if (s === undefined || ipOfHost(s) !== undefined) {
        problems.push(`net_policy.allowed_domains[${i}]: '${e}' is not a valid '*.suffix' entry`)
      } else suffixes.push(s)
      return
    }
    const h = normaliseHost(e)
    if (h === undefined) {
      problems.push(`net_policy.allowed_domains[${i}]: '${e}' is not a valid host (write a host name, an IP address or '*.suffix')`)
      return
    }
    exact.add(h)
    const ip = ipOfHost(h)
    if (ip !== undefined) addresses.add(canonicalIp(ip)!)
  })
  return problems.length > 0
    ? { ok: false, problems }
    : { ok: true, allowlist: { any: entries.length === 0, exact, suffixes, addresses, written: entries } }
}

/** Whether a canonical host passes the allowlist (suffix entries never match an IP literal). */
export const hostAllowed = (a: Allowlist, host: string): boolean => {
  if (a.any || a.exact.has(host)) return true
  if (ipOfHost(host) !== undefined) return false
  return a.suffixes.some((s) => host === s || host.endsWith("." + s))
}

/** Whether the allowlist names this (non-public) address itself. */
export const addressNamed = (a: Allowlist, ip: string): boolean => {
  const c = canonicalIp(ip)
  return c !== undefined && a.addresses.has(c)
}
