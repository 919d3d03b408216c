import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import * as Live from "../src/Live.js"
import * as NetTape from "../src/NetTape.js"
import { parsePolicy, type Policy } from "../src/Policy.js"
import { borunaInProcess } from "./support/InProcessCli.js"
import { server } from "./support/LoopbackServer.js"

const tmp = () => mkdtempSync(join(tmpdir(), "boruna-tape-"))

const policy: Policy = Either.getOrThrow(
  parsePolicy(JSON.stringify({ default_allow: true, net_policy: { allowed_domains: ["127.0.0.1"] } }))
)

/** An HTTP origin on 127.0.0.1 answering `METHOD path body#n` (n = requests so far); closed with the scope. */
const origin = Effect.suspend(() => {
  let n = 0
  return server((req, body, res) => {
    n++
    if (req.url === "/fail") {
      res.writeHead(500)
      return res.end("nope")
    }
    res.writeHead(200, { "content-type": "text/plain" })
    res.end(`${req.method} ${req.url} ${body}#${n}`)
  })
})

const gateway = (handlers: Layer.Layer<Handlers.Handlers, unknown>) =>
  Gateway.layer(policy).pipe(Layer.provideMerge(Layer.merge(Layer.orDie(handlers), EventLog.memory)))

const script = (base: string) =>
  Effect.all([
    Gateway.call("net.fetch", [`${base}/a`]),
    Gateway.call("net.fetch", ["post", `${base}/b`, `{"x":1}`]),
    Gateway.call("net.fetch", [`${base}/a`]),
    Effect.either(Gateway.call("net.fetch", [`${base}/fail`])),
    Gateway.call("time.now", [])
  ])

describe("NetTape", () => {
  it.effect("records live exchanges in the reference's tape format, then replays them with the origin closed", () =>
    Effect.gen(function*() {
      const file = join(tmp(), "tape.json")
      const { base, live } = yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* origin
          const live = yield* Effect.provide(script(o.origin), gateway(NetTape.recordLayer(file).pipe(Layer.provide(Live.layer(policy)))))
          expect(o.requests.length).toBe(4)
          return { base: o.origin, live }
        })
      )
      expect(live[0]).toBe("GET /a #1")
      expect(live[1]).toBe(`POST /b {"x":1}#2`)
      expect(live[2]).toBe("GET /a #3")
      const tape = JSON.parse(readFileSync(file, "utf8"))
      expect(tape).toEqual({
        format_version: 1,
        transactions: [
          { method: "GET", url: `${base}/a`, request_body: null, response_body: "GET /a #1" },
          { method: "POST", url: `${base}/b`, request_body: `{"x":1}`, response_body: `POST /b {"x":1}#2` },
          { method: "GET", url: `${base}/a`, request_body: null, response_body: "GET /a #3" }
        ]
      })
      // the failed call was not taped; replay answers the rest in order, identical requests consuming separate entries
      const replayed = yield* Effect.provide(
        Effect.all([
          Gateway.call("net.fetch", [`${base}/a`]),
          Gateway.call("net.fetch", ["POST", `${base}/b`, `{"x":1}`]),
          Gateway.call("net.fetch", [`${base}/a`]),
          Effect.either(Gateway.call("net.fetch", [`${base}/a`]))
        ]),
        gateway(NetTape.replayLayer(file).pipe(Layer.provide(Handlers.demo)))
      )
      expect(replayed.slice(0, 3)).toEqual(live.slice(0, 3))
      const exhausted = replayed[3]
      expect(Either.isLeft(exhausted) && exhausted.left.message).toBe(
        `net.fetch failed: net.fetch replay: tape '${file}' has no transaction left for GET ${base}/a (3 of 3 transactions consumed)`
      )
    }))

  it.effect("replay finds a transaction by method + URL + body hash, so the order of different requests does not matter", () =>
    Effect.gen(function*() {
      const file = join(tmp(), "tape.json")
      writeFileSync(
        file,
        NetTape.formatTape({
          format_version: 1,
          transactions: [
            { method: "POST", url: "https://api.example/x", request_body: "one", response_body: "r1" },
            { method: "POST", url: "https://api.example/x", request_body: "two", response_body: "r2" },
            { method: "GET", url: "https://api.example/y", request_body: null, response_body: "r3" }
          ]
        })
      )
      const out = yield* Effect.provide(
        Effect.all([
          Gateway.call("net.fetch", ["https://api.example/y"]),
          Gateway.call("net.fetch", ["POST", "https://api.example/x", "two"]),
          Gateway.call("net.fetch", ["post", "https://api.example/x", "one"]),
          Effect.either(Gateway.call("net.fetch", ["POST", "https://api.example/x", "three"])),
          Gateway.call("random", [])
        ]),
        gateway(NetTape.replayLayer(file).pipe(Layer.provide(Handlers.demo)))
      )
      expect(out.slice(0, 3)).toEqual(["r3", "r2", "r1"])
      const miss = out[3]
      expect(Either.isLeft(miss) && miss.left.message).toMatch(
        /no transaction left for POST https:\/\/api\.example\/x with a 5-byte body \(sha256:[0-9a-f]{64}\) \(3 of 3 transactions consumed\)$/
      )
    }))

  it.effect("the tape is rewritten after every exchange, so a crash keeps what was recorded", () =>
    Effect.gen(function*() {
      const file = join(tmp(), "tape.json")
      let n = 0
      const base = Handlers.fromRecord({ "net.fetch": () => Effect.sync(() => `r${++n}`) })
      const h = yield* NetTape.record(file, base)
      expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ format_version: 1, transactions: [] })
      const ctx = { capability: "net.fetch" as const, policy, annotate: () => {}, event: () => {} }
      yield* h.get("net.fetch")!(["https://a.example/"], ctx)
      expect(JSON.parse(readFileSync(file, "utf8")).transactions).toHaveLength(1)
      yield* h.get("net.fetch")!(["https://b.example/"], ctx)
      expect(JSON.parse(readFileSync(file, "utf8")).transactions.map((t: { response_body: string }) => t.response_body)).toEqual(["r1", "r2"])
    }))

  it.effect("bad tapes are clear errors: unwritable path, unsupported format_version, wrong shape, unreadable", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const unwritable = yield* Effect.flip(NetTape.record(join(dir, "no", "tape.json"), Handlers.demoService))
      expect(unwritable.message).toMatch(/^tape '.*no\/tape\.json': cannot write: ENOENT/)
      const v2 = join(dir, "v2.json")
      writeFileSync(v2, `{"format_version": 2, "transactions": []}`)
      expect((yield* Effect.flip(NetTape.load(v2))).message).toBe(`tape '${v2}': $.format_version: format_version=2 but this build supports 1`)
      const shape = join(dir, "shape.json")
      writeFileSync(shape, `{"format_version": 1, "transactions": [{"method": "GET", "url": "u", "request_body": null}]}`)
      expect((yield* Effect.flip(NetTape.load(shape))).message).toBe(`tape '${shape}': $.transactions[0].response_body: is missing`)
      const broken = join(dir, "broken.json")
      writeFileSync(broken, `{"format_version": 1,`)
      expect((yield* Effect.flip(NetTape.load(broken))).message).toMatch(/^tape '.*broken\.json': line 1, column 22: invalid JSON: /)
      expect((yield* Effect.flip(NetTape.load(join(dir, "none.json")))).message).toMatch(/failed to read: ENOENT/)
    }))

  it("request keys: method upper-cased, empty body is none, headers and unreadable arguments excluded", () => {
    expect(NetTape.requestOf(["https://x/"])).toEqual({ method: "GET", url: "https://x/", body: null })
    expect(NetTape.requestOf(["put", "https://x/", ""])).toEqual({ method: "PUT", url: "https://x/", body: null })
    expect(NetTape.requestOf([1])).toBeUndefined()
    const k1 = NetTape.keyOf({ method: "POST", url: "u", body: "a" })
    expect(k1).not.toBe(NetTape.keyOf({ method: "POST", url: "u", body: "b" }))
    expect(k1).not.toBe(NetTape.keyOf({ method: "PUT", url: "u", body: "a" }))
  })
})

describe("CLI: boruna run --record-net-to / --replay-net-from", () => {
  const boruna = borunaInProcess

  it.effect("records live over loopback, replays with the origin closed; the flags exclude each other", () =>
    Effect.gen(function*() {
      const dir = tmp()
      const tape = join(dir, "tape.json")
      const pol = join(dir, "policy.json")
      writeFileSync(pol, JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } }))
      const src = (base: string) => `fn main() -> String !{net.fetch} {\n    net.fetch(${JSON.stringify(base + "/x")}) ++ net.fetch("POST", ${JSON.stringify(base + "/y")}, "b")\n}\n`
      const file = join(dir, "net.ax")
      const live = yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* origin
          writeFileSync(file, src(o.origin))
          return yield* boruna(["run", file, "--policy", pol, "--live", "--record-net-to", tape])
        })
      )
      expect(live).toEqual({ code: 0, stdout: `"GET /x #1POST /y b#2"\n`, stderr: "" })
      expect(JSON.parse(readFileSync(tape, "utf8")).transactions).toHaveLength(2)
      const again = yield* boruna(["run", file, "--policy", pol, "--replay-net-from", tape])
      expect(again).toEqual(live)
      const both = yield* boruna(["run", file, "--policy", pol, "--live", "--record-net-to", tape, "--replay-net-from", tape])
      expect(both).toEqual({ code: 2, stdout: "", stderr: "error[usage]: --record-net-to and --replay-net-from are mutually exclusive\n" })
      const noLive = yield* boruna(["run", file, "--policy", pol, "--record-net-to", tape])
      expect(noLive.code).toBe(2)
      expect(JSON.parse(readFileSync(tape, "utf8")).transactions).toHaveLength(2) // untouched by the refused runs
    }))
})
