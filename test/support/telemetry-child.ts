/**
 * Child-process fixture for test/Telemetry.test.ts: runs three gateway calls inside
 * `Telemetry.withRunSpan` with `Telemetry.fromEnv(<env from BORUNA_CHILD_ENV>)`, then prints one line
 * `RESULT {json}`: the call results, the spans the local recorder saw, whether telemetry was on,
 * the CommonJS modules loaded whose path mentions opentelemetry, and whether the OTel API global is set.
 * (ES modules loaded are logged by the resolve hook the test installs.)
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createRequire } from "node:module"
import * as EventLog from "../../src/EventLog.js"
import * as Gateway from "../../src/Gateway.js"
import * as Handlers from "../../src/Handlers.js"
import { allowAll } from "../../src/Policy.js"
import * as Telemetry from "../../src/Telemetry.js"

const env = JSON.parse(process.env.BORUNA_CHILD_ENV ?? "{}") as Record<string, string>
const recordLocally = process.env.BORUNA_CHILD_RECORD === "1"

const program = Telemetry.withRunSpan(Effect.gen(function*() {
  const results = [
    yield* Gateway.call("time.now", []),
    yield* Gateway.call("net.fetch", ["https://a.example/"]),
    yield* Gateway.call("fs.read", ["/tmp/x"])
  ]
  const enabled = yield* Telemetry.TelemetryEnabled
  return { results, enabled }
}))

const layer = Gateway.layer(allowAll).pipe(
  Layer.provideMerge(Layer.mergeAll(Handlers.demo, EventLog.memory, Telemetry.fromEnv(env, { recordLocally })))
)

const out = await Effect.runPromise(Effect.gen(function*() {
  const r = yield* program
  const recorder = yield* Telemetry.SpanRecorder
  return { ...r, spans: recorder.spans().map((s) => s.name) }
}).pipe(Effect.provide(layer)))

const cjs = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes("opentelemetry"))
const otelGlobal = Symbol.for("opentelemetry.js.api.1") in globalThis
process.stdout.write(`RESULT ${JSON.stringify({ ...out, cjs, otelGlobal })}\n`)
