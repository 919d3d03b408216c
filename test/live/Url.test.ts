import { describe, expect, it } from "@effect/vitest"
import { canonicalIp, classify } from "../../src/live/Address.js"
import { addressNamed, compileAllowlist, hostAllowed, hostOf, normaliseHost } from "../../src/live/Url.js"

const allow = (entries: ReadonlyArray<string>) => {
  const c = compileAllowlist(entries)
  if (!c.ok) throw new Error(c.problems.join("; "))
  return c.allowlist
}

describe("host normalisation", () => {
  it("URL hosts: case, trailing dot, userinfo, IDNA, numeric IPv4 spellings, IPv6", () => {
    const h = (u: string) => hostOf(new URL(u))
    expect(h("http://EXAMPLE.com./x")).toBe("example.com")
    expect(h("http://user:pw@Example.COM/")).toBe("example.com")
    expect(h("http://allowed.example@evil.example/")).toBe("evil.example")
    expect(h("http://bücher.de/")).toBe("xn--bcher-kva.de")
    for (const spelling of ["2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001", "127.0.0.1."]) {
      expect(h(`http://${spelling}/`)).toBe("127.0.0.1")
    }
    expect(h("http://[0:0:0:0:0:0:0:1]/")).toBe("[::1]")
  })

  it("allowlist entries normalise the same way, and bad entries are reported", () => {
    expect(normaliseHost("Bücher.DE.")).toBe("xn--bcher-kva.de")
    expect(normaliseHost("2130706433")).toBe("127.0.0.1")
    expect(normaliseHost("::1")).toBe("[::1]")
    expect(normaliseHost("[::1]")).toBe("[::1]")
    for (const bad of ["", "a b", "http://x", "x/y", "u@x", "x:80"]) expect(normaliseHost(bad)).toBeUndefined()
    const c = compileAllowlist(["ok.example", "*.", "x:80"])
    expect(c.ok).toBe(false)
    if (!c.ok) expect(c.problems).toHaveLength(2)
  })

  it("exact and *.suffix matching; suffixes never match IP literals; empty list matches any host", () => {
    const a = allow(["api.example.com", "*.Trusted.ORG", "xn--bcher-kva.de"])
    expect(hostAllowed(a, "api.example.com")).toBe(true)
    expect(hostAllowed(a, "www.example.com")).toBe(false)
    expect(hostAllowed(a, "trusted.org")).toBe(true)
    expect(hostAllowed(a, "a.b.trusted.org")).toBe(true)
    expect(hostAllowed(a, "eviltrusted.org")).toBe(false)
    expect(hostAllowed(a, "trusted.org.evil.com")).toBe(false)
    expect(hostAllowed(a, hostOf(new URL("http://BÜCHER.de./")))).toBe(true)
    // a numeric suffix would be an IPv4 address: refused as an entry
    expect(compileAllowlist(["*.0.1"]).ok).toBe(false)
    expect(hostAllowed(allow(["*.example", "localhost"]), "127.0.0.1")).toBe(false)
    expect(hostAllowed(allow([]), "anything.example")).toBe(true)
  })

  it("only address entries name non-public addresses, in any spelling", () => {
    const a = allow(["0x7f.1", "::1", "localhost"])
    expect(addressNamed(a, "127.0.0.1")).toBe(true)
    expect(addressNamed(a, "0:0:0:0:0:0:0:1")).toBe(true)
    expect(addressNamed(a, "127.0.0.2")).toBe(false)
    expect(addressNamed(allow(["*.example.com"]), "127.0.0.1")).toBe(false)
  })
})

describe("address classification", () => {
  it("IPv4 ranges", () => {
    const cases: Record<string, string> = {
      "127.0.0.1": "loopback",
      "127.255.255.254": "loopback",
      "10.1.2.3": "private",
      "172.16.0.1": "private",
      "172.31.255.255": "private",
      "172.32.0.1": "public",
      "192.168.1.1": "private",
      "169.254.169.254": "link-local",
      "100.64.0.1": "cgnat",
      "100.127.255.255": "cgnat",
      "100.128.0.1": "public",
      "0.0.0.0": "unspecified",
      "224.0.0.1": "multicast",
      "255.255.255.255": "reserved",
      "8.8.8.8": "public",
      "93.184.216.34": "public"
    }
    for (const [ip, c] of Object.entries(cases)) expect([ip, classify(ip)]).toEqual([ip, c])
  })

  it("IPv6 ranges, including IPv4 embedded in mapped, NAT64 and 6to4 addresses", () => {
    const cases: Record<string, string> = {
      "::1": "loopback",
      "::": "unspecified",
      "fe80::1": "link-local",
      "fd00::1": "private",
      "fc00::1": "private",
      "ff02::1": "multicast",
      "::ffff:127.0.0.1": "loopback",
      "::ffff:7f00:1": "loopback",
      "::ffff:10.0.0.1": "private",
      "::ffff:8.8.8.8": "public",
      "64:ff9b::a9fe:a9fe": "link-local",
      "2002:c0a8:0101::1": "private",
      "2606:4700::1111": "public",
      "[::1]": "loopback",
      "fe80::1%eth0": "link-local"
    }
    for (const [ip, c] of Object.entries(cases)) expect([ip, classify(ip)]).toEqual([ip, c])
    expect(classify("example.com")).toBeUndefined()
    expect(canonicalIp("::1")).toBe(canonicalIp("0:0:0:0:0:0:0:1"))
  })
})
