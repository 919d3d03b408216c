/**
 * An agent workflow written as a plain Effect program over boruna's typed capabilities: fetch a page,
 * ask the model to summarise it, write the summary to a file, read the clock. Every step goes
 * through the capability gateway, so the policy, budgets, event log and `boruna.cap` spans apply as
 * they do to an `.ax` program.
 *
 *   npm run build && node dist/examples/agent-workflow.js                 # demo handlers
 *   BORUNA_TRACE=1 node dist/examples/agent-workflow.js                   # …and print the spans
 *   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 node dist/examples/agent-workflow.js
 *
 * test/AgentWorkflow.test.ts runs `agentWorkflow` with the demo handlers and `Telemetry.memory`.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { pathToFileURL } from "node:url"
import { Clock, demo, Fs, Llm, Net } from "../src/Capabilities.js"
import type { Policy } from "../src/Policy.js"
import * as Telemetry from "../src/Telemetry.js"

export interface Report {
  readonly url: string
  readonly summary: string
  readonly writtenTo: string
  /** Unix seconds when the summary was written */
  readonly finishedAt: number
}

/** Fetch `url`, summarise it with the model, write the summary to `out`, note the time. */
export const agentWorkflow = (url = "https://example.com/news", out = "summary.txt") =>
  Effect.gen(function*() {
    const page = yield* Net.fetch(url)
    const summary = yield* Llm.call(`Summarise this page in one sentence:\n${page}`)
    yield* Fs.write(out, summary + "\n")
    const finishedAt = yield* Clock.now
    return { url, summary, writtenTo: out, finishedAt } satisfies Report
  })

/** What the workflow needs: the four capabilities it uses, the model at most three times. */
export const policy: Policy = {
  schema_version: 1,
  default_allow: false,
  rules: {
    "net.fetch": { allow: true, budget: 0 },
    "llm.call": { allow: true, budget: 3 },
    "fs.write": { allow: true, budget: 0 },
    "time.now": { allow: true, budget: 0 }
  }
}

// run directly: demo handlers, telemetry from the environment, one run = one trace
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const record = process.env.BORUNA_TRACE === "1"
  const main = Effect.gen(function*() {
    const report = yield* Telemetry.withRunSpan(agentWorkflow(), { "run.entry": "agent-workflow" })
    process.stdout.write(JSON.stringify(report, null, 2) + "\n")
    if (record) {
      for (const s of (yield* Telemetry.SpanRecorder).spans()) {
        process.stderr.write(`span ${s.name} ${JSON.stringify(s.attributes)} ${s.status}\n`)
      }
    }
  })
  const runtime = demo(policy).pipe(Layer.provideMerge(Telemetry.fromEnv(process.env, { recordLocally: record })))
  Effect.runPromiseExit(Effect.provide(main, runtime)).then((exit) => {
    if (exit._tag === "Failure") {
      const e = Cause.squash(exit.cause)
      process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`)
      process.exitCode = 1
    }
  })
}
