import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { agentWorkflow, policy } from "../examples/agent-workflow.js"
import * as Capabilities from "../src/Capabilities.js"
import * as EventLog from "../src/EventLog.js"
import { DEMO_TIME } from "../src/Handlers.js"
import type { Policy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"

const runtime = (p: Policy) => Capabilities.demo(p).pipe(Layer.provideMerge(Telemetry.memory))
const run = Telemetry.withRunSpan(agentWorkflow("https://news.example/today", "out/summary.txt"))

describe("examples/agent-workflow.ts", () => {
  it.effect("runs on the demo handlers: result, event log, and one boruna.cap span per call under one boruna.run", () =>
    Effect.gen(function*() {
      const report = yield* run
      const page = `{"mock": true, "url": "https://news.example/today"}`
      expect(report).toEqual({
        url: "https://news.example/today",
        summary: `mock llm response to: Summarise this page in one sentence:\n${page}`,
        writtenTo: "out/summary.txt",
        finishedAt: DEMO_TIME
      })

      const log = (yield* EventLog.EventLog).events()
      expect(log.filter((e) => e.type === "CapCall").map((e) => e.capability)).toEqual(["net.fetch", "llm.call", "fs.write", "time.now"])
      expect(log[4]).toEqual({ type: "CapCall", capability: "fs.write", args: ["out/summary.txt", report.summary + "\n"] })

      const spans = (yield* Telemetry.SpanRecorder).spans()
      const runs = spans.filter((s) => s.name === "boruna.run")
      const caps = spans.filter((s) => s.name === "boruna.cap")
      expect(runs).toHaveLength(1)
      expect(spans).toHaveLength(5)
      expect(caps.map((s) => s.attributes["cap.name"])).toEqual(["net.fetch", "llm.call", "fs.write", "time.now"])
      for (const c of caps) {
        expect(c.parentSpanId).toBe(runs[0].spanId)
        expect(c.traceId).toBe(runs[0].traceId)
        expect(c.status).toBe("ok")
      }
      expect(caps[1].attributes["cap.budget_remaining"]).toBe(2) // llm.call budget 3, one used
      expect(caps[0].attributes["bytes_out"]).toBe(page.length)
    }).pipe(Effect.provide(runtime(policy))))

  it.effect("a policy denying fs.write stops it with Denied before anything is written", () =>
    Effect.gen(function*() {
      const e = yield* Effect.flip(run)
      expect(e._tag).toBe("Denied")
      expect(e.message).toBe("capability denied: fs.write: not granted by policy")
      const log = (yield* EventLog.EventLog).events()
      expect(log.filter((ev) => ev.type === "CapCall").map((ev) => ev.capability)).toEqual(["net.fetch", "llm.call"])
      const spans = (yield* Telemetry.SpanRecorder).spans()
      expect(spans.map((s) => [s.name, s.attributes["cap.name"], s.attributes["error.kind"], s.status])).toEqual([
        ["boruna.cap", "net.fetch", undefined, "ok"],
        ["boruna.cap", "llm.call", undefined, "ok"],
        ["boruna.cap", "fs.write", "denied", "error"],
        ["boruna.run", undefined, undefined, "error"]
      ])
    }).pipe(Effect.provide(runtime({ ...policy, rules: { ...policy.rules, "fs.write": { allow: false, budget: 0 } } }))))

  it.effect("the model budget applies to the workflow too: a second run under llm.call budget 1 is refused", () =>
    Effect.gen(function*() {
      yield* run
      const e = yield* Effect.flip(run)
      expect(e._tag).toBe("BudgetExceeded")
      expect(e.message).toBe("capability budget exceeded: llm.call (budget 1)")
    }).pipe(Effect.provide(runtime({ ...policy, rules: { ...policy.rules, "llm.call": { allow: true, budget: 1 } } }))))
})
