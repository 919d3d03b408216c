import { beforeAll, describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { digest, runAndApprove } from "../examples/workflow-ts.js"
import { Net } from "../src/Capabilities.js"
import { allowAll } from "../src/PolicyCore.js"
import * as Telemetry from "../src/Telemetry.js"
import { memoryEngine, sqliteEngine } from "../src/WorkflowEngine.js"
import * as Runner from "../src/WorkflowRunner.js"
import * as WorkflowTs from "../src/WorkflowTs.js"
import { boruna, ensureBuilt, importLogger, ROOT } from "./support/BuiltCli.js"

describe("TypeScript workflows", () => {
  it.scopedLive("the example: TypeScript and .ax steps mixed, a gate and a per-call approval, on the durable engine", () =>
    Effect.gen(function*() {
      const results = yield* runAndApprove("demo")
      expect(results.map((r) => r.status)).toEqual(["paused", "paused", "completed"])
      expect(results[0].pending[0]).toMatchObject({ kind: "gate", step: "review" })
      expect(results[1].pending[0]).toMatchObject({ kind: "call", step: "publish", capability: "net.fetch" })
      const out = results[2].outputs
      expect(JSON.parse(out.summary)).toEqual({ Map: { at: { Int: 1700000000 }, text: { String: 'mock llm response to: Summarise in one line: {"mock": true, "url": "https://example.com/news"}' } } })
      expect(out.publish).toContain("https://api.example.com/posts")
      const v = yield* Runner.runStatus(results[0].runId)
      // capability calls inside TypeScript steps are journaled activities too
      expect(v.calls.filter((c) => c.step_id === "summary").map((c) => [c.seq, c.capability, c.decision])).toEqual([[0, "time.now", "allowed"], [1, "llm.call", "allowed"]])
      expect(v.steps.map((s) => s.status)).toEqual(["completed", "completed", "completed", "completed"])
    }).pipe(Effect.provide(WorkflowTs.layer(digest, sqliteEngine(mkdtempSync(join(tmpdir(), "boruna-ts-")))).pipe(Layer.provide(Telemetry.off), Layer.orDie))), 60_000)

  it.scopedLive("typed inputs: a value that does not decode fails the step with invalid_input; the policy applies to TypeScript calls", () =>
    Effect.gen(function*() {
      const wf = WorkflowTs.make({
        name: "typed", version: "1",
        steps: {
          n: WorkflowTs.step({ run: () => Effect.succeed(41) }),
          asString: WorkflowTs.step({ inputs: { n: WorkflowTs.input("n", Schema.String) }, run: ({ n }) => Effect.succeed(n) }),
          plusOne: WorkflowTs.step({ inputs: { n: WorkflowTs.input("n", Schema.Number) }, run: ({ n }) => Effect.succeed(n + 1) }),
          fetch: WorkflowTs.step({ capabilities: ["llm.call"], run: () => Net.fetch("https://example.com") })
        }
      })
      const r = yield* WorkflowTs.start(wf, { policy: allowAll })
      expect(r.status).toBe("failed")
      const v = yield* Runner.runStatus(r.runId)
      const byId = Object.fromEntries(v.steps.map((s) => [s.step_id, s]))
      expect(byId.plusOne).toMatchObject({ status: "completed", output_json: '{"Int":42}' })
      expect(byId.asString).toMatchObject({ status: "failed", error_kind: "invalid_input" })
      // fetch declared only llm.call: net.fetch is denied by the narrowed step policy
      expect(byId.fetch).toMatchObject({ status: "failed", error_kind: "denied" })
    }).pipe(Effect.provide(Runner.layer(memoryEngine).pipe(Layer.provide(Telemetry.off), Layer.orDie))))
})

describe("the library entry", () => {
  beforeAll(() => ensureBuilt(), 180_000)

  it("exports the workflow modules; importing it loads no engine package (they load when an engine layer is built)", async () => {
    const B = await import("../src/index.js")
    expect(typeof B.WorkflowTs.make).toBe("function")
    expect(typeof B.WorkflowRunner.startRun).toBe("function")
    expect(typeof B.WorkflowRunner.withLocalActivities).toBe("function")
    expect(typeof B.WorkflowEngine.sqliteEngine).toBe("function")
    expect(typeof B.WorkflowStore.readRun).toBe("function")
    expect(typeof B.Approval.callDigest).toBe("function")
    const log = join(tmpdir(), `boruna-index-imports-${process.pid}.log`)
    writeFileSync(log, "")
    const needles = ["/@effect/cluster/dist/esm/SingleRunner", "/@effect/cluster/dist/esm/ClusterWorkflowEngine", "/@effect/sql-sqlite-node/", "/better-sqlite3/"]
    const r = spawnSync(process.execPath, [...importLogger(log, needles), "--input-type=module", "-e", `const B = await import(${JSON.stringify(pathToFileURL(join(ROOT, "dist", "src", "index.js")).href)}); if (typeof B.WorkflowTs.make !== "function") process.exit(2)`], { encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(log, "utf8")).toBe("")
  }, 60_000)
})

describe("a TypeScript workflow answered from the command line", () => {
  beforeAll(() => ensureBuilt(), 180_000)

  it.scopedLive("boruna workflow approve records the answer and exits 75 naming the process that continues; WorkflowTs.resume there completes the run", () =>
    Effect.gen(function*() {
      let fetched = 0
      const wf = WorkflowTs.make({
        name: "ts-after-gate", version: "1",
        steps: {
          a: WorkflowTs.step({ run: () => Effect.succeed("from a") }),
          review: WorkflowTs.gate({ required_role: "ops", depends_on: ["a"] }),
          b: WorkflowTs.step({
            depends_on: ["review"],
            inputs: { a: WorkflowTs.input("a", Schema.String) },
            run: ({ a }) => Effect.map(Net.fetch(`https://example.com/${a.replace(" ", "-")}`), (page) => (++fetched, `b saw ${page.length > 0}`))
          })
        }
      })
      const dataDir = mkdtempSync(join(tmpdir(), "boruna-ts-cli-"))
      const first = yield* WorkflowTs.start(wf, { policy: allowAll }).pipe(
        Effect.scoped,
        Effect.provide(WorkflowTs.layer(wf, sqliteEngine(dataDir)).pipe(Layer.provide(Telemetry.off), Layer.orDie))
      )
      expect(first.status).toBe("paused")
      // the command line cannot load this module: it records the decision, runs nothing TypeScript, exits 75
      const approve = yield* Effect.promise(() =>
        boruna(["workflow", "approve", first.runId, "review", "--token", first.tokens["gate:review"], "--as", "ann"], { BORUNA_DATA_DIR: dataDir }))
      expect(approve.code, `fetched ${fetched}: ` + approve.stdout + approve.stderr).toBe(75)
      expect(approve.stdout).toContain("paused: waiting for the process that defines the workflow's TypeScript step(s)")
      expect(approve.stdout).toContain(`step b: a TypeScript step: it runs in the process that defines workflow 'ts-after-gate' — there, WorkflowTs.resume(workflow, "${first.runId}") continues the run`)
      expect(fetched).toBe(0)
      const view = yield* Runner.runStatus(first.runId).pipe(Effect.scoped, Effect.provide(Runner.layer(sqliteEngine(dataDir)).pipe(Layer.provide(Telemetry.off), Layer.orDie)))
      expect(view.run.status).toBe("paused")
      expect(view.approvals.map((a) => [a.id, a.status, a.approver])).toEqual([["gate:review", "approved", "ann"]])
      expect(view.steps.find((s) => s.step_id === "b")).toMatchObject({ status: "pending", error_kind: "awaiting_process" })
      // the process that defines the workflow continues it
      const done = yield* WorkflowTs.resume(wf, first.runId, { dataDir }).pipe(Effect.provide(Telemetry.off))
      expect(done.status).toBe("completed")
      expect(done.outputs.b).toBe('{"String":"b saw true"}')
      expect(fetched).toBe(1)
    }), 90_000)
})
