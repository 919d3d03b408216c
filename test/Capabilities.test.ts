import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { readFileSync } from "node:fs"
import * as Capabilities from "../src/Capabilities.js"
import { Clock, Db, Fs, Llm, Net, Random, StepInput, Ui } from "../src/Capabilities.js"
import type { CapabilityName } from "../src/Capability.js"
import * as EventLog from "../src/EventLog.js"
import * as Handlers from "../src/Handlers.js"
import { allowAll, denyAll, parsePolicy, type Policy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import { AxFloat, mkMap, RecordV, Unit, type Value } from "../src/Value.js"

/** Handlers that record the (capability, args) of every call and answer with `answers[cap]`. */
const recording = (answers: Partial<Record<CapabilityName, Value>>) => {
  const calls: Array<[CapabilityName, ReadonlyArray<Value>]> = []
  const handlers: Partial<Record<CapabilityName, Handlers.Handler>> = {}
  for (const [cap, v] of Object.entries(answers) as Array<[CapabilityName, Value]>) {
    handlers[cap] = (args) => Effect.sync(() => (calls.push([cap, args]), v))
  }
  return { calls, layer: Handlers.make(handlers) }
}

const withTelemetry = (policy: Policy, handlers: Layer.Layer<Handlers.Handlers>) =>
  Capabilities.runtime(policy, handlers).pipe(Layer.provideMerge(Telemetry.memory))

describe("Capabilities: typed services over the gateway", () => {
  const h = recording({
    "net.fetch": "<html>body</html>",
    "fs.read": "file text",
    "fs.write": Unit,
    "db.query": [mkMap([["id", 1], ["name", "ada"]]), mkMap([["id", 2], ["name", "bob"]])],
    "llm.call": "a summary",
    "time.now": 1_700_000_123,
    "random": new AxFloat(0.25),
    "ui.render": Unit,
    "step.input": `{"Int":0}`
  })

  it.effect("each method calls its capability with the .ax argument shapes and converts the result", () =>
    Effect.gen(function*() {
      expect(yield* Net.fetch("https://a.example/")).toBe("<html>body</html>")
      expect(yield* Net.request("POST", "https://a.example/api", "{}")).toBe("<html>body</html>")
      expect(yield* Net.request("DELETE", "https://a.example/x")).toBe("<html>body</html>")
      expect(yield* Fs.read("/tmp/in")).toBe("file text")
      expect(yield* Fs.write("/tmp/out", "data")).toBeUndefined()
      expect(yield* Db.query("select * from users where id > ?", ["0"])).toEqual([
        { id: "1", name: "ada" },
        { id: "2", name: "bob" }
      ])
      expect(yield* Db.query("select 1")).toHaveLength(2)
      expect(yield* Llm.call("hello")).toBe("a summary")
      expect(yield* Llm.call("hello", "openai/gpt-4o-mini")).toBe("a summary")
      expect(yield* Clock.now).toBe(1_700_000_123)
      expect(yield* Random.next).toBe(0.25)
      const tree = new RecordV("Text", ["value"], ["hi"])
      expect(yield* Ui.render(tree)).toBeUndefined()
      expect(yield* StepInput.get("upstream")).toBe(`{"Int":0}`)
      expect(h.calls).toEqual([
        ["net.fetch", ["https://a.example/"]],
        ["net.fetch", ["POST", "https://a.example/api", "{}"]],
        ["net.fetch", ["DELETE", "https://a.example/x", ""]],
        ["fs.read", ["/tmp/in"]],
        ["fs.write", ["/tmp/out", "data"]],
        ["db.query", ["select * from users where id > ?", ["0"]]],
        ["db.query", ["select 1", []]],
        ["llm.call", ["hello"]],
        ["llm.call", ["openai/gpt-4o-mini", "hello"]],
        ["time.now", []],
        ["random", []],
        ["ui.render", [tree]],
        ["step.input", ["upstream"]]
      ])
      // the event log holds every call and result, as for an .ax program
      const log = (yield* EventLog.EventLog).events()
      expect(log.filter((e) => e.type === "CapCall")).toHaveLength(13)
      expect(log.filter((e) => e.type === "CapResult")).toHaveLength(13)
      expect(log[0]).toEqual({ type: "CapCall", capability: "net.fetch", args: ["https://a.example/"] })
      // and one boruna.cap span per call
      const spans = (yield* Telemetry.SpanRecorder).spans()
      expect(spans.map((s) => s.attributes["cap.name"])).toEqual(h.calls.map(([cap]) => cap))
      expect(spans[0].attributes["bytes_out"]).toBe("<html>body</html>".length)
    }).pipe(Effect.provide(withTelemetry(allowAll, h.layer))))

  it.effect("policy applies: a denied capability fails with Denied and its handler never runs", () => {
    const d = recording({ "fs.write": Unit, "time.now": 1 })
    const policy: Policy = { schema_version: 1, default_allow: true, rules: { "fs.write": { allow: false, budget: 0 } } }
    return Effect.gen(function*() {
      expect(yield* Clock.now).toBe(1)
      const e = yield* Effect.flip(Fs.write("/etc/passwd", "x"))
      expect(e._tag).toBe("Denied")
      expect(e.message).toBe("capability denied: fs.write: not granted by policy")
      expect(d.calls.map(([c]) => c)).toEqual(["time.now"])
      const [, denied] = (yield* Telemetry.SpanRecorder).spans()
      expect(denied.attributes["error.kind"]).toBe("denied")
    }).pipe(Effect.provide(withTelemetry(policy, d.layer)))
  })

  it.effect("budgets apply: the call past the budget fails with BudgetExceeded", () => {
    const policy: Policy = { schema_version: 1, default_allow: false, rules: { "llm.call": { allow: true, budget: 2 } } }
    return Effect.gen(function*() {
      yield* Llm.call("1")
      yield* Llm.call("2")
      const e = yield* Effect.flip(Llm.call("3"))
      expect(e._tag).toBe("BudgetExceeded")
    }).pipe(Effect.provide(Capabilities.demo(policy)))
  })

  it.effect("a handler returning the wrong shape fails the call with RuntimeError naming both types", () => {
    const bad = recording({ "llm.call": 42, "time.now": "noon", "db.query": ["not a row"], "random": true })
    return Effect.gen(function*() {
      const a = yield* Effect.flip(Llm.call("x"))
      expect(a._tag).toBe("RuntimeError")
      expect(a.message).toBe("llm.call failed: returned Int, expected String")
      expect((yield* Effect.flip(Clock.now)).message).toBe("time.now failed: returned String, expected Int")
      expect((yield* Effect.flip(Db.query("q"))).message).toBe("db.query failed: returned String, expected List<Map<String, String>> (a row)")
      expect((yield* Effect.flip(Random.next)).message).toBe("random failed: returned Bool, expected Float")
    }).pipe(Effect.provide(Capabilities.runtime(allowAll, bad.layer)))
  })

  it.effect("the demo runtime answers deterministically", () =>
    Effect.gen(function*() {
      expect(yield* Net.fetch("https://x.example/")).toBe(`{"mock": true, "url": "https://x.example/"}`)
      expect(yield* Clock.now).toBe(Handlers.DEMO_TIME)
      expect(yield* Random.next).toBe(Handlers.DEMO_RANDOM)
      expect(yield* Db.query("select 1")).toEqual([])
      expect(yield* Fs.read("/a")).toBe("mock file content for /a")
    }).pipe(Effect.provide(Capabilities.demo(allowAll))))

  it.effect("Capabilities.layer needs only a Gateway; deny-all denies everything", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Net.fetch("https://x.example/"))
      expect(e._tag).toBe("Denied")
    }).pipe(Effect.provide(Capabilities.demo(denyAll))))
})

describe("docs/policy.md", () => {
  const doc = readFileSync(new URL("../docs/policy.md", import.meta.url), "utf8")
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1])

  it("every copy-paste example decodes", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4)
    for (const b of blocks) {
      const r = parsePolicy(b, "example")
      expect(Either.isRight(r) ? "ok" : r.left.message).toBe("ok")
    }
  })

  it("every error in the table is the decoder's own (first) line for that input", () => {
    const rows = [...doc.matchAll(/^\| `(\{.*\})` \| `(p\.json: .*)` \|$/gm)]
    expect(rows.length).toBeGreaterThanOrEqual(8)
    for (const [, input, message] of rows) {
      const r = parsePolicy(input.replace(/\\\|/g, "|"), "p.json")
      if (Either.isRight(r)) throw new Error(`expected an error for ${input}`)
      const expected = message.replace(/\\\|/g, "|")
      const first = r.left.message.split("\n")[0]
      if (expected.includes("…")) expect(first.startsWith(expected.slice(0, expected.indexOf("…")))).toBe(true)
      else expect(first).toBe(expected)
    }
  })
})

describe("the fs annotation alias", () => {
  it("capability list shows it on both file capabilities, and what it grants", async () => {
    const { report, formatText } = await import("../src/cli/capability.js")
    const r = report("test")
    expect(r.shared_aliases).toEqual([{ alias: "fs", grants: ["fs.read", "fs.write"] }])
    expect(r.capabilities.filter((c) => c.shared_aliases.includes("fs")).map((c) => c.name)).toEqual(["fs.read", "fs.write"])
    const text = formatText(r).split("\n")
    expect(text.find((l) => l.startsWith("  fs.read "))).toMatch(/\(aliases: fs, with fs\.write\)$/)
    expect(text.find((l) => l.startsWith("  fs.write "))).toMatch(/\(aliases: fs, with fs\.read\)$/)
    expect(text).toContain("annotation alias fs: grants fs.read and fs.write (not a policy rule key: write a rule for each)")
  })

  it("a policy rule keyed fs gets the hint docs/policy.md promises, not only 'unknown capability'", () => {
    const r = parsePolicy(JSON.stringify({ rules: { fs: { allow: true } } }), "p.json")
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.issues.map((i) => i.message)).toEqual([
        "'fs' is an annotation alias for both file capabilities; policy rules use canonical names: write one rule for 'fs.read' and one for 'fs.write'"
      ])
      expect(r.left.issues[0].path).toBe("$.rules.fs")
    }
  })
})
