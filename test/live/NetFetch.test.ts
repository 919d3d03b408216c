import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Http from "node:http"
import * as Gateway from "../../src/Gateway.js"
import * as Live from "../../src/Live.js"
import type { ResolvedAddress } from "../../src/live/Egress.js"
import type { NetPolicy, Policy } from "../../src/Policy.js"
import { allSpans, capSpans, dump, events, server, setup } from "./support.js"

const netPolicy = (net: Partial<NetPolicy>): Policy => ({
  schema_version: 1,
  default_allow: false,
  rules: { "net.fetch": { allow: true, budget: 0 } },
  net_policy: {
    allowed_domains: [],
    allowed_methods: [],
    max_response_bytes: 10 * 1024 * 1024,
    timeout_ms: 5_000,
    allow_redirects: true,
    ...net
  }
})

/** The loopback origin every test talks to. */
const origin = server((req: Http.IncomingMessage, body: string, res: Http.ServerResponse) => {
  const path = (req.url ?? "/").split("?")[0]
  switch (path) {
    case "/ok":
      res.writeHead(200, { "content-type": "text/plain" }).end("hello")
      return
    case "/echo":
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({ method: req.method, body, host: req.headers.host, ct: req.headers["content-type"] ?? null, auth: req.headers.authorization ?? null })
      )
      return
    case "/redirect-same":
      res.writeHead(302, { location: "/ok" }).end()
      return
    case "/redirect-evil":
      res.writeHead(302, { location: "http://evil.example/steal" }).end()
      return
    case "/redirect-loopback-spelling":
      // another spelling of the same (named) address: allowed after normalisation
      res.writeHead(301, { location: `http://0x7f.1:${req.socket.localPort}/ok` }).end()
      return
    case "/post-303":
      res.writeHead(303, { location: "/echo" }).end()
      return
    case "/big-chunked": {
      res.writeHead(200, { "content-type": "text/plain" })
      for (let i = 0; i < 10; i++) res.write("x".repeat(500))
      res.end()
      return
    }
    case "/big-declared":
      res.writeHead(200, { "content-type": "text/plain", "content-length": "5000" }).end("y".repeat(5000))
      return
    case "/slow": {
      const t = setTimeout(() => res.writeHead(200).end("late"), 3_000)
      t.unref()
      return
    }
    case "/missing":
      res.writeHead(404).end("no such thing")
      return
    case "/latin1":
      res.writeHead(200).end(Buffer.from([0xff, 0xfe, 0x41]))
      return
    default:
      res.writeHead(500).end()
  }
})

/** A fixed resolver that records the names it was asked for. */
const fakeResolver = (table: Record<string, ReadonlyArray<ResolvedAddress>>) => {
  const asked: Array<string> = []
  const resolve = async (host: string) => {
    asked.push(host)
    const r = table[host]
    if (r === undefined) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" })
    return r
  }
  return { asked, resolve }
}

/** Run `f` against the origin with the live gateway under `policy`. */
const withOrigin = <A, E>(
  policy: Policy,
  f: (o: { port: number; origin: string; requests: ReadonlyArray<{ method: string; url: string; body: string; headers: Http.IncomingHttpHeaders }> }) => Effect.Effect<A, E, Gateway.Gateway | import("../../src/Telemetry.js").SpanRecorder | import("../../src/EventLog.js").EventLog>,
  options: Live.LiveOptions = {}
) =>
  Effect.flatMap(origin, (o) => Effect.provide(f(o), setup(policy, options)))

const hopEvents = Effect.map(capSpans, (spans) => spans.flatMap((s) => s.events.filter((e) => e.name === "net.hop").map((e) => e.attributes)))

describe("live net.fetch", () => {
  it.scopedLive("an allowed host: the body comes back; the span is ok with one allow hop naming the checked address", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"] }), (o) =>
      Effect.gen(function*() {
        const out = yield* Gateway.call("net.fetch", [`${o.origin}/ok`])
        expect(out).toBe("hello")
        const [span] = yield* capSpans
        expect(span.status).toBe("ok")
        expect(span.attributes["cap.name"]).toBe("net.fetch")
        expect(span.attributes["error.kind"]).toBeUndefined()
        expect(span.attributes["bytes_out"]).toBe(5)
        expect(span.attributes["http.request.method"]).toBe("GET")
        expect(yield* hopEvents).toEqual([
          {
            "net.hop": 0,
            "net.decision": "allow",
            "net.scheme": "http",
            "net.host": "127.0.0.1",
            "net.port": o.port,
            "net.address": "127.0.0.1",
            "net.address_class": "loopback"
          }
        ])
        // the platform HTTP client adds no span of its own (no URL or header attributes anywhere)
        expect((yield* allSpans).map((s) => s.name)).toEqual(["boruna.cap"])
        expect(o.requests[0].headers["traceparent"]).toBeUndefined()
      })))

  it.scopedLive("loopback is refused when the allowlist does not name it (empty list, wildcard, or only the name)", () =>
    Effect.gen(function*() {
      const o = yield* origin
      for (const domains of [[], ["*.example.com", "127.0.0.2"]]) {
        const e = yield* Effect.flip(Gateway.call("net.fetch", [`${o.origin}/ok`])).pipe(
          Effect.provide(setup(netPolicy({ allowed_domains: domains })))
        )
        if (domains.length === 0) {
          expect(e._tag).toBe("Denied")
          expect(e.message).toContain("loopback address 127.0.0.1 refused")
        } else {
          expect(e._tag).toBe("Denied")
          expect(e.message).toContain("not in net_policy.allowed_domains")
        }
      }
      // a name that resolves to loopback: the name is allowed, the address is not named
      const dns = fakeResolver({ "localhost": [{ address: "127.0.0.1", family: 4 }] })
      yield* Effect.gen(function*() {
        const e = yield* Effect.flip(Gateway.call("net.fetch", [`http://localhost:${o.port}/ok`]))
        expect(e._tag).toBe("Denied")
        expect(e.message).toContain("loopback address 127.0.0.1 (resolved from 'localhost') refused")
        const [span] = yield* capSpans
        expect(span.attributes["error.kind"]).toBe("denied")
        expect(span.events.map((ev) => [ev.attributes["net.decision"], ev.attributes["net.reason"]])).toEqual([["deny", "address refused"]])
      }).pipe(Effect.provide(setup(netPolicy({ allowed_domains: ["localhost"] }), { resolve: dns.resolve })))
      expect(o.requests).toHaveLength(0)
    }))

  it.scopedLive("numeric IPv4 spellings normalise to the named address: 2130706433, 0x7f.1, 0177.0.0.1, 127.1", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"] }), (o) =>
      Effect.gen(function*() {
        for (const host of ["2130706433", "0x7f.1", "0177.0.0.1", "127.1"]) {
          expect(yield* Gateway.call("net.fetch", [`http://${host}:${o.port}/ok`])).toBe("hello")
        }
        expect((yield* hopEvents).map((e) => e["net.host"])).toEqual(["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"])
      })))

  it.scopedLive("the same spellings are refused when 127.0.0.1 is not named", () =>
    withOrigin(netPolicy({ allowed_domains: [] }), (o) =>
      Effect.gen(function*() {
        for (const host of ["2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0", "[::1]"]) {
          const e = yield* Effect.flip(Gateway.call("net.fetch", [`http://${host}:${o.port}/ok`]))
          expect(e._tag).toBe("Denied")
        }
        expect((yield* capSpans).map((s) => s.attributes["error.kind"])).toEqual(Array(6).fill("denied"))
        expect(o.requests).toHaveLength(0)
      })))

  it.scopedLive("a redirect to a disallowed host is denied at that hop; both decisions are span events", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"] }), (o) =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(Gateway.call("net.fetch", [`${o.origin}/redirect-evil`]))
        expect(e._tag).toBe("Denied")
        expect(e.message).toContain("host 'evil.example' is not in net_policy.allowed_domains")
        const [span] = yield* capSpans
        expect(span.attributes["error.kind"]).toBe("denied")
        expect(span.status).toBe("error")
        expect(span.events.map((ev) => [ev.attributes["net.hop"], ev.attributes["net.decision"], ev.attributes["net.host"]])).toEqual([
          [0, "allow", "127.0.0.1"],
          [1, "deny", "evil.example"]
        ])
        // the decision leaves no path or query of the URL on the span
        expect(JSON.stringify(span.events)).not.toContain("steal")
        expect((yield* events).map((ev) => ev.type)).toEqual(["CapCall", "CapError"])
      })))

  it.scopedLive("an allowed redirect is followed (relative Location, and another spelling of the named address)", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"] }), (o) =>
      Effect.gen(function*() {
        expect(yield* Gateway.call("net.fetch", [`${o.origin}/redirect-same`])).toBe("hello")
        expect(yield* Gateway.call("net.fetch", [`${o.origin}/redirect-loopback-spelling`])).toBe("hello")
        const spans = yield* capSpans
        expect(spans.map((s) => s.events.length)).toEqual([2, 2])
        expect(spans.map((s) => s.attributes["http.response.hops"])).toEqual([2, 2])
        expect(o.requests.map((r) => r.url)).toEqual(["/redirect-same", "/ok", "/redirect-loopback-spelling", "/ok"])
      })))

  it.scopedLive("allow_redirects=false: a redirect is denied and not followed", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"], allow_redirects: false }), (o) =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(Gateway.call("net.fetch", [`${o.origin}/redirect-same`]))
        expect(e._tag).toBe("Denied")
        expect(e.message).toContain("allow_redirects is false")
        expect(o.requests.map((r) => r.url)).toEqual(["/redirect-same"])
        const [span] = yield* capSpans
        expect(span.attributes["error.kind"]).toBe("denied")
      })))

  it.scopedLive("an oversized body is an error (streamed and stopped, and by content-length), not a truncated value", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"], max_response_bytes: 1_000 }), (o) =>
      Effect.gen(function*() {
        const a = yield* Effect.flip(Gateway.call("net.fetch", [`${o.origin}/big-chunked`]))
        expect(a._tag).toBe("RuntimeError")
        expect(a.message).toContain("exceeds max_response_bytes (1000 bytes")
        const b = yield* Effect.flip(Gateway.call("net.fetch", [`${o.origin}/big-declared`]))
        expect(b._tag).toBe("RuntimeError")
        expect(b.message).toContain("content-length 5000")
        expect(yield* Gateway.call("net.fetch", [`${o.origin}/ok`])).toBe("hello")
        const spans = yield* capSpans
        expect(spans.map((s) => s.attributes["error.kind"])).toEqual(["runtime_error", "runtime_error", undefined])
        expect(spans[0].attributes["bytes_out"]).toBeUndefined()
      })))

  it.scopedLive("a response slower than timeout_ms is a runtime_error (the request is abandoned, not awaited)", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"], timeout_ms: 200 }), (o) =>
      Effect.gen(function*() {
        // the server answers only after 3 s: waiting for it would give "late", not this error
        const e = yield* Effect.flip(Gateway.call("net.fetch", [`${o.origin}/slow`]))
        expect(e._tag).toBe("RuntimeError")
        expect(e.message).toBe("net.fetch failed: timed out after 200 ms (net_policy.timeout_ms)")
        const [span] = yield* capSpans
        expect(span.attributes["error.kind"]).toBe("runtime_error")
      })))

  it.scopedLive("a non-2xx status is a runtime_error naming the status; non-UTF-8 bodies are refused", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"] }), (o) =>
      Effect.gen(function*() {
        const e = yield* Effect.flip(Gateway.call("net.fetch", [`${o.origin}/missing`]))
        expect(e._tag).toBe("RuntimeError")
        expect(e.message).toBe(`net.fetch failed: HTTP 404 from ${o.origin}`)
        const u = yield* Effect.flip(Gateway.call("net.fetch", [`${o.origin}/latin1`]))
        expect(u.message).toContain("not valid UTF-8")
        const spans = yield* capSpans
        expect(spans.map((s) => s.attributes["error.kind"])).toEqual(["runtime_error", "runtime_error"])
        const log = yield* events
        expect(log[1]).toEqual({ type: "CapError", capability: "net.fetch", kind: "runtime_error", message: e.message })
      })))

  it.scopedLive("a refused connection is a runtime_error with the errno code", () =>
    Effect.gen(function*() {
      // a port that was just in use and is now closed
      const port = yield* Effect.scoped(Effect.map(origin, (o) => o.port))
      const e = yield* Effect.flip(Gateway.call("net.fetch", [`http://127.0.0.1:${port}/ok`])).pipe(
        Effect.provide(setup(netPolicy({ allowed_domains: ["127.0.0.1"] })))
      )
      expect(e._tag).toBe("RuntimeError")
      expect(e.message).toBe(`net.fetch failed: request to http://127.0.0.1:${port} failed: ECONNREFUSED`)
    }))

  it.scopedLive("non-http(s) schemes are denied; a malformed URL is a runtime_error", () =>
    withOrigin(netPolicy({}), () =>
      Effect.gen(function*() {
        for (const u of ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:70/", "data:text/plain,hi"]) {
          const e = yield* Effect.flip(Gateway.call("net.fetch", [u]))
          expect(e._tag).toBe("Denied")
          expect(e.message).toContain("is not allowed (http and https only)")
        }
        const bad = yield* Effect.flip(Gateway.call("net.fetch", ["not a url"]))
        expect(bad._tag).toBe("RuntimeError")
        expect(bad.message).toContain("invalid URL 'not a url'")
        expect((yield* capSpans).map((s) => s.attributes["error.kind"])).toEqual([...Array(4).fill("denied"), "runtime_error"])
      })))

  it.scopedLive("methods: allowed_methods is enforced; POST sends its body; 303 continues as GET", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"], allowed_methods: ["GET", "POST"] }), (o) =>
      Effect.gen(function*() {
        const denied = yield* Effect.flip(Gateway.call("net.fetch", ["DELETE", `${o.origin}/echo`, ""]))
        expect(denied._tag).toBe("Denied")
        expect(denied.message).toContain("method DELETE is not in net_policy.allowed_methods")
        const posted = yield* Gateway.call("net.fetch", ["post", `${o.origin}/echo`, `{"a":1}`])
        expect(JSON.parse(posted as string)).toEqual({ method: "POST", body: `{"a":1}`, host: `127.0.0.1:${o.port}`, ct: "application/json", auth: null })
        const text = yield* Gateway.call("net.fetch", ["POST", `${o.origin}/echo`, "plain words"])
        expect(JSON.parse(text as string).ct).toBe("text/plain; charset=utf-8")
        const after303 = yield* Gateway.call("net.fetch", ["POST", `${o.origin}/post-303`, "x"])
        expect(JSON.parse(after303 as string)).toMatchObject({ method: "GET", body: "" })
        const bad = yield* Effect.flip(Gateway.call("net.fetch", ["BREW", `${o.origin}/echo`, ""]))
        expect(bad._tag).toBe("RuntimeError")
        expect(bad.message).toContain("unsupported HTTP method 'BREW'")
        expect(o.requests.filter((r) => r.method === "DELETE")).toHaveLength(0)
      })))

  it.scopedLive("userinfo is not the host and is never sent", () =>
    withOrigin(netPolicy({ allowed_domains: ["127.0.0.1"] }), (o) =>
      Effect.gen(function*() {
        const out = yield* Gateway.call("net.fetch", [`http://evil.example:secret@127.0.0.1:${o.port}/echo`])
        expect(JSON.parse(out as string).auth).toBeNull()
        const [span] = yield* capSpans
        expect(dump(span)).not.toContain("secret")
        // and a userinfo that looks like the allowed host does not make another host allowed
        const e = yield* Effect.flip(Gateway.call("net.fetch", [`http://127.0.0.1@evil.example/`]))
        expect(e._tag).toBe("Denied")
        expect(e.message).toContain("host 'evil.example'")
      })))

  it.scopedLive("DNS is resolved once and the connection goes to the checked address (no second lookup)", () =>
    Effect.gen(function*() {
      const o = yield* origin
      // `pinned.test` exists only in this resolver: a second (system) lookup would fail
      const dns = fakeResolver({ "pinned.test": [{ address: "127.0.0.1", family: 4 }] })
      const out = yield* Gateway.call("net.fetch", [`http://PINNED.test.:${o.port}/echo`]).pipe(
        Effect.provide(setup(netPolicy({ allowed_domains: ["pinned.test", "127.0.0.1"] }), { resolve: dns.resolve }))
      )
      expect(JSON.parse(out as string).host).toBe(`pinned.test.:${o.port}`)
      expect(dns.asked).toEqual(["pinned.test"])
    }))

  it.scopedLive("https uses the same pinned connection: the TLS handshake reaches the checked address (no lookup of the name)", () =>
    Effect.gen(function*() {
      const o = yield* origin
      const dns = fakeResolver({ "tls.test": [{ address: "127.0.0.1", family: 4 }] })
      // the origin speaks plain HTTP, so the handshake fails there; a second lookup would fail with ENOTFOUND instead
      const e = yield* Effect.flip(Gateway.call("net.fetch", [`https://tls.test:${o.port}/ok`])).pipe(
        Effect.provide(setup(netPolicy({ allowed_domains: ["tls.test", "127.0.0.1"] }), { resolve: dns.resolve }))
      )
      expect(e._tag).toBe("RuntimeError")
      expect(e.message).toMatch(/^net\.fetch failed: request to https:\/\/tls\.test:\d+ failed: (EPROTO|ERR_SSL_\w+|ECONNRESET)$/)
      expect(e.message).not.toContain("ENOTFOUND")
      expect(dns.asked).toEqual(["tls.test"])
    }))

  it.scopedLive("DNS rebinding: a name resolving to a public and a loopback address is refused before any connection", () =>
    Effect.gen(function*() {
      const o = yield* origin
      const dns = fakeResolver({
        "rebind.test": [{ address: "93.184.216.34", family: 4 }, { address: "127.0.0.1", family: 4 }],
        "mapped.test": [{ address: "::ffff:10.0.0.1", family: 6 }]
      })
      yield* Effect.gen(function*() {
        const a = yield* Effect.flip(Gateway.call("net.fetch", [`http://rebind.test:${o.port}/ok`]))
        expect(a._tag).toBe("Denied")
        expect(a.message).toContain("loopback address 127.0.0.1 (resolved from 'rebind.test') refused")
        const b = yield* Effect.flip(Gateway.call("net.fetch", [`http://mapped.test:${o.port}/ok`]))
        expect(b.message).toContain("private address ::ffff:10.0.0.1")
        const c = yield* Effect.flip(Gateway.call("net.fetch", [`http://nowhere.test:${o.port}/ok`]))
        expect(c._tag).toBe("RuntimeError")
        expect(c.message).toBe("net.fetch failed: DNS lookup of 'nowhere.test' failed: ENOTFOUND")
        expect((yield* capSpans).map((s) => s.attributes["error.kind"])).toEqual(["denied", "denied", "runtime_error"])
      }).pipe(Effect.provide(setup(netPolicy({ allowed_domains: ["*.test"] }), { resolve: dns.resolve })))
      expect(o.requests).toHaveLength(0)
    }))

  it.effect("an invalid allowlist entry fails the live layer with LiveConfigError naming the entry", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(Live.layer(netPolicy({ allowed_domains: ["ok.example", "https://x.example/path"] }))).pipe(Effect.scoped))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        expect(String(exit.cause)).toContain("net_policy.allowed_domains[1]: 'https://x.example/path' is not a valid host")
      }
    }))
})
