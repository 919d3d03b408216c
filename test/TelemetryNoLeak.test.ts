/**
 * The no-leak sweep: runs that fail in every way (each capability, each error kind, live handlers
 * against loopback servers that echo secrets back) export their spans to a loopback OTLP receiver,
 * over OTLP/JSON and OTLP/protobuf, and no argument string, URL query, path, prompt, key, result or
 * allowlist entry may appear anywhere in the exported bytes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { BudgetExceeded, Denied, HandlerFailure, RuntimeError } from "../src/Errors.js"
import { NOT_GRANTED, summarizeFailure } from "../src/TelemetryFlag.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import * as Live from "../src/Live.js"
import { decodePolicy, type Policy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import * as OtlpReceiver from "./support/OtlpReceiver.js"
import { server } from "./support/LoopbackServer.js"

const KEY = "sk-live-KEYSECRET-5f3a9c"
/** every secret the runs below pass in, and what the servers echo back */
const SECRETS = [
  KEY,
  "TOKENSECRET",
  "PATHSECRET",
  "PROMPTSECRET",
  "ALLOWSECRET",
  "QUERYSECRET",
  "ARGSECRET",
  "RESULTSECRET",
  "ROOTSECRET",
  "HOSTSECRET"
]

const policy = (json: unknown): Policy => {
  const p = decodePolicy(json)
  if (Either.isLeft(p)) throw new Error(String(p.left))
  return p.right
}

/** Each call, allowed to fail; the spans are the point. */
const attempts = (calls: ReadonlyArray<readonly [string, ReadonlyArray<string>]>) =>
  Telemetry.withRunSpan(
    Effect.gen(function*() {
      for (const [cap, args] of calls) {
        yield* Effect.exit(Gateway.call(cap as Parameters<typeof Gateway.call>[0], args))
      }
      // the run itself fails too, with a message that quotes an argument
      return yield* Effect.fail(new Error("run failed on ARGSECRET"))
    })
  )

const scan = (rx: OtlpReceiver.OtlpReceiver): string => Buffer.concat(rx.requests().map((r) => r.body)).toString("latin1")

for (const protocol of ["http/json", "http/protobuf"]) {
  describe(`no argument, result or policy content in any exported span (${protocol})`, () => {
    it.scopedLive("demo handlers: denied, over budget, missing handler, and successful calls with secret arguments", () =>
      Effect.gen(function*() {
        const rx = yield* OtlpReceiver.scoped()
        const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol }
        const p = policy({
          default_allow: true,
          rules: { "db.query": { allow: false }, "fs.write": { allow: true, budget: 1 } }
        })
        const handlers = Handlers.make({
          "net.fetch": (args) => Effect.succeed(`RESULTSECRET for ${String(args[0])}`),
          "fs.read": (args) => Effect.fail(new HandlerFailure({ message: `cannot read ${String(args[0])}` })),
          "fs.write": () => Effect.succeed("ok")
        })
        const layer = Gateway.layer(p).pipe(
          Layer.provideMerge(Layer.mergeAll(handlers, EventLog.memory, Telemetry.fromEnv(env, { stderr: () => {} })))
        )
        yield* Effect.exit(Effect.provide(
          attempts([
            ["net.fetch", ["https://HOSTSECRET.example/x?token=TOKENSECRET"]],
            ["fs.read", ["/PATHSECRET/file"]],
            ["db.query", ["select ARGSECRET"]],
            ["fs.write", ["/PATHSECRET/a", "ARGSECRET"]],
            ["fs.write", ["/PATHSECRET/b", "ARGSECRET"]],
            ["llm.call", ["PROMPTSECRET"]]
          ]),
          layer
        ))
        const spans = rx.spans()
        expect(spans.filter((s) => s.name === "boruna.cap")).toHaveLength(6)
        const bytes = scan(rx)
        expect(bytes.length).toBeGreaterThan(0)
        for (const s of SECRETS) expect(bytes, s).not.toContain(s)
        // the failures are still described: capability, kind and a fixed reason
        const failed = spans.filter((s) => s.status.code === 2)
        expect(failed.map((s) => s.status.message)).toEqual([
          "fs.read: runtime_error: the handler failed",
          "db.query: denied: not granted by the policy",
          "fs.write: budget_exceeded: the capability's budget is exhausted",
          "llm.call: runtime_error: the handler failed",
          "failed"
        ])
        for (const s of failed) {
          expect(s.attributes["error.type"]).toBeDefined()
          for (const e of s.events) expect(Object.keys(e.attributes)).not.toContain("exception.stacktrace")
        }
      }))

    it.scopedLive("live handlers against loopback servers that echo secrets", () =>
      Effect.gen(function*() {
        const rx = yield* OtlpReceiver.scoped()
        const dir = mkdtempSync(join(tmpdir(), "boruna-leak-ROOTSECRET-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
        writeFileSync(join(dir, "PATHSECRET.txt"), "RESULTSECRET")
        // an HTTP server that echoes the request (URL and headers) in its body, redirects with a secret query, or fails
        const web = yield* server((req, _body, res) => {
          if ((req.url ?? "").startsWith("/redirect")) {
            res.writeHead(302, { location: "https://HOSTSECRET.example/next?token=TOKENSECRET" }).end()
            return
          }
          res.writeHead(500, { "content-type": "text/plain" }).end(`RESULTSECRET ${req.url}`)
        })
        const model = yield* server((req, body, res) => {
          if (body.includes("PROMPTSECRET-401")) {
            res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { type: KEY, code: KEY, message: `bad key ${req.headers.authorization}` } }))
            return
          }
          if (body.includes("PROMPTSECRET-500")) {
            res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: `RESULTSECRET ${body}` } }))
            return
          }
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({
            id: `chatcmpl-${KEY}`,
            model: "m",
            choices: [{ message: { content: `RESULTSECRET ${req.headers.authorization}` }, finish_reason: "stop" }]
          }))
        })
        const p = policy({
          rules: {
            "fs.read": { allow: true },
            "fs.write": { allow: true },
            "net.fetch": { allow: true },
            "db.query": { allow: true },
            "llm.call": { allow: true },
            "time.now": { allow: true }
          },
          fs_policy: { root: dir, read_only: true },
          net_policy: { allowed_domains: ["127.0.0.1", "ALLOWSECRET.example"] },
          llm_policy: { allowed_models: ["m", "ALLOWSECRET-model"] }
        })
        const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: protocol }
        const live = Live.layer(p, { cwd: dir }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["OPENAI_BASE_URL", `${model.origin}/v1`], ["OPENAI_API_KEY", KEY]]))))
        )
        const layer = Gateway.layer(p).pipe(
          Layer.provideMerge(Layer.mergeAll(live, EventLog.memory, Telemetry.fromEnv(env, { stderr: () => {} })))
        )
        yield* Effect.exit(Effect.provide(
          attempts([
            ["fs.read", ["PATHSECRET.txt"]], // succeeds: its content must not appear
            ["fs.read", ["../PATHSECRET-outside"]], // denied: outside the root
            ["fs.read", ["PATHSECRET-missing.txt"]], // runtime error: no such file
            ["fs.write", ["PATHSECRET-w.txt", "ARGSECRET"]], // denied: read-only
            ["net.fetch", ["https://HOSTSECRET.example/a?token=TOKENSECRET"]], // host not in the allowlist
            ["net.fetch", ["not a url QUERYSECRET"]], // invalid URL
            ["net.fetch", [`${web.origin}/PATHSECRET?q=QUERYSECRET`]], // 500 with the URL echoed
            ["net.fetch", [`${web.origin}/redirect?q=QUERYSECRET`]], // redirect to a secret URL not allowed
            ["db.query", ["SELECT ARGSECRET FROM PATHSECRET"]], // no such table
            ["db.query", ["SELECT 'RESULTSECRET' AS x"]], // succeeds
            ["llm.call", ["ALLOWSECRET-nope", "PROMPTSECRET"]], // model not allowed
            ["llm.call", ["m", "PROMPTSECRET-401"]],
            ["llm.call", ["m", "PROMPTSECRET-500"]],
            ["llm.call", ["m", "PROMPTSECRET-ok"]]
          ]),
          layer
        ))
        const spans = rx.spans()
        expect(spans.filter((s) => s.name === "boruna.cap")).toHaveLength(14)
        expect(spans.filter((s) => s.name === "chat m")).toHaveLength(3)
        const bytes = scan(rx)
        for (const s of SECRETS) expect(bytes, s).not.toContain(s)
        expect(bytes).not.toContain(dir)
        expect(spans.filter((s) => s.status.code === 2).length).toBeGreaterThanOrEqual(10)
        const chats = spans.filter((s) => s.name === "chat m")
        expect(chats.map((s) => s.status.message)).toEqual(["chat m: 401", "chat m: 500", undefined])
        expect(chats[2].attributes["gen_ai.response.id"]).toBe("chatcmpl-[REDACTED]")
        // each exception once: the chat span records the HTTP failure, its cap span only the status
        const llmCaps = spans.filter((s) => s.name === "boruna.cap" && s.attributes["cap.name"] === "llm.call")
        expect(llmCaps.map((s) => s.events.filter((e) => e.name === "exception").length)).toEqual([1, 0, 0, 0])
        expect(chats.map((s) => s.events.filter((e) => e.name === "exception").length)).toEqual([1, 1, 0])
      }))
  })
}

describe("summarizeFailure: the capability, the kind and a fixed reason, never the message", () => {
  it("each error kind", () => {
    const cases: Array<[unknown, string, string]> = [
      [new Denied({ capability: "net.fetch", reason: "host 'SECRET.example' is not in [a, b]" }), "denied", "net.fetch: denied: refused by the policy"],
      [new Denied({ capability: "db.query", reason: NOT_GRANTED }), "denied", "db.query: denied: not granted by the policy"],
      [new BudgetExceeded({ capability: "fs.write", budget: 3 }), "budget_exceeded", "fs.write: budget_exceeded: the capability's budget is exhausted"],
      [new RuntimeError({ capability: "fs.read", reason: "cannot read '/SECRET'" }), "runtime_error", "fs.read: runtime_error: the handler failed"],
      [{ capability: "net.fetch", kind: "approval_required", message: "SECRET" }, "approval_required", "net.fetch: approval_required: a person's approval is required"],
      [{ kind: "timeout", message: "SECRET" }, "timeout", "timeout: timed out"],
      [new HandlerFailure({ message: "SECRET" }), "HandlerFailure", "HandlerFailure: failed"],
      [new Error("SECRET"), "_OTHER", "failed"],
      ["SECRET", "_OTHER", "failed"],
      [{ capability: "x y SECRET", kind: "denied" }, "denied", "denied: refused by the policy"]
    ]
    for (const [error, type, message] of cases) expect(summarizeFailure(error)).toEqual({ type, message })
  })
})

describe("the exception is recorded once, on the span where it happened", () => {
  it.scopedLive("a failed cap call: one exception event on the cap span, none on the root; the root has the error status", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      const p = policy({ rules: { "fs.read": { allow: false } } })
      const layer = Gateway.layer(p).pipe(
        Layer.provideMerge(Layer.mergeAll(Handlers.demo, EventLog.memory, Telemetry.fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url })))
      )
      yield* Effect.exit(Effect.provide(Telemetry.withRunSpan(Gateway.call("fs.read", ["/x"])), layer))
      const cap = rx.spans().find((s) => s.name === "boruna.cap")!
      const run = rx.spans().find((s) => s.name === "boruna.run")!
      expect(cap.events.filter((e) => e.name === "exception")).toEqual([{
        name: "exception",
        attributes: { "exception.type": "denied", "exception.message": "fs.read: denied: not granted by the policy" }
      }])
      expect(cap.attributes).toMatchObject({ "error.kind": "denied", "error.type": "denied" })
      expect(run.events).toEqual([])
      expect(run.status).toEqual({ code: 2, message: "fs.read: denied: not granted by the policy" })
      expect(run.attributes["error.type"]).toBe("denied")
    }))
})
