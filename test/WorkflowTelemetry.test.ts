import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { allowAll } from "../src/PolicyCore.js"
import * as Telemetry from "../src/Telemetry.js"
import * as Handlers from "../src/Handlers.js"
import { memoryEngine, sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import * as OtlpReceiver from "./support/OtlpReceiver.js"
import { wfDir } from "./support/WorkflowDir.js"

const GATED = {
  schema_version: 1, name: "traced", version: "1",
  steps: {
    a: { kind: "source", source: "a.ax" },
    gate: { kind: "approval_gate", required_role: "ops", depends_on: ["a"] },
    b: { kind: "source", source: "a.ax", depends_on: ["gate"] }
  },
  edges: []
}
const FILES = { "a.ax": 'fn main() -> String !{net.fetch, time.now} { let t: Int = time.now()\n net.fetch("https://example.com/x") }\n' }

describe("telemetry of a workflow run", () => {
  it.scopedLive("one trace across a pause and a resume in another process: boruna.workflow → boruna.step → boruna.cap; approvals are step events; journaled calls emit no cap span", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const { recorder, tracer } = Telemetry.makeMemoryTracer()
      const traced = Runner.layer(sqliteEngine(dir)).pipe(
        Layer.provide(Layer.mergeAll(Layer.succeed(Telemetry.TelemetryEnabled, true), Layer.setTracer(tracer))),
        Layer.orDie
      )
      const run = (e: Effect.Effect<Runner.RunResult, Runner.WorkflowError, Runner.Services>) =>
        e.pipe(Effect.scoped, Effect.provide(traced), Effect.withTracer(tracer), Effect.provideService(Telemetry.TelemetryEnabled, true))
      const r = yield* run(Runner.startRun({ path: wfDir(GATED, FILES), policy: allowAll }))
      expect(r.status).toBe("paused")
      const token = r.tokens["gate:gate"]
      const done = yield* run(Runner.answer({ runId: r.runId, step: "gate", token, as: "ops", decision: "approved" }))
      expect(done.status).toBe("completed")
      const v = yield* Runner.runStatus(r.runId).pipe(Effect.scoped, Effect.provide(Runner.layer(sqliteEngine(dir)).pipe(Layer.orDie)))
      const spans = recorder.spans()
      const ours = spans.filter((s) => s.name.startsWith("boruna."))
      // one trace: the one stored with the run
      expect(new Set(ours.map((s) => s.traceId))).toEqual(new Set([v.run.trace_id]))
      const byId = new Map(spans.map((s) => [s.spanId, s]))
      const ancestors = (s: Telemetry.RecordedSpan): Array<string> => {
        const out: Array<string> = []
        for (let p = s.parentSpanId; p !== undefined; p = byId.get(p)?.parentSpanId) out.push(byId.get(p)?.name ?? `(${p})`)
        return out
      }
      const wf = ours.filter((s) => s.name === "boruna.workflow")
      expect(wf.length).toBeGreaterThanOrEqual(2) // one per execution: before the pause, after it
      expect(wf[0].attributes).toMatchObject({ "boruna.run_id": r.runId, "workflow.name": "traced", "workflow.hash": v.run.workflow_hash })
      const steps = ours.filter((s) => s.name === "boruna.step" && s.attributes["step.status"] !== undefined)
      expect(steps.map((s) => [s.attributes["step.id"], s.attributes["step.attempt"], s.attributes["step.status"]]).sort()).toEqual([["a", 1, "completed"], ["b", 1, "completed"], ["gate", 1, "completed"]])
      for (const s of steps) expect(byId.get(s.parentSpanId!)?.name ?? "boruna.workflow (stored)").toMatch(/^boruna\.workflow/)
      const gate = steps.find((s) => s.attributes["step.id"] === "gate")!
      expect(gate.events.map((e) => e.name)).toContain("boruna.approved")
      // each of the four calls ran once: four boruna.cap spans, each under its step
      const caps = ours.filter((s) => s.name === "boruna.cap")
      expect(caps.map((c) => c.attributes["cap.name"]).sort()).toEqual(["net.fetch", "net.fetch", "time.now", "time.now"])
      // ... a direct child of its boruna.step: no engine Activity span in between
      for (const c of caps) expect(ancestors(c)[0]).toBe("boruna.step")
      expect(spans.filter((s) => s.name.startsWith("cap/"))).toEqual([])
    }), 60_000)

  it.scopedLive("a step re-run after a per-call approval: the call answered from the journal emits no new boruna.cap span", () =>
    Effect.gen(function*() {
      const dir = mkdtempSync(join(tmpdir(), "boruna-data-"))
      const { recorder, tracer } = Telemetry.makeMemoryTracer()
      const traced = Runner.layer(sqliteEngine(dir)).pipe(Layer.provide(Layer.mergeAll(Layer.succeed(Telemetry.TelemetryEnabled, true), Layer.setTracer(tracer))), Layer.orDie)
      const run = (e: Effect.Effect<Runner.RunResult, Runner.WorkflowError, Runner.Services>) =>
        e.pipe(Effect.scoped, Effect.provide(traced), Effect.withTracer(tracer), Effect.provideService(Telemetry.TelemetryEnabled, true))
      const policy = { ...allowAll, net_policy: { allowed_domains: [], allowed_methods: [], max_response_bytes: 1000, timeout_ms: 1000, allow_redirects: true, approve_methods: ["POST"] } }
      const ONE = { schema_version: 1, name: "post", version: "1", steps: { p: { kind: "source", source: "p.ax" } }, edges: [] }
      const r = yield* run(Runner.startRun({ path: wfDir(ONE, { "p.ax": 'fn main() -> String !{net.fetch} { let r: String = net.fetch("https://example.com/get")\n net.fetch("POST", "https://example.com/p", r) }\n' }), policy }))
      const p = r.pending[0]
      const done = yield* run(Runner.answer({ runId: r.runId, call: p.digest, token: r.tokens[p.id], as: "ops", decision: "approved" }))
      expect(done.status).toBe("completed")
      const caps = recorder.spans().filter((s) => s.name === "boruna.cap")
      expect(caps).toHaveLength(2) // the GET (once, before the pause) and the POST — not the GET again
      const steps = recorder.spans().filter((s) => s.name === "boruna.step")
      expect(steps.flatMap((s) => s.events.map((e) => e.name))).toEqual(expect.arrayContaining(["boruna.pending", "boruna.approved"]))
    }), 60_000)
})

describe("exported spans of a workflow's calls", () => {
  it.scopedLive("are filtered as a plain run's: a handler's strings outside the safe keys never leave the process, its numbers do", () =>
    Effect.gen(function*() {
      const rx = yield* OtlpReceiver.scoped()
      const env = { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }
      // a handler that annotates its span as live handlers do, with a host among the values
      const fetch: Handlers.Handler = (_args, ctx) => {
        ctx.annotate("url.full", "https://HOSTSECRET.example/x")
        ctx.annotate("http.response.hops", 2)
        ctx.annotate("http.request.method", "GET")
        ctx.event("boruna.redirect", { location: "https://HOSTSECRET.example/next", hop: 1 })
        return Effect.suspend(() => Effect.succeed("ok"))
      }
      const wf = { schema_version: 1, name: "exported", version: "1", steps: { f: { kind: "source", source: "f.ax" } }, edges: [] }
      const r = yield* Runner.startRun({ path: wfDir(wf, { "f.ax": 'fn main() -> String !{net.fetch} { let a: String = net.fetch("https://example.com/f")\n net.fetch("https://example.com/g") }\n' }), policy: allowAll }).pipe(
        Effect.provide(Runner.layer(memoryEngine, Runner.makeEnv({ handlers: () => Effect.succeed(Handlers.override(Handlers.demoService, { "net.fetch": fetch })) })).pipe(Layer.orDie)),
        Effect.provide(Telemetry.fromEnv(env, { stderr: () => {} }))
      )
      expect(r.status).toBe("completed")
      // (the step's first call builds its handlers; the second runs on the attempt's gateway)
      const caps = rx.spans().filter((s) => s.name === "boruna.cap")
      expect(caps).toHaveLength(2)
      for (const cap of caps) {
        expect(cap.attributes["http.response.hops"]).toBe(2)
        expect(cap.attributes["http.request.method"]).toBe("GET")
        expect(cap.attributes["url.full"]).toBeUndefined()
        expect(cap.events.map((e) => [e.name, e.attributes])).toEqual([["boruna.redirect", { hop: 1 }]])
      }
      expect(Buffer.concat(rx.requests().map((q) => q.body)).toString("latin1")).not.toContain("HOSTSECRET")
    }), 60_000)
})
