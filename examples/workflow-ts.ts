/**
 * A workflow written in TypeScript (docs/workflows.md, "TypeScript workflows"): two TypeScript
 * steps over the typed capabilities, an approval gate, and an `.ax` step from examples/workflow
 * whose POST needs a per-call approval — all on the durable engine, with the same policy, budgets,
 * approvals, records and spans as a workflow.json run.
 *
 *   npm run build && node dist/examples/workflow-ts.js      # runs, pauses twice, approves as "demo"
 *
 * A real deployment answers the pauses from another process that loads this module too
 * (`WorkflowTs.layer(digest, engine)` + `WorkflowRunner.answer`), since the TypeScript steps after
 * a pause run in the process that continues the run. test/WorkflowTs.test.ts runs it.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { Clock, Llm, Net } from "../src/Capabilities.js"
import type { Policy } from "../src/Policy.js"
import type { RunResult } from "../src/WorkflowRunner.js"
import * as Runner from "../src/WorkflowRunner.js"
import * as WorkflowTs from "../src/WorkflowTs.js"

/** examples/, where `workflow/steps/publish.ax` lives (also from dist/examples/) */
const here = dirname(fileURLToPath(import.meta.url))
export const EXAMPLES_DIR = here.endsWith(join("dist", "examples")) ? join(here, "..", "..", "examples") : here

export const digest = WorkflowTs.make({
  name: "digest-ts",
  version: "1.0.0",
  description: "Fetch a page, summarise it, have an editor look, publish the summary.",
  steps: {
    fetch: WorkflowTs.step({
      capabilities: ["net.fetch"],
      budget: { max_calls: 1 },
      run: () => Net.fetch("https://example.com/news")
    }),
    summary: WorkflowTs.step({
      capabilities: ["llm.call", "time.now"],
      inputs: { page: WorkflowTs.input("fetch", Schema.String) },
      // the clock is a capability too: the code between calls stays deterministic
      run: ({ page }) =>
        Effect.gen(function*() {
          const at = yield* Clock.now
          const text = yield* Llm.call(`Summarise in one line: ${page}`)
          return { text, at }
        })
    }),
    review: WorkflowTs.gate({ required_role: "editor", depends_on: ["summary"] }),
    publish: WorkflowTs.ax("workflow/steps/publish.ax", {
      capabilities: ["net.fetch"],
      depends_on: ["review"],
      inputs: { summary: "summary.result" }
    })
  }
})

export const policy: Policy = {
  schema_version: 1,
  default_allow: false,
  rules: {
    "net.fetch": { allow: true, budget: 5 },
    "llm.call": { allow: true, budget: 3 },
    "time.now": { allow: true, budget: 0 }
  },
  net_policy: { allowed_domains: [], allowed_methods: [], max_response_bytes: 1_000_000, timeout_ms: 10_000, allow_redirects: true, approve_methods: ["POST"] }
}

/** Start the run, then answer each pause as `approver` (a demo: a person would do this). */
export const runAndApprove = (approver: string): Effect.Effect<ReadonlyArray<RunResult>, Runner.WorkflowError, Runner.Services> =>
  Effect.gen(function*() {
    const results: Array<RunResult> = [yield* WorkflowTs.start(digest, { policy, dir: EXAMPLES_DIR })]
    for (let r = results[0]; r.status === "paused"; ) {
      const p = r.pending[0]
      r = yield* Runner.answer({
        runId: r.runId,
        ...(p.kind === "call" ? { call: p.digest } : { step: p.step }),
        token: r.tokens[p.id],
        as: approver,
        decision: "approved"
      })
      results.push(r)
    }
    return results
  })

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const main = Effect.gen(function*() {
    const E = yield* Effect.promise(() => import("../src/WorkflowEngine.js"))
    const results = yield* runAndApprove("demo").pipe(Effect.scoped, Effect.provide(WorkflowTs.layer(digest, E.sqliteEngine(E.dataDirOf(undefined)))))
    for (const r of results) {
      process.stdout.write(`${r.runId} ${r.status}${r.pending.length > 0 ? `: waiting for ${r.pending.map((p) => p.call ?? p.id).join(", ")}` : ""}\n`)
    }
    process.stdout.write(JSON.stringify(results[results.length - 1].outputs, null, 2) + "\n")
  })
  Effect.runPromiseExit(main).then((exit) => {
    if (exit._tag === "Failure") {
      process.stderr.write(`error: ${String(exit.cause)}\n`)
      process.exitCode = 1
    }
  })
}
