/**
 * Security suite, net.fetch: userinfo is never recorded (issue 11), and the host normaliser removes
 * one trailing dot only (issue 16: `a..` must not match `a`).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as EventLog from "../../src/EventLog.js"
import * as Gateway from "../../src/Gateway.js"
import * as Handlers from "../../src/Handlers.js"
import * as Live from "../../src/Live.js"
import { redactUrl } from "../../src/live/Userinfo.js"
import { compileAllowlist, hostAllowed, hostOf, normaliseHost } from "../../src/live/Url.js"
import * as NetTape from "../../src/NetTape.js"
import * as Replay from "../../src/Replay.js"
import { parsePolicy, type Policy } from "../../src/Policy.js"
import { server } from "../support/LoopbackServer.js"

const policy: Policy = Either.getOrThrow(
  parsePolicy(JSON.stringify({ default_allow: true, net_policy: { allowed_domains: ["127.0.0.1"] } }))
)

const gateway = (handlers: Layer.Layer<Handlers.Handlers, unknown>) =>
  Gateway.layer(policy).pipe(Layer.provideMerge(Layer.merge(Layer.orDie(handlers), EventLog.memory)))

describe("security: net.fetch hosts", () => {
  it("one trailing dot is removed, never more: 'a..' does not match 'a'", () => {
    const c = compileAllowlist(["example.com", "*.example.org"])
    if (!c.ok) throw new Error(c.problems.join())
    const allowed = (u: string) => hostAllowed(c.allowlist, hostOf(new URL(u)))
    expect(allowed("http://example.com./")).toBe(true)
    expect(hostOf(new URL("http://example.com../"))).toBe("example.com.")
    expect(allowed("http://example.com../")).toBe(false)
    expect(allowed("http://example.com.../")).toBe(false)
    expect(allowed("http://x.example.org../")).toBe(false)
    expect(allowed("http://x.example.org./")).toBe(true)
    expect(normaliseHost("example.com..")).toBe("example.com.")
    expect(normaliseHost("example.com.")).toBe("example.com")
  })
})

describe("security: userinfo is never recorded", () => {
  it("redactUrl replaces the userinfo WHATWG would read, whatever the spelling", () => {
    expect(redactUrl("https://user:pw@host/x?q=a@b")).toBe("https://REDACTED@host/x?q=a@b")
    expect(redactUrl("http://a@b@127.0.0.1/")).toBe("http://REDACTED@127.0.0.1/")
    expect(redactUrl("http:user:pw@host/")).toBe("http://REDACTED@host/")
    expect(redactUrl("http://us\ner:p\tw@host/")).toBe("http://REDACTED@host/")
    expect(redactUrl("https://:pw@host/")).toBe("https://REDACTED@host/")
    expect(redactUrl("https://user:pw@[bad/")).toBe("https://REDACTED@[bad/") // unparsable: redacted on the raw text
    const plain = "https://host/p@th"
    expect(redactUrl(plain)).toBe(plain)
  })

  it.effect("the --record-net-to tape holds the redacted URL, and replay matches on it", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-sec-tape-"))
      const file = join(dir, "tape.json")
      const { base, sent } = yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* server((req, _body, res) => {
            res.writeHead(200, { "content-type": "text/plain" })
            res.end(`auth=${req.headers.authorization ?? "none"}`)
          })
          const url = o.origin.replace("http://", "http://user:hunter2@")
          const r = yield* Effect.provide(
            Gateway.call("net.fetch", [url + "/a"]),
            gateway(NetTape.recordLayer(file).pipe(Layer.provide(Live.layer(policy))))
          )
          return { base: o.origin, sent: r }
        })
      )
      expect(sent).toBe("auth=none") // never sent
      const text = readFileSync(file, "utf8")
      expect(text).not.toContain("hunter2")
      expect(text).not.toContain("user:")
      expect(JSON.parse(text).transactions[0].url).toBe(base.replace("http://", "http://REDACTED@") + "/a")
      // replay: the program's credentialed URL (any password) finds the redacted transaction
      const replayed = yield* Effect.provide(
        Gateway.call("net.fetch", [base.replace("http://", "http://user:other@") + "/a"]),
        gateway(NetTape.replayLayer(file).pipe(Layer.provide(Live.layer(policy))))
      )
      expect(replayed).toBe("auth=none")
      const miss = yield* Effect.flip(Effect.provide(
        Gateway.call("net.fetch", [base.replace("http://", "http://user:hunter2@") + "/b"]),
        gateway(NetTape.replayLayer(file).pipe(Layer.provide(Live.layer(policy))))
      ))
      expect(miss.message).toContain(`has no transaction left for GET ${base.replace("http://", "http://REDACTED@")}/b`)
      expect(miss.message).not.toContain("hunter2")
      rmSync(dir, { recursive: true, force: true })
    }))

  it.effect("the event log holds the redacted URL, and replaying that log matches the credentialed call", () =>
    Effect.gen(function*() {
      const { events, url } = yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* server((_req, _body, res) => {
            res.writeHead(200, { "content-type": "text/plain" })
            res.end("ok")
          })
          const url = o.origin.replace("http://", "http://user:hunter2@") + "/p"
          const events = yield* Effect.provide(
            Effect.zipRight(Gateway.call("net.fetch", ["GET", url, ""]), EventLog.EventLog.pipe(Effect.map((l) => l.events()))),
            gateway(Live.layer(policy))
          )
          return { events, url }
        })
      )
      const text = JSON.stringify(events)
      expect(text).not.toContain("hunter2")
      const call = events.find((e) => e.type === "CapCall")
      expect(call?.type === "CapCall" && call.args[1]).toBe(url.replace("user:hunter2@", "REDACTED@"))
      // a denied call's CapRefused is redacted too
      const refused = yield* Effect.provide(
        Effect.zipRight(Effect.either(Gateway.call("net.fetch", [url])), EventLog.EventLog.pipe(Effect.map((l) => l.events()))),
        Gateway.layer({ ...policy, default_allow: false }).pipe(Layer.provideMerge(Layer.merge(Layer.orDie(Live.layer(policy)), EventLog.memory)))
      )
      expect(JSON.stringify(refused)).not.toContain("hunter2")
      expect(JSON.stringify(refused)).toContain("REDACTED@")
      // replay: the program makes the same credentialed call; it matches the recorded, redacted one
      const verdict = yield* Effect.provide(
        Effect.zipRight(Gateway.call("net.fetch", ["GET", url, ""]), Replay.verdict),
        Replay.runtime(events, { policy })
      )
      expect(verdict).toEqual({ _tag: "Identical", events: events.length })
    }))

  it.effect("the demo handler's echo of a URL with credentials (what a recorded demo run logs as the result) does not carry them", () =>
    Effect.gen(function*() {
      const echo = yield* Gateway.call("net.fetch", ["https://user:hunter2@example.com/a"])
      expect(echo).toBe('{"mock": true, "url": "https://REDACTED@example.com/a"}')
      const log = yield* EventLog.EventLog
      expect(JSON.stringify(log.events())).not.toContain("hunter2")
    }).pipe(Effect.provide(gateway(Layer.succeed(Handlers.Handlers, Handlers.demoService)))))

  it.effect("an invalid URL's error message (a recorded CapError) does not carry its credentials", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Gateway.call("net.fetch", ["http://user:hunter2@[bad/"]))
      expect(e.message).toBe("net.fetch failed: invalid URL 'http://REDACTED@[bad/'")
      const log = yield* EventLog.EventLog
      expect(JSON.stringify(log.events())).not.toContain("hunter2")
    }).pipe(Effect.provide(gateway(Live.layer(policy)))))
})
