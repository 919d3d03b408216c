/**
 * One trace per run across machines: two `boruna runner` processes export their spans (OTLP/HTTP)
 * to a loopback receiver, each with its own service name. Every span of a run is in the run's
 * trace (the trace context stored with the run), and each `boruna.step` — also one executed on the
 * other runner — is a child of that run's `boruna.workflow` span (the step message carries its id).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Cluster from "../src/Cluster.js"
import { parsePolicy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"
import * as Runner from "../src/WorkflowRunner.js"
import * as LoopbackServer from "./support/LoopbackServer.js"
import * as OtlpReceiver from "./support/OtlpReceiver.js"
import * as Pg from "./support/Postgres.js"
import { wfDir } from "./support/WorkflowDir.js"

const POLICY_JSON = JSON.stringify({ rules: { "net.fetch": { allow: true } }, net_policy: { allowed_domains: ["127.0.0.1"] } })
const policy = Either.getOrThrow(parsePolicy(POLICY_JSON))

const fixture = Pg.suite("trace", POLICY_JSON)

const step = (name: string) => `fn main() -> String !{net.fetch, step.input} { net.fetch(step.input("origin") ++ "/${name}/" ++ step.input("tag")) }\n`
const WORKFLOW = {
  schema_version: 1,
  name: "traced",
  version: "1",
  steps: {
    a: { kind: "source", source: "a.ax", capabilities: ["net.fetch"] },
    b: { kind: "source", source: "b.ax", capabilities: ["net.fetch"], depends_on: ["a"] },
    c: { kind: "source", source: "c.ax", capabilities: ["net.fetch"], depends_on: ["b"] }
  },
  edges: []
}

describe("traces across runners", () => {
  it.scopedLive("each run is one trace; every step is a child of its run's workflow span, whichever runner executed it", () =>
    Effect.gen(function*() {
      const url = fixture.pg.database("traced")
      const rx = yield* OtlpReceiver.scoped()
      const origin = yield* LoopbackServer.server((req, _b, res) => res.end(`ok ${req.url}`))
      const otel = (name: string) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json", OTEL_SERVICE_NAME: name, OTEL_BSP_SCHEDULE_DELAY: "100" })
      const runners = yield* Effect.promise(() =>
        Promise.all(["runner-a", "runner-b"].map((name) => Pg.startRunner({ url, policy: fixture.policyFile, env: otel(name) })))
      )
      yield* Effect.promise(() => Pg.settled(fixture.pg, url, runners.map((r) => r.address)))
      const client = Runner.clientLayer(Cluster.clusterEngine({ url, clientOnly: true, shardingConfig: Cluster.fastFailover(Pg.LOCK_EXPIRY) }), Cluster.clientEnv(Runner.makeEnv())).pipe(
        Layer.provide(Telemetry.off),
        Layer.orDie
      )
      const dir = wfDir(WORKFLOW, { "a.ax": step("a"), "b.ax": step("b"), "c.ax": step("c") })
      const tags = ["t1", "t2", "t3", "t4"]
      const runs = yield* Effect.forEach(tags, (tag) => Runner.startRun({ path: dir, policy, live: true, inputs: { origin: origin.origin, tag } }), { concurrency: "unbounded" }).pipe(
        Effect.provide(client)
      )
      expect(runs.map((r) => r.status)).toEqual(["completed", "completed", "completed", "completed"])
      // 4 × (workflow + 3 steps + 3 net.fetch calls + step.input calls) spans; wait for the steps at least
      const spans = yield* Pg.eventually(
        Effect.sync(() => {
          const s = rx.spans()
          return s.filter((x) => x.name === "boruna.step").length >= 12 && s.filter((x) => x.name === "boruna.workflow").length >= 4 ? s : undefined
        }),
        30_000,
        "the runners' spans"
      )
      let crossRunner = 0
      for (const r of runs) {
        const traceId = fixture.pg.psql(url, `SELECT trace_id FROM boruna_wf_runs WHERE run_id = '${r.runId}'`).trim()
        const mine = spans.filter((s) => s.attributes["boruna.run_id"] === r.runId)
        expect(mine.every((s) => s.traceId === traceId), r.runId).toBe(true)
        const workflows = mine.filter((s) => s.name === "boruna.workflow")
        const steps = mine.filter((s) => s.name === "boruna.step")
        expect(steps.map((s) => s.attributes["step.id"]).sort(), r.runId).toEqual(["a", "b", "c"])
        for (const s of steps) {
          const parent = workflows.find((w) => w.spanId === s.parentSpanId)
          expect(parent, `${r.runId}/${String(s.attributes["step.id"])}: parent ${s.parentSpanId}`).toBeDefined()
          if (parent !== undefined && parent.resource["service.name"] !== s.resource["service.name"]) crossRunner++
        }
        // the capability spans are in the same trace, under a step span (the engine's activity span between)
        const inTrace = new Map(spans.filter((s) => s.traceId === traceId).map((s) => [s.spanId, s]))
        const underStep = (id: string | undefined): boolean => {
          for (let cur = id === undefined ? undefined : inTrace.get(id); cur !== undefined; cur = cur.parentSpanId === undefined ? undefined : inTrace.get(cur.parentSpanId)) {
            if (cur.name === "boruna.step") return true
          }
          return false
        }
        const caps = [...inTrace.values()].filter((s) => s.name === "boruna.cap")
        expect(caps.filter((c) => c.attributes["cap.name"] === "net.fetch").length, r.runId).toBe(3)
        expect(caps.every((c) => underStep(c.parentSpanId)), r.runId).toBe(true)
      }
      // with 12 steps hashed over two runners, some step ran on the other runner than its run
      expect(crossRunner).toBeGreaterThan(0)
    }), 120_000)
})
