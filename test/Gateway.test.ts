import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { Budget } from "../src/Budget.js"
import { HandlerFailure } from "../src/Errors.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { allowAll, denyAll, type Policy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import { mkMap, RecordV } from "../src/Value.js"

/** Gateway under `policy`, with its handlers, log and the in-memory span recorder exposed. */
const setup = (policy: Policy, handlers: Layer.Layer<Handlers.Handlers> = Handlers.demo) =>
  Gateway.layer(policy).pipe(
    Layer.provideMerge(Layer.mergeAll(handlers, EventLog.memory, Telemetry.memory))
  )

const capSpans = Effect.map(Telemetry.SpanRecorder, (r) => r.spans().filter((s) => s.name === "boruna.cap"))

const budgetPolicy = (cap: string, budget: number): Policy => ({
  schema_version: 1,
  default_allow: false,
  rules: { [cap]: { allow: true, budget } }
})

describe("Gateway.make's callNow (untraced)", () => {
  it.effect("does call's work at once: a handler that answers at once gives its Exit; refusals and handlers that do not answer at once are what call gives, with the same events", () =>
    Effect.gen(function*() {
      const policy = budgetPolicy("time.now", 2)
      const slow: Handlers.Handler = () => Effect.suspend(() => Effect.succeed(7))
      const handlers = Handlers.override(Handlers.demoService, { random: slow })
      const policyBoth: Policy = { ...policy, rules: { ...policy.rules, random: { allow: true, budget: 0 } } }
      const a = EventLog.makeMemory()
      const b = EventLog.makeMemory()
      const now = Gateway.make({ policy: policyBoth, handlers, log: a, traced: false })
      const via = Gateway.make({ policy: policyBoth, handlers, log: b, traced: false })
      expect(Gateway.make({ policy, handlers, log: a, traced: true }).callNow).toBeUndefined()
      const first = now.callNow!("time.now", [])
      // done already: the Exit itself, logged, counted
      expect(Exit.isExit(first) && Exit.isSuccess(first) && first.value).toBe(Handlers.DEMO_TIME)
      expect(a.events()).toHaveLength(2)
      expect(now.budget.used("time.now")).toBe(1)
      yield* Effect.exit(first)
      const results: Array<Exit.Exit<unknown, unknown>> = []
      for (const [cap, args] of [["time.now", []], ["time.now", []], ["random", []], ["net.fetch", ["https://example.com/"]]] as const) {
        const r = now.callNow!(cap, args)
        // a handler that does not answer at once: its effect, its CapCall on record already
        if (cap === "random") {
          expect(Exit.isExit(r)).toBe(false)
          expect(a.events().at(-1)).toEqual({ type: "CapCall", capability: "random", args: [] })
        }
        results.push(yield* Effect.exit(r))
      }
      const expected = [
        yield* Effect.exit(via.call("time.now", [])), yield* Effect.exit(via.call("time.now", [])), yield* Effect.exit(via.call("time.now", [])),
        yield* Effect.exit(via.call("random", [])), yield* Effect.exit(via.call("net.fetch", ["https://example.com/"]))
      ]
      expect(results.map((r) => r._tag)).toEqual(expected.slice(1).map((r) => r._tag))
      expect(results.map((r) => r._tag)).toEqual(["Success", "Failure", "Success", "Failure"])
      expect(Exit.isSuccess(results[2]) && results[2].value).toBe(7)
      expect(a.events()).toEqual(b.events())
    }))
})

describe("Gateway", () => {
  it.effect("a successful call records cap.name, bytes_in and bytes_out", () =>
    Effect.gen(function*() {
      const out = yield* Gateway.call("net.fetch", ["https://a.example/x"])
      expect(out).toBe(`{"mock": true, "url": "https://a.example/x"}`)
      const [span] = yield* capSpans
      expect(span.attributes["cap.name"]).toBe("net.fetch")
      expect(span.attributes["bytes_in"]).toBe("https://a.example/x".length)
      expect(span.attributes["bytes_out"]).toBe((out as string).length)
      expect(span.attributes["error.kind"]).toBeUndefined()
      expect(span.attributes["cap.budget_remaining"]).toBeUndefined()
      expect(span.status).toBe("ok")
    }).pipe(Effect.provide(setup(allowAll))))

  it.effect("a record-returning handler gets a non-zero bytes_out; bytes_in counts map keys and nested strings", () =>
    Effect.gen(function*() {
      yield* Gateway.call("llm.call", [mkMap([["ké", ["ab", new RecordV("P", ["q"], ["xyz"])]]])])
      const [span] = yield* capSpans
      expect(span.attributes["bytes_in"]).toBe(3 + 2 + 3) // "ké" is 3 UTF-8 bytes
      expect(span.attributes["bytes_out"]).toBe(5 + 5)
    }).pipe(Effect.provide(setup(allowAll, Handlers.make({
      "llm.call": () => Effect.succeed(new RecordV("Reply", ["text", "model"], ["hello", "mock1"]))
    })))))

  it.effect("denied: error.kind=denied, error status, and the handler never ran", () => {
    let ran = 0
    return Effect.gen(function*() {
      const r = yield* Effect.either(Gateway.call("time.now", []))
      expect(Either.isLeft(r) && r.left._tag).toBe("Denied")
      expect(ran).toBe(0)
      const [span] = yield* capSpans
      expect(span.attributes["error.kind"]).toBe("denied")
      expect(span.attributes["bytes_out"]).toBeUndefined()
      expect(span.status).toBe("error")
      const log = yield* EventLog.EventLog
      // the refusal is an event of its own; no CapCall, since no handler ran
      expect(log.events()).toEqual([
        { type: "CapRefused", capability: "time.now", args: [], kind: "denied", message: "capability denied: time.now: not granted by policy" }
      ])
    }).pipe(Effect.provide(setup(denyAll, Handlers.make({
      "time.now": () => Effect.sync(() => ++ran)
    }))))
  })

  it.effect("budget: the last permitted call has remaining 0 without error; the next is budget_exceeded", () =>
    Effect.gen(function*() {
      yield* Gateway.call("time.now", [])
      yield* Gateway.call("time.now", [])
      const r = yield* Effect.either(Gateway.call("time.now", []))
      expect(Either.isLeft(r) && r.left._tag).toBe("BudgetExceeded")
      const spans = yield* capSpans
      expect(spans.map((s) => s.attributes["cap.budget_remaining"])).toEqual([1, 0, 0])
      expect(spans.map((s) => s.attributes["error.kind"])).toEqual([undefined, undefined, "budget_exceeded"])
      expect(spans[2].status).toBe("error")
    }).pipe(Effect.provide(setup(budgetPolicy("time.now", 2)))))

  it.effect("a handler failure and a handler defect both become runtime_error with the message", () =>
    Effect.gen(function*() {
      const a = yield* Effect.flip(Gateway.call("fs.read", ["x"]))
      expect(a._tag).toBe("RuntimeError")
      expect(a.message).toContain("disk on fire")
      const b = yield* Effect.flip(Gateway.call("db.query", ["select 1"]))
      expect(b._tag).toBe("RuntimeError")
      expect(b.message).toContain("boom")
      const spans = yield* capSpans
      expect(spans.map((s) => s.attributes["error.kind"])).toEqual(["runtime_error", "runtime_error"])
      const log = yield* EventLog.EventLog
      expect(log.events().map((e) => e.type)).toEqual(["CapCall", "CapError", "CapCall", "CapError"])
    }).pipe(Effect.provide(setup(allowAll, Handlers.make({
      "fs.read": () => Effect.fail(new HandlerFailure({ message: "disk on fire" })),
      "db.query": () => Effect.die(new Error("boom"))
    })))))

  it.effect("a handler refusal flagged as denied (a policy knob inside the handler) is Denied", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(Gateway.call("net.fetch", ["http://10.0.0.1/"]))
      expect(e._tag).toBe("Denied")
      const [span] = yield* capSpans
      expect(span.attributes["error.kind"]).toBe("denied")
    }).pipe(Effect.provide(setup(allowAll, Handlers.make({
      "net.fetch": () => Effect.fail(new HandlerFailure({ message: "private address", denied: true }))
    })))))

  it.effect("the event log holds calls and results, never span content", () =>
    Effect.gen(function*() {
      yield* Gateway.call("time.now", [], { file: "a.ax", line: 3, col: 5 })
      yield* Gateway.call("net.fetch", ["https://a.example/"])
      const log = yield* EventLog.EventLog
      expect(log.events()).toEqual([
        { type: "CapCall", capability: "time.now", args: [], site: { file: "a.ax", line: 3, col: 5 } },
        { type: "CapResult", capability: "time.now", result: 1_700_000_000 },
        { type: "CapCall", capability: "net.fetch", args: ["https://a.example/"] },
        { type: "CapResult", capability: "net.fetch", result: `{"mock": true, "url": "https://a.example/"}` }
      ])
      // the spans did carry byte counts, the remaining budget and ids: none of it is in the log
      const spans = yield* capSpans
      expect(spans[1].attributes).toMatchObject({ bytes_in: 18, "cap.budget_remaining": 4 })
      const text = JSON.stringify(log.events())
      for (const leak of ["bytes_in", "bytes_out", "budget_remaining", "cap.name", spans[0].spanId, spans[0].traceId]) {
        expect(text).not.toContain(leak)
      }
    }).pipe(Effect.provide(setup({ schema_version: 1, default_allow: true, rules: { "net.fetch": { allow: true, budget: 5 } } }))))

  it("Budget.remaining: the post-call quota, 0 once exhausted (also after the rejected call), undefined when unlimited", () => {
    const b = new Budget({ schema_version: 1, default_allow: true, rules: { "net.fetch": { allow: true, budget: 2 } } })
    expect(b.remaining("net.fetch")).toBe(2)
    expect(b.take("net.fetch")).toEqual({ ok: true, remaining: 1 })
    expect(b.remaining("net.fetch")).toBe(1)
    expect(b.take("net.fetch")).toEqual({ ok: true, remaining: 0 })
    expect(b.remaining("net.fetch")).toBe(0)
    expect(b.take("net.fetch")).toEqual({ ok: false, budget: 2 })
    expect(b.remaining("net.fetch")).toBe(0)
    expect(b.used("net.fetch")).toBe(3)
    expect(b.remaining("time.now")).toBeUndefined()
    expect(b.take("time.now")).toEqual({ ok: true, remaining: undefined })
  })

  it.effect("exact under concurrency: 10,000 fibers, budget 10 ⇒ 10 successes and 9,990 BudgetExceeded", () =>
    Effect.gen(function*() {
      const results = yield* Effect.forEach(
        Array.from({ length: 10_000 }, (_, i) => i),
        () => Effect.either(Gateway.call("random", []).pipe(Effect.zipLeft(Effect.yieldNow()))),
        { concurrency: "unbounded" }
      )
      const ok = results.filter(Either.isRight).length
      const exceeded = results.filter((r) => Either.isLeft(r) && r.left._tag === "BudgetExceeded").length
      expect(ok).toBe(10)
      expect(exceeded).toBe(9_990)
    }).pipe(Effect.provide(Gateway.layer(budgetPolicy("random", 10)).pipe(
      Layer.provide(Layer.mergeAll(Handlers.make({
        // a handler that yields, so fibers really interleave inside the call
        random: () => Effect.as(Effect.yieldNow(), 0.5)
      }), EventLog.memory))
    ))))

  it.effect("telemetry off: calls work and no span is recorded", () => {
    const { recorder, tracer } = Telemetry.makeMemoryTracer()
    return Effect.gen(function*() {
      yield* Gateway.call("time.now", [])
      yield* Gateway.call("random", [])
      expect(recorder.spans()).toEqual([])
    }).pipe(
      Effect.provide(Gateway.layer(allowAll).pipe(Layer.provide(Layer.mergeAll(Handlers.demo, EventLog.memory, Telemetry.off)))),
      Effect.withTracer(tracer)
    )
  })
  describe("telemetry off (the untraced path)", () => {
    const plain = (policy: Policy, handlers: Handlers.HandlersService = Handlers.demoService) => {
      const log = EventLog.makeMemory()
      return { log, g: Gateway.make({ policy, handlers, log, traced: false }) }
    }

    it.effect("lazy: building the call performs nothing; running the same effect twice makes two calls", () =>
      Effect.gen(function*() {
        let ran = 0
        const { g, log } = plain(budgetPolicy("time.now", 5), Handlers.fromRecord({ "time.now": () => Effect.sync(() => ++ran) }))
        const call = g.call("time.now", [])
        expect(ran).toBe(0)
        expect(log.events()).toEqual([])
        expect(g.budget.used("time.now")).toBe(0)
        expect(yield* call).toBe(1)
        expect(yield* call).toBe(2)
        expect(g.budget.used("time.now")).toBe(2)
        expect(log.events().map((e) => e.type)).toEqual(["CapCall", "CapResult", "CapCall", "CapResult"])
      }))

    it.effect("policy before budget; budget exact; CapCall logged before the handler runs", () =>
      Effect.gen(function*() {
        const denied = plain(denyAll)
        const d = yield* Effect.flip(denied.g.call("time.now", []))
        expect(d._tag).toBe("Denied")
        expect(denied.g.budget.used("time.now")).toBe(0)
        const seen: Array<number> = []
        const { g, log } = plain(budgetPolicy("time.now", 1), Handlers.fromRecord({
          "time.now": () => Effect.sync(() => seen.push(log.events().length))
        }))
        yield* g.call("time.now", [], { file: "a.ax", line: 1, col: 2 })
        const e = yield* Effect.flip(g.call("time.now", []))
        expect(e._tag).toBe("BudgetExceeded")
        expect(seen).toEqual([1]) // the handler saw its CapCall already logged
        expect(log.events()).toEqual([
          { type: "CapCall", capability: "time.now", args: [], site: { file: "a.ax", line: 1, col: 2 } },
          { type: "CapResult", capability: "time.now", result: 1 },
          { type: "CapRefused", capability: "time.now", args: [], kind: "budget_exceeded", message: "capability budget exceeded: time.now (budget 1)" }
        ])
        expect(denied.log.events()).toEqual([
          { type: "CapRefused", capability: "time.now", args: [], kind: "denied", message: "capability denied: time.now: not granted by policy" }
        ])
      }))

    it.effect("handler failure and defect become RuntimeError and are logged as CapError; a missing handler too", () =>
      Effect.gen(function*() {
        const { g, log } = plain(allowAll, Handlers.fromRecord({
          "fs.read": () => Effect.fail(new HandlerFailure({ message: "disk on fire" })),
          "db.query": () => Effect.die(new Error("boom"))
        }))
        const a = yield* Effect.flip(g.call("fs.read", ["x"]))
        const b = yield* Effect.flip(g.call("db.query", []))
        const c = yield* Effect.flip(g.call("time.now", []))
        expect([a._tag, b._tag, c._tag]).toEqual(["RuntimeError", "RuntimeError", "RuntimeError"])
        expect(a.message).toContain("disk on fire")
        expect(b.message).toContain("boom")
        expect(c.message).toContain("no handler installed for time.now")
        expect(log.events().map((e) => e.type)).toEqual(["CapCall", "CapError", "CapCall", "CapError", "CapCall", "CapError"])
      }))

    it.effect("interruption of a running handler propagates as interruption (no CapError logged)", () =>
      Effect.gen(function*() {
        const { g, log } = plain(allowAll, Handlers.fromRecord({ "net.fetch": () => Effect.never }))
        const fiber = yield* Effect.fork(g.call("net.fetch", ["u"]))
        yield* Effect.yieldNow()
        const exit = yield* Fiber.interrupt(fiber)
        expect(Exit.isInterrupted(exit)).toBe(true)
        expect(log.events().map((e) => e.type)).toEqual(["CapCall"])
      }))
  })
  it("the in-memory log keeps order across chunk boundaries, mixing calls, results and other events; events() stays one array", () => {
    const log = EventLog.makeMemory()
    const expected: Array<unknown> = []
    const first = log.events()
    for (let k = 0; k < 5_000; k++) {
      const args = [k]
      log.appendCall!("random", args, k % 3 === 0 ? { file: "a.ax", line: k, col: 1 } : undefined)
      expected.push(k % 3 === 0 ? { type: "CapCall", capability: "random", args, site: { file: "a.ax", line: k, col: 1 } } : { type: "CapCall", capability: "random", args })
      if (k % 7 === 0) {
        log.append({ type: "UiEmit", tree: `t${k}` })
        expected.push({ type: "UiEmit", tree: `t${k}` })
      }
      log.appendResult!("random", k / 2)
      expected.push({ type: "CapResult", capability: "random", result: k / 2 })
      if (k === 2_500) expect(log.events()).toEqual(expected)
    }
    const all = log.events()
    expect(all).toBe(first)
    expect(all).toEqual(expected)
    expect(all.filter((e) => e.type === "CapCall" && "site" in e).length).toBe(1_667)
    expect(log.events()).toEqual(expected)
  })
})
